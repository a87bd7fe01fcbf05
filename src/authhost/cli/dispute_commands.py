"""``authhost disputes``: cardholders' disputes of posted transactions."""

from __future__ import annotations

from typing import Annotated

import typer

from authhost.admin import requests as rq
from authhost.cli.admin_support import (
    IDS,
    ConfigOpt,
    IdemOpt,
    LimitOpt,
    StoreOpt,
    _config,
    _run,
    _validated,
)
from authhost.cli.tables import OutputOpt

disputes = typer.Typer(help="Cardholders' disputes of posted transactions.")


@disputes.command("open")
def disputes_open(
    card_id: Annotated[str, typer.Argument(help="the card")],
    journal_id: Annotated[
        int, typer.Argument(callback=IDS, help="the posted charge (journal show)")
    ],
    reason: Annotated[
        str, typer.Option(help="fraud, not_received, not_as_described, duplicate, amount, other")
    ],
    amount: Annotated[
        int | None, typer.Option("--amount-minor", help="the part disputed (default: all)")
    ] = None,
    credit: Annotated[bool, typer.Option(help="give the amount back now (provisional)")] = True,
    note: Annotated[str, typer.Option(help="free text (PANs are masked)")] = "",
    idempotency_key: IdemOpt = "",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Open the cardholder's dispute of a posted charge: a provisional credit (--no-credit:
    none) posted through the pipeline as a refund advice; a fraud dispute also labels the
    entry fraud. Audited. The dispute and its credit are recorded together or not at all; a
    retry after a failure credits once (with --idempotency-key it gets the first answer)."""
    spec = _validated(
        rq.DisputeOpen,
        {"reason": reason, "amount_minor": amount, "provisional_credit": credit, "note": note},
    )
    _run(
        _config(config, store),
        lambda s: s.open_dispute(card_id, journal_id, spec, idempotency_key=idempotency_key),
        pipeline=credit,
    )


@disputes.command("resolve")
def disputes_resolve(
    dispute_id: str,
    outcome: Annotated[str, typer.Option(help="won, lost or withdrawn")],
    note: Annotated[str, typer.Option(help="free text (PANs are masked)")] = "",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Close a dispute: won gives back what was not yet credited; lost or withdrawn takes the
    provisional credit back (a forced post). Audited."""
    spec = _validated(rq.DisputeResolution, {"outcome": outcome, "note": note})
    _run(_config(config, store), lambda s: s.resolve_dispute(dispute_id, spec), pipeline=True)


@disputes.command("reconcile")
def disputes_reconcile(
    dispute_id: Annotated[str, typer.Argument(help="one dispute (default: every open one)")] = "",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Set the acquirer's reversals against the open disputes of the charges they reversed
    (a running server does this every minute): the disputed amount shrinks to what the
    charge still takes, a provisional credit above it is taken back (once per reversal), and
    a charge reversed whole closes its dispute `reversed`. Prints the disputes changed."""
    _run(
        _config(config, store),
        (lambda s: s.reconcile_dispute(dispute_id))
        if dispute_id
        else (lambda s: s.reconcile_disputes()),
        pipeline=True,
    )


@disputes.command("list")
def disputes_list(
    state: Annotated[str, typer.Option(help="open, won, lost, withdrawn or reversed")] = "",
    limit: LimitOpt = 100,
    after: Annotated[str, typer.Option(help="disputes after this id (paging)")] = "",
    output: OutputOpt = "auto",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Disputes, oldest first."""
    _run(
        _config(config, store),
        lambda s: s.list_disputes(state=state, limit=limit, after=after),
        table="disputes",
        output=output,
    )


@disputes.command("show")
def disputes_show(dispute_id: str, store: StoreOpt = None, config: ConfigOpt = None) -> None:
    """One dispute."""
    _run(_config(config, store), lambda s: s.get_dispute(dispute_id))
