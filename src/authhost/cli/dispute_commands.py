"""``authhost disputes``: cardholders' disputes of posted transactions, and their network stages
(chargeback, representment, pre-arbitration and its answer, arbitration) with the files the
networks' systems take and give."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from authhost.admin import requests as rq
from authhost.admin.csv_rows import spreadsheet_safe
from authhost.admin.dispute_stages import CHARGEBACK_COLUMNS
from authhost.admin.service import CardService
from authhost.cli.admin_support import (
    IDS,
    ConfigOpt,
    DayOpt,
    IdemOpt,
    LimitOpt,
    SinceOpt,
    StoreOpt,
    UntilOpt,
    _config,
    _csv_file_rows,
    _report_csv_rows,
    _run,
    _run_csv_rows,
    _say,
    _validated,
    bounded,
    minor_units,
    results_file,
)
from authhost.cli.tables import OutputOpt

disputes = typer.Typer(
    help="Cardholders' disputes of posted transactions: open, charge back, representments, "
    "pre-arbitration and its answer, arbitration and its ruling, resolve; what is due."
)


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
        int | None,
        typer.Option("--amount-minor", parser=minor_units, help="the part disputed (default: all)"),
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
    """Close a dispute. Never charged back: won gives back what was not yet credited, lost
    or withdrawn takes the provisional credit back (a forced post). Charged back: won keeps
    the amount charged back (less what a pre-arbitration for part of the representment
    accepted), lost keeps what the acquirer's representment accepted (the chargeback less
    the amount represented; a loss before any representment keeps nothing and puts a recall
    in the chargebacks file), withdrawn keeps nothing and puts a recall there; the part not
    charged back is taken back. `disputes show ID` has each outcome's amount (if_won_minor,
    if_lost_minor...); the answer's `amounts` says what the cardholder keeps. Audited; the
    same outcome again answers it as it stands (audited then if its entry was lost: Redis
    Cluster appends it after the write), another is refused."""
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
    a charge reversed whole closes its dispute `reversed`. Prints the disputes changed.
    With the ID of a dispute resolved won or lost whose charge the acquirer reversed after
    the resolution (`disputes show ID`: late_reversals): takes back what the cardholder holds
    twice, once the cardholder was told (never done by the server)."""
    _run(
        _config(config, store),
        (lambda s: s.reconcile_dispute(dispute_id))
        if dispute_id
        else (lambda s: s.reconcile_disputes()),
        pipeline=True,
    )


@disputes.command("chargeback")
def disputes_chargeback(
    dispute_id: str,
    reason_code: Annotated[
        str,
        typer.Option(
            help="the network reason code: Visa 10.4, 13.1, 12.6.1..., Mastercard 4837, 4853, "
            "4834... (default: the dispute's reason's usual code on the card's network)"
        ),
    ] = "",
    amount: Annotated[
        int | None,
        typer.Option(
            "--amount-minor",
            parser=minor_units,
            help="charged back, at most the disputed amount (default)",
        ),
    ] = None,
    note: Annotated[str, typer.Option(help="free text (PANs are masked)")] = "",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """File an open dispute's chargeback with the network, within \\[admin] chargeback_days
    (120) of the charge. Moves no money (the provisional credit was given at the opening).
    Audited; the same again changes nothing."""
    spec = _validated(
        rq.DisputeChargeback, {"reason_code": reason_code, "amount_minor": amount, "note": note}
    )
    _run(_config(config, store), lambda s: s.charge_back_dispute(dispute_id, spec))


@disputes.command("represented")
def disputes_represented(
    dispute_id: str,
    reference: Annotated[str, typer.Option(help="the acquirer's reference of the representment")],
    amount: Annotated[
        int,
        typer.Option(
            "--amount-minor",
            parser=minor_units,
            help="represented, at most the amount charged back",
        ),
    ],
    date: Annotated[
        str, typer.Option(help="the representment's date, YYYY-MM-DD UTC (default: now)")
    ] = "",
    note: Annotated[str, typer.Option(help="free text (PANs are masked)")] = "",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Record the acquirer's representment (second presentment) of a charged-back dispute,
    dated within \\[admin] representment_days (45) of the chargeback; one dated later is
    refused: the issuer won (disputes resolve ID --outcome won). Audited; the same again
    changes nothing."""
    spec = _validated(
        rq.DisputeRepresentment,
        {"reference": reference, "amount_minor": amount, "date": date or None, "note": note},
    )
    _run(_config(config, store), lambda s: s.record_representment(dispute_id, spec))


@disputes.command("pre-arbitration")
def disputes_pre_arbitration(
    dispute_id: str,
    amount: Annotated[
        int | None,
        typer.Option(
            "--amount-minor",
            parser=minor_units,
            help="pre-arbitrated, at most the amount represented (default); the rest of the "
            "representment is accepted",
        ),
    ] = None,
    note: Annotated[str, typer.Option(help="free text (PANs are masked)")] = "",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Answer a representment with pre-arbitration, within \\[admin] pre_arbitration_days (30)
    of it; to accept the representment instead, resolve the dispute lost. Audited; the same
    again changes nothing."""
    spec = _validated(rq.DisputePreArbitration, {"amount_minor": amount, "note": note})
    _run(_config(config, store), lambda s: s.pre_arbitrate_dispute(dispute_id, spec))


@disputes.command("pre-arbitration-answer")
def disputes_pre_arbitration_answer(
    dispute_id: str,
    answer: Annotated[str, typer.Option(help="accepted, accepted_in_part or declined")],
    amount: Annotated[
        int | None,
        typer.Option(
            "--amount-minor",
            parser=minor_units,
            help="accepted_in_part: what the acquirer accepted, less than the amount "
            "pre-arbitrated",
        ),
    ] = None,
    date: Annotated[
        str, typer.Option(help="the answer's date, YYYY-MM-DD UTC (default: now)")
    ] = "",
    note: Annotated[str, typer.Option(help="free text (PANs are masked)")] = "",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Record the acquirer's answer to the pre-arbitration, dated within \\[admin]
    pre_arbitration_answer_days (30) of it: accepted (resolve it won: the cardholder keeps
    what was accepted, in part: only that part), or declined (file arbitration within
    \\[admin] arbitration_days, or resolve it lost). Audited; the same again changes nothing."""
    spec = _validated(
        rq.DisputePreArbitrationAnswer,
        {"answer": answer, "amount_minor": amount, "date": date or None, "note": note},
    )
    _run(_config(config, store), lambda s: s.answer_pre_arbitration(dispute_id, spec))


@disputes.command("arbitration")
def disputes_arbitration(
    dispute_id: str,
    note: Annotated[str, typer.Option(help="free text (PANs are masked)")] = "",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """File arbitration with the network after the acquirer declined the pre-arbitration, or
    accepted only part of it (for the rest), within \\[admin] arbitration_days (10) of its
    answer; the network's ruling follows (disputes arbitration-ruling). Moves no money.
    Audited; the same again changes nothing."""
    spec = _validated(rq.DisputeArbitration, {"note": note})
    _run(_config(config, store), lambda s: s.arbitrate_dispute(dispute_id, spec))


@disputes.command("arbitration-ruling")
def disputes_arbitration_ruling(
    dispute_id: str,
    ruling: Annotated[str, typer.Option(help="won (for the issuer) or lost")],
    fee_minor: Annotated[
        int | None,
        typer.Option(
            help="the network's arbitration fee in minor units of --fee-currency, borne by "
            "the losing party (default: \\[admin] arbitration_fee_minor; 0: none)"
        ),
    ] = None,
    fee_currency: Annotated[
        str,
        typer.Option(
            help="the fee's ISO 4217 numeric currency (default: \\[admin] "
            "arbitration_fee_currency, 840)"
        ),
    ] = "",
    note: Annotated[str, typer.Option(help="free text (PANs are masked)")] = "",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Record the network's ruling on the arbitration: it resolves the dispute won (the
    cardholder keeps the chargeback less what the issuer conceded; after an answer accepted
    in part, the rest as well) or lost (what the acquirer accepted), the money moving as
    `disputes resolve` moves it, and records the network's fee (the losing party bears it:
    the acquirer when won, the issuer when lost; never the cardholder's). Audited; the same
    ruling again changes nothing."""
    body = {"ruling": ruling, "note": note, "fee_minor": fee_minor, "fee_currency": fee_currency}
    spec = _validated(rq.DisputeArbitrationRuling, body)
    _run(_config(config, store), lambda s: s.rule_arbitration(dispute_id, spec), pipeline=True)


@disputes.command("list")
def disputes_list(
    state: Annotated[str, typer.Option(help="open, won, lost, withdrawn or reversed")] = "",
    due_within: Annotated[
        int | None,
        typer.Option(
            callback=bounded(0, 3650),
            help="only the open disputes the issuer must act on within DAYS (overdue ones "
            "too), soonest limit first",
            metavar="DAYS",
        ),
    ] = None,
    limit: LimitOpt = 100,
    after: Annotated[str, typer.Option(help="disputes after this id (paging)")] = "",
    card_id: Annotated[
        str, typer.Option(help="only this card's disputes, and its predecessors' and successors'")
    ] = "",
    output: OutputOpt = "auto",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Disputes, oldest first, with their stage and next action (who, by when)."""
    _run(
        _config(config, store),
        lambda s: s.list_disputes(
            state=state, limit=limit, after=after, due_within_days=due_within, card_id=card_id
        ),
        table="disputes",
        output=output,
    )


@disputes.command("chargebacks")
def disputes_chargebacks(
    out: Annotated[Path, typer.Option("--out", help="CSV file to write")],
    day: DayOpt = "",
    since: SinceOpt = 0.0,
    until: UntilOpt = 0.0,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Write the chargebacks filed in a business day or period, and the recalls of those
    withdrawn (or lost before any representment, or closed reversed by the acquirer's
    reversal of the whole charge) in it after they were filed, as CSV for the
    networks' dispute systems:
    dispute_id, arn (the full 23-digit ARN a clearing import kept, else the RRN as
    journalled), pan (masked: never the full PAN), amount_minor,
    currency, network, reason_code, charged_back_at, journal_id, action (chargeback or
    recall), recalled_at and withdrawn_at_stage (a recall's; its amount_minor is what goes
    back to the acquirer: the chargeback less what a representment took back). A partial
    recall (withdrawn_at_stage empty) gives back what a reversal made the chargeback claim
    twice: while the dispute was open, or after it was resolved."""
    from authhost.out_files import out_file_problem

    if problem := out_file_problem(out, example="chargebacks.csv"):
        _say(f"error: {problem}")
        raise typer.Exit(1)
    found = _run(
        _config(config, store),
        lambda s: s.chargebacks_filed(day=day, since=since, until=until),
        show=False,
    )
    try:
        with out.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, CHARGEBACK_COLUMNS)
            writer.writeheader()
            writer.writerows(
                {name: spreadsheet_safe(value) for name, value in row.items()}
                for row in found["chargebacks"]
            )
    except OSError as exc:
        _say(f"error: cannot write {out}: {exc.strerror or exc}")
        raise typer.Exit(1) from None
    rows = found["chargebacks"]
    recalls = sum(row["action"] == "recall" for row in rows)
    filed = len(rows) - recalls
    also = f" and {recalls} recall{'s' * (recalls != 1)}" if recalls else ""
    _say(f"wrote {filed} chargeback{'s' * (filed != 1)}{also} to {out}")


@disputes.command("representments")
def disputes_representments(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV: reference,amount_minor and dispute_id or arn (optional: date, "
            "currency, note)"
        ),
    ],
    results: Annotated[
        Path | None, typer.Option(help="write line,dispute_id,stage,error per line to this CSV")
    ] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Record the acquirers' representments from their dispute system, a line per dispute
    (by dispute_id, or by the ARN its chargeback went under). A refused line (no such
    dispute, out of order, past the acquirer's limit, more than was charged back) is
    reported with its line number and reason and writes nothing; the others go on. The same
    file again changes nothing."""
    from authhost.admin.csv_rows import read_rows
    from authhost.admin.service.dispute_cases import REPRESENTMENT_COLUMNS

    rows = _csv_file_rows(lambda: read_rows(file, REPRESENTMENT_COLUMNS))

    async def record(service: CardService, advance: Callable[[Any], None]) -> list[Any]:
        return await service.record_representments(rows, advance)

    with results_file(results) as written:
        done = _run_csv_rows(file, len(rows), "recording", record, _config(config, store))
        _report_csv_rows(file, done, "recorded", written, ("line", "dispute_id", "stage", "error"))


@disputes.command("show")
def disputes_show(dispute_id: str, store: StoreOpt = None, config: ConfigOpt = None) -> None:
    """One dispute."""
    _run(_config(config, store), lambda s: s.get_dispute(dispute_id))
