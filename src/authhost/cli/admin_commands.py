"""Card management commands: products, accounts, cards, pin, journal, audit, lists, demo.

They work directly on the store named by ``--store`` (or the configuration), through the same
``CardService`` as the admin HTTP API, so a change made here is validated and audited exactly
like one made over HTTP. The audit actor is ``cli:<login name>``. Output is JSON (one object,
or a list) so it can be piped into ``jq``; errors go to stderr with exit status 1.
"""

from __future__ import annotations

import getpass
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import trio
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from authhost.admin import requests as rq
from authhost.admin.errors import ServiceError, invalid_request
from authhost.admin.service import LIFECYCLE_ACTIONS, CardService
from authhost.cards.model import CardKind, PinMethod
from authhost.cli.key_commands import keys_app
from authhost.cli.model_commands import models_app
from authhost.config import Config, ConfigError, load_config
from authhost.security.errors import SecurityError
from authhost.store.interface import StoreError

StoreOpt = Annotated[
    str | None,
    typer.Option("--store", help="store URL (default: [store] url of the configuration)"),
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="configuration file (default: authhost.toml)")
]
# a report's period: a UTC day, or [since, until) in epoch seconds (admin.service._period)
DayOpt = Annotated[str, typer.Option(help="a UTC day, YYYY-MM-DD")]
SinceOpt = Annotated[float, typer.Option(help="or from this time, epoch seconds")]
UntilOpt = Annotated[float, typer.Option(help="to this time (exclusive), epoch seconds")]
IdemOpt = Annotated[
    str,
    typer.Option("--idempotency-key", help="repeat this request safely: same key, same result"),
]
LimitOpt = Annotated[int, typer.Option("--limit", min=1, max=1000, help="rows to show")]
OffsetOpt = Annotated[int, typer.Option("--offset", min=0, help="rows to skip")]

err = Console(stderr=True)


def _say(message: str) -> None:
    """A message on stderr, unwrapped and without markup (paths and errors print as they are)."""
    err.print(message, markup=False, highlight=False, soft_wrap=True)


def _config(config_file: Path | None, store: str | None, *, demo: bool = False) -> Config:
    try:
        config = load_config(config_file).replace("store", url=store)
    except ConfigError as exc:
        _say(f"authhost: configuration error: {exc}")
        raise typer.Exit(2) from None
    return config.replace("security", demo=True) if demo else config


def actor_name() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@asynccontextmanager
async def open_card_service(
    config: Config, actor: str, *, pipeline: bool = False
) -> AsyncIterator[CardService]:
    """A CardService on the configured store and security module, closed on exit. With
    ``pipeline``, on a whole runtime (rules, models) whose authorisation pipeline it posts
    through, as the server's own admin API does (clearing, disputes)."""
    from authhost.security.module import SecurityModule
    from authhost.store import open_store

    if pipeline:
        from authhost.runtime import open_runtime

        async with open_runtime(config) as runtime:
            yield CardService(
                runtime.store, runtime.security, actor, decide_many=runtime.handler.decide_many,
                hold_days=config.auth.hold_days,
            )  # fmt: skip
        return

    security = SecurityModule.open(config.security)
    store = await open_store(config.store.url)
    try:
        yield CardService(store, security, actor, hold_days=config.auth.hold_days)
    finally:
        await store.close()


def _run(
    config: Config,
    work: Callable[[CardService], Awaitable[Any]],
    *,
    show: bool = True,
    pipeline: bool = False,
) -> Any:
    """Run ``work`` on a service (``pipeline``: one that posts through the authorisation
    pipeline); print its result as JSON; turn errors into messages."""

    async def main() -> Any:
        async with open_card_service(config, actor_name(), pipeline=pipeline) as service:
            return await work(service)

    try:
        result = trio.run(main)
    except ServiceError as exc:
        _say(f"error: {exc.message}")
        raise typer.Exit(1) from None
    except ValidationError as exc:
        _say(f"error: {invalid_request(exc).message}")
        raise typer.Exit(1) from None
    except (OSError, ValueError, SecurityError, StoreError) as exc:  # store/key store problems
        _say(f"error: {exc}")
        raise typer.Exit(1) from None
    if show and result is not None:
        typer.echo(json.dumps(result, indent=2))
    return result


def _validated(model: type[rq.BaseModel], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate({k: v for k, v in data.items() if v is not None})
    except ValidationError as exc:
        _say(f"error: {invalid_request(exc).message}")
        raise typer.Exit(1) from None


# --- products -------------------------------------------------------------------------------

products = typer.Typer(help="Card products (BIN, kind, validity, limits, PIN method).")


@products.command("list")
def products_list(store: StoreOpt = None, config: ConfigOpt = None) -> None:
    """List card products."""
    _run(_config(config, store), lambda s: s.list_products())


@products.command("show")
def products_show(product_id: str, store: StoreOpt = None, config: ConfigOpt = None) -> None:
    """Show one product."""
    _run(_config(config, store), lambda s: s.get_product(product_id))


@products.command("update")
def products_update(
    product_id: str,
    spec: Annotated[
        Path, typer.Option("--json", help="the fields to change, as a JSON file (see API)")
    ],
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Change a live product: name, limits, channels, blocked_mccs, blocked_countries,
    validity_months, atc_jump_limit, cavv_key_name (each given field replaces the product's;
    audited). A running server applies it from the next authorisation."""
    change = _validated(rq.ProductChange, _read_json(spec))
    _run(_config(config, store), lambda s: s.update_product(product_id, change))


@products.command("create")
def products_create(
    issuer_id: Annotated[str, typer.Option(help="issuer (institution) id")] = "",
    name: Annotated[str, typer.Option(help="product name")] = "",
    bin: Annotated[str, typer.Option("--bin", help="6 or 8 digit BIN")] = "",  # noqa: A002
    product_id: Annotated[str | None, typer.Option(help="id (default: generated)")] = None,
    kind: Annotated[CardKind, typer.Option(help="debit, credit or prepaid")] = CardKind.DEBIT,
    currency: Annotated[str, typer.Option(help="ISO 4217 numeric")] = "978",
    pan_length: Annotated[int, typer.Option(help="PAN length")] = 16,
    validity_months: Annotated[int, typer.Option(help="validity of a new card")] = 36,
    pin_method: Annotated[PinMethod, typer.Option(help="visa_pvv or ibm3624")] = (
        PinMethod.VISA_PVV
    ),
    spec: Annotated[
        Path | None, typer.Option("--json", help="full product as a JSON file (see API)")
    ] = None,
    idempotency_key: IdemOpt = "",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Create a product from options, or from a JSON file with every field (--json)."""
    if spec is not None:
        data = _read_json(spec)
    else:
        data = {
            "product_id": product_id,
            "issuer_id": issuer_id,
            "name": name,
            "bin": bin,
            "kind": kind.value,
            "currency": currency,
            "pan_length": pan_length,
            "validity_months": validity_months,
            "pin_method": pin_method.value,
        }
    request = _validated(rq.NewProduct, data)
    _run(
        _config(config, store),
        lambda s: s.create_product(request, idempotency_key=idempotency_key),
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        _say(f"error: {path}: {exc}")
        raise typer.Exit(1) from None
    if not isinstance(data, dict):
        _say(f"error: {path}: expected a JSON object")
        raise typer.Exit(1)
    return data


# --- accounts -------------------------------------------------------------------------------

accounts = typer.Typer(help="Accounts: funds, credit limits.")


@accounts.command("list")
def accounts_list(
    limit: LimitOpt = 100, offset: OffsetOpt = 0, store: StoreOpt = None, config: ConfigOpt = None
) -> None:
    """List accounts."""
    _run(_config(config, store), lambda s: s.list_accounts(limit=limit, offset=offset))


@accounts.command("show")
def accounts_show(account_id: str, store: StoreOpt = None, config: ConfigOpt = None) -> None:
    """Show one account with its open-to-buy."""
    _run(_config(config, store), lambda s: s.get_account(account_id))


@accounts.command("create")
def accounts_create(
    account_id: Annotated[str | None, typer.Option(help="id (default: generated)")] = None,
    currency: Annotated[str, typer.Option(help="ISO 4217 numeric")] = "978",
    kind: Annotated[CardKind, typer.Option(help="debit, credit or prepaid")] = CardKind.DEBIT,
    balance: Annotated[int, typer.Option(help="opening funds, minor units")] = 0,
    credit_limit: Annotated[int, typer.Option(help="credit accounts: limit, minor units")] = 0,
    idempotency_key: IdemOpt = "",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Open an account."""
    request = _validated(
        rq.NewAccount,
        {
            "account_id": account_id,
            "currency": currency,
            "kind": kind.value,
            "balance": balance,
            "credit_limit": credit_limit,
        },
    )
    _run(
        _config(config, store),
        lambda s: s.create_account(request, idempotency_key=idempotency_key),
    )


@accounts.command("fund")
def accounts_fund(
    account_id: str,
    amount: Annotated[int, typer.Argument(help="minor units; negative takes funds off")],
    reason: Annotated[str, typer.Option(help="recorded in the audit log")] = "",
    idempotency_key: IdemOpt = "",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Load funds (or, for credit accounts, record a payment); negative amounts take off, never
    below what is available. With --idempotency-key the change is made once."""
    request = _validated(rq.FundsChange, {"amount_minor": amount, "reason": reason})
    _run(
        _config(config, store),
        lambda s: s.change_funds(account_id, request, idempotency_key=idempotency_key),
    )


@accounts.command("ledger-balance")
def accounts_ledger_balance(
    account_id: str,
    balance: Annotated[int, typer.Argument(help="the bank's ledger balance, minor units")],
    through: Annotated[
        int, typer.Option(help="the journal id the ledger has every movement up to")
    ],
    reason: Annotated[str, typer.Option(help="recorded in the audit log")] = "",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Set the balance to the bank's ledger balance through a journal id, plus what the host
    journalled after it (the movements feed's cursor the ledger has posted)."""
    request = _validated(
        rq.LedgerBalance,
        {"ledger_balance_minor": balance, "through_journal_id": through, "reason": reason},
    )
    _run(_config(config, store), lambda s: s.sync_ledger(account_id, request))


@accounts.command("ledger-file")
def accounts_ledger_file(
    file: Annotated[
        Path, typer.Argument(help="CSV: account_id,ledger_balance_minor,through_journal_id")
    ],
    results: Annotated[
        Path | None, typer.Option(help="write line,account_id,balance,error per row to this CSV")
    ] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The bank's ledger balances, a row per account (optional column: reason): each
    account's balance becomes its ledger balance plus what the host journalled after the
    row's cursor. Bad rows are reported by line number and skipped; re-running is harmless."""
    from authhost.admin.csv_rows import read_rows
    from authhost.admin.ledger_file import LEDGER_COLUMNS, sync_ledger_rows

    rows = _csv_file_rows(lambda: read_rows(file, LEDGER_COLUMNS))

    async def sync(service: CardService, advance: Callable[[Any], None]) -> list[Any]:
        return await sync_ledger_rows(service, rows, advance)

    done = _run_csv_rows(file, len(rows), "synchronising", sync, _config(config, store))
    _report_csv_rows(
        file, done, "synchronised", results, ("line", "account_id", "balance", "error")
    )


@accounts.command("close")
def accounts_close(
    account_id: str,
    reason: Annotated[str, typer.Option(help="recorded in the audit log")] = "",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Close an account: cancel every live card on it (62 from the next request), once it
    holds nothing for pending authorisations, has no balance and no open dispute. Audited."""
    _run(_config(config, store), lambda s: s.close_account(account_id, reason))


@accounts.command("holds")
def accounts_holds(account_id: str, store: StoreOpt = None, config: ConfigOpt = None) -> None:
    """The holds that keep the account's money from being spent, oldest first: each with the
    authorisation behind it (card, merchant, approval code) and when it expires."""
    _run(_config(config, store), lambda s: s.account_holds(account_id))


@accounts.command("statement")
def accounts_statement(
    account_id: str,
    day: DayOpt = "",
    since: SinceOpt = 0.0,
    until: UntilOpt = 0.0,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """What moved the account's money in a day or period: every hold, posting, refund and
    reversal with its card (masked), merchant and approval code, their sums, and the account
    as it stands now."""
    _run(
        _config(config, store),
        lambda s: s.account_statement(account_id, day=day, since=since, until=until),
    )


@accounts.command("credit-limit")
def accounts_credit_limit(
    account_id: str,
    limit: Annotated[int, typer.Argument(help="new credit limit, minor units")],
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Set a credit account's limit."""
    request = _validated(rq.CreditLimitChange, {"credit_limit": limit})
    _run(_config(config, store), lambda s: s.set_credit_limit(account_id, request))


# --- cards ----------------------------------------------------------------------------------

cards = typer.Typer(help="Cards: issue, personalise, lifecycle, bureau export, bulk issue.")


@cards.command("list")
def cards_list(
    account_id: Annotated[str, typer.Option(help="only this account's cards")] = "",
    state: Annotated[str, typer.Option(help="only cards in this state")] = "",
    limit: LimitOpt = 100,
    offset: OffsetOpt = 0,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """List cards (masked PANs)."""
    _run(
        _config(config, store),
        lambda s: s.list_cards(account_id=account_id, state=state, limit=limit, offset=offset),
    )


@cards.command("show")
def cards_show(card_id: str, store: StoreOpt = None, config: ConfigOpt = None) -> None:
    """Show one card, with when it was last used (last_used, epoch seconds; null: never)."""
    _run(_config(config, store), lambda s: s.show_card(card_id))


@cards.command("find")
def cards_find(store: StoreOpt = None, config: ConfigOpt = None) -> None:
    """Find a card by PAN. The PAN is read from a hidden prompt (or stdin), never an argument,
    so it stays out of shell history and process lists."""
    interactive = sys.stdin.isatty()
    pan = typer.prompt("PAN", hide_input=True) if interactive else sys.stdin.readline()
    request = _validated(rq.CardSearch, {"pan": pan.strip()})
    _run(_config(config, store), lambda s: s.find_card(request.pan))


@cards.command("issue")
def cards_issue(
    product_id: Annotated[str, typer.Option(help="product to issue on")],
    account_id: Annotated[str, typer.Option(help="account the card draws on")],
    cardholder_name: Annotated[str, typer.Option(help="name as embossed")] = "",
    address_ref: Annotated[str, typer.Option(help="delivery address reference")] = "",
    idempotency_key: IdemOpt = "",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Produce a card (state created); the answer shows the masked PAN only."""
    request = _validated(
        rq.IssueCard,
        {
            "product_id": product_id,
            "account_id": account_id,
            "cardholder_name": cardholder_name,
            "address_ref": address_ref,
        },
    )
    _run(_config(config, store), lambda s: s.issue_card(request, idempotency_key=idempotency_key))


@cards.command("personalise")
def cards_personalise(
    card_id: str,
    cardholder_name: Annotated[str | None, typer.Option(help="name as embossed")] = None,
    account_id: Annotated[str | None, typer.Option(help="link to another account")] = None,
    address_ref: Annotated[str | None, typer.Option(help="delivery address reference")] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Set the cardholder name, the account link or the delivery address reference."""
    request = _validated(
        rq.Personalise,
        {"cardholder_name": cardholder_name, "account_id": account_id, "address_ref": address_ref},
    )
    _run(_config(config, store), lambda s: s.personalise(card_id, request))


Amount = Annotated[int | None, typer.Option(min=0, help="minor units")]
Count = Annotated[int | None, typer.Option(min=0, help="transactions")]


@cards.command("limits")
def cards_limits(
    card_id: str,
    per_transaction: Amount = None,
    daily_amount: Amount = None,
    daily_count: Count = None,
    monthly_amount: Amount = None,
    monthly_count: Count = None,
    atm_per_transaction: Amount = None,
    atm_daily_amount: Amount = None,
    atm_daily_count: Count = None,
    max_balance: Amount = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Set the card's own limits (they beat the product's); no option removes them all.
    --max-balance: the most a debit or prepaid account may hold after a transfer to the card."""
    request = _validated(
        rq.LimitsSpec,
        {
            "per_transaction": per_transaction,
            "daily_amount": daily_amount,
            "daily_count": daily_count,
            "monthly_amount": monthly_amount,
            "monthly_count": monthly_count,
            "atm_per_transaction": atm_per_transaction,
            "atm_daily_amount": atm_daily_amount,
            "atm_daily_count": atm_daily_count,
            "max_balance": max_balance,
        },
    )
    _run(_config(config, store), lambda s: s.set_card_limits(card_id, request))


def _lifecycle_command(action: str, summary: str) -> None:
    def command(
        card_id: str,
        reason: Annotated[str, typer.Option(help="recorded in the audit log")] = "",
        store: StoreOpt = None,
        config: ConfigOpt = None,
    ) -> None:
        _run(_config(config, store), lambda s: s.apply(card_id, action, reason=reason))

    command.__doc__ = summary + "."
    cards.command(action)(command)


for _action, _summary in LIFECYCLE_ACTIONS.items():
    _lifecycle_command(_action, _summary)


def _check_named_or_all(card_ids: list[str] | None, all_created: bool) -> None:
    if bool(card_ids) == all_created:
        _say("error: name the cards, or give --all-created")
        raise typer.Exit(1)


async def _named_or_created(
    service: CardService, card_ids: list[str] | None, all_created: bool, without_pin: bool = False
) -> list[str]:
    """The cards named, or with ``all_created`` every card at created (only those without a
    PIN with ``without_pin``: a renewal keeps its PIN)."""
    ids = list(card_ids or [])
    if all_created:
        offset = 0
        while page := await service.list_cards(state="created", limit=1000, offset=offset):
            ids += [c["card_id"] for c in page if not (without_pin and c["pin_set"])]
            offset += len(page)
    return ids


@cards.command("exception-file")
def cards_exception_file(
    out: Annotated[Path, typer.Option("--out", help="new file to write (never overwritten)")],
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Write the networks' exception file: every lost (41), stolen (43), suspended, closed or
    damaged (62) card's PAN with its action code and purge date (its expiry), for stand-in;
    audited.

    PANs in clear: send the file to the network and delete it.
    """
    count = _run(_config(config, store), lambda s: s.export_exception_file(out), show=False)
    _say(f"wrote {count} exception record(s) to {out} (mode 0600)")


@keys_app.command("reseal-pans")
def keys_reseal_pans(store: StoreOpt = None, config: ConfigOpt = None) -> None:
    """Seal every stored PAN under the newest PAN data key (after rotate-pan-key), so that the
    old version can be retired; safe to run while the server serves, and to run again.
    Audited."""
    _run(_config(config, store), lambda s: s.reseal_pans())


@keys_app.command("retire-pan-key")
def keys_retire_pan_key(
    version: Annotated[int, typer.Argument(help="the PAN data key version to destroy")],
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Destroy an old PAN data key version at the end of its cryptoperiod: refused while any
    stored PAN is still sealed under it (run reseal-pans first), and for the newest version.
    Audited."""
    _run(_config(config, store), lambda s: s.retire_pan_key(version))


@cards.command("account-updates")
def cards_account_updates(
    out: Annotated[Path, typer.Option("--out", help="new file to write (never overwritten)")],
    day: DayOpt = "",
    since: SinceOpt = 0.0,
    until: UntilOpt = 0.0,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Write the networks' account updater file (Visa Account Updater, Mastercard ABU) for a
    day or period: each card merchants may keep on file that changed, A a new number, E a
    new expiry, C closed; audited.

    PANs in clear: send the file to the network and delete it.
    """
    summary = _run(
        _config(config, store),
        lambda s: s.export_account_updates(out, day=day, since=since, until=until),
        show=False,
    )
    counts = ", ".join(f"{code} {n}" for code, n in summary["updates"].items())
    _say(f"wrote {sum(summary['updates'].values())} update(s) ({counts}) to {out} (mode 0600)")


@cards.command("export-personalisation")
def cards_export_personalisation(
    out: Annotated[Path, typer.Option("--out", help="new file to write (never overwritten)")],
    card_ids: Annotated[
        list[str] | None, typer.Argument(help="cards to send to the bureau")
    ] = None,
    all_created: Annotated[
        bool,
        typer.Option(help="every card at created: the month's new and renewed plastics"),
    ] = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Write card bureau records (clear PAN, expiry, CVVs) to a new file; audited.

    Clear PANs and card values: protect the file and delete it once sent.
    """
    _check_named_or_all(card_ids, all_created)

    async def export(service: CardService) -> int:
        ids = await _named_or_created(service, card_ids, all_created)
        return await service.export_personalisation(ids, out)

    count = _run(_config(config, store), export, show=False)
    _say(f"wrote {count} personalisation record(s) to {out} (mode 0600)")


def _comma_list(text: str) -> list[str]:
    """``"840, 124,"`` -> ``["840", "124"]``: an option's comma-separated values."""
    return [part.strip() for part in text.split(",") if part.strip()]


@cards.command("controls")
def cards_controls(
    card_id: str,
    block_channels: Annotated[
        str, typer.Option(help="channels to switch off: pos,atm,ecommerce,contactless,moto")
    ] = "",
    block_mccs: Annotated[str, typer.Option(help="merchant categories, e.g. 7995,5967")] = "",
    block_countries: Annotated[str, typer.Option(help="ISO 3166 numeric, e.g. 643")] = "",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Switch channels, merchant categories or countries off on one card (all of the card's
    controls: no option switches everything back on); declined 57 from the next request."""
    spec = _validated(
        rq.CardControlsSpec,
        {"blocked_channels": _comma_list(block_channels), "blocked_mccs": _comma_list(block_mccs),
         "blocked_countries": _comma_list(block_countries)},
    )  # fmt: skip
    _run(_config(config, store), lambda s: s.set_card_controls(card_id, spec))


@cards.command("chip-scripts")
def cards_chip_scripts(
    card_id: str,
    commands: Annotated[
        str,
        typer.Argument(
            help="application_block, application_unblock, pin_unblock (comma list); empty: "
            "withdraw what is waiting"
        ),
    ] = "",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Queue issuer script commands for the card's chip: they go in field 55 of the answer to
    its next online chip request (needs a product with imk_smi_name)."""
    spec = _validated(rq.ChipScriptsSpec, {"commands": _comma_list(commands)})
    _run(_config(config, store), lambda s: s.set_chip_scripts(card_id, spec))


@cards.command("travel")
def cards_travel(
    card_id: str,
    countries: Annotated[
        str, typer.Option(help="ISO 3166 numeric codes, comma separated (e.g. 840,124)")
    ] = "",
    start: Annotated[str, typer.Option(help="first day, YYYY-MM-DD (UTC)")] = "",
    end: Annotated[str, typer.Option(help="last day, YYYY-MM-DD (UTC)")] = "",
    clear: Annotated[bool, typer.Option(help="remove every travel notice of the card")] = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Add a travel notice to the card (the cardholder's trip: countries and days), or --clear
    them; notices already over are dropped. Rules read card.travel_notice."""
    settings = _config(config, store)

    async def travel(service: CardService) -> dict[str, Any]:
        today = time.strftime("%Y-%m-%d", time.gmtime())
        kept = [] if clear else [
            n for n in (await service.get_card(card_id))["travel_notices"] if n["end"] >= today
        ]  # fmt: skip
        if not clear:
            kept.append({"countries": _comma_list(countries), "start": start, "end": end})
        return await service.set_travel_notices(
            card_id, _validated(rq.TravelNotices, {"notices": kept})
        )

    _run(settings, travel)


@cards.command("token-add")
def cards_token_add(
    card_id: str,
    requestor_id: Annotated[str, typer.Option(help="token requestor ID (11 digits)")],
    expiry: Annotated[str, typer.Option(help="the token's expiry, YYMM")] = "",
    wallet: Annotated[
        str,
        typer.Option(
            help="apple_pay, google_pay, samsung_pay, merchant, other (default: by requestor ID)"
        ),
    ] = "",
    device: Annotated[str, typer.Option(help="what it runs on (phone, watch...)")] = "",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Register a payment token the network issued for the card. The token number is read
    from a hidden prompt (or stdin), never an argument; only its keyed index and last four
    digits are kept."""
    interactive = sys.stdin.isatty()
    number = typer.prompt("token number", hide_input=True) if interactive else sys.stdin.readline()
    spec = _validated(
        rq.NewToken,
        {
            "token_pan": number.strip(),
            "requestor_id": requestor_id,
            "expiry": expiry,
            "wallet": wallet,
            "device": device,
        },
    )
    _run(_config(config, store), lambda s: s.add_token(card_id, spec))


@cards.command("wallet-events")
def cards_wallet_events(
    after_id: Annotated[int, typer.Option(min=0, help="the last audit id already read")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="events at most")] = 1000,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The token events after an audit id, in order, for the notification service: cards
    added to wallets (or asked for), tokens activated, suspended, deleted; ask again with
    next_after_id."""
    _run(_config(config, store), lambda s: s.wallet_events(after_id, limit))


@cards.command("token-state")
def cards_token_state(
    card_id: str,
    token_ref: Annotated[str, typer.Argument(help="the token's token_ref (cards show)")],
    state: Annotated[str, typer.Option(help="active, suspended or deleted (final)")],
    reason: Annotated[str, typer.Option(help="why, for the audit log")] = "",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Suspend (a lost phone), resume or delete one of the card's payment tokens."""
    spec = _validated(rq.TokenChange, {"state": state, "reason": reason})
    _run(_config(config, store), lambda s: s.set_token_state(card_id, token_ref, spec))


@cards.command("stop-payments")
def cards_stop_payments(
    card_id: str,
    merchant: Annotated[
        list[str] | None,
        typer.Option(help="a merchant id (field 42) whose recurring charges to stop; repeat"),
    ] = None,
    all_merchants: Annotated[
        bool, typer.Option("--all-merchants", help="stop every merchant's recurring charges")
    ] = False,
    until: Annotated[str, typer.Option(help="last day in force, YYYY-MM-DD (UTC)")] = "",
    withdraw: Annotated[
        list[str] | None,
        typer.Option(help="a merchant id whose stop to withdraw (* for --all-merchants)"),
    ] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Stop a merchant's recurring charges on the card (the cardholder cancelled a
    subscription that keeps charging): its merchant-initiated requests are declined R1, or R3
    with --all-merchants; stops already in place are kept unless withdrawn."""
    settings = _config(config, store)

    async def stop(service: CardService) -> dict[str, Any]:
        gone = set(withdraw or [])
        kept = [x for x in (await service.get_card(card_id))["stop_payments"]
                if x["merchant_id"] not in gone]  # fmt: skip
        added = [*(merchant or []), *(["*"] if all_merchants else [])]
        kept += [{"merchant_id": m, "until": until} for m in added]
        return await service.set_stop_payments(
            card_id, _validated(rq.StopPayments, {"stops": kept})
        )

    _run(settings, stop)


@cards.command("expiring")
def cards_expiring(
    months: Annotated[int, typer.Option(min=1, max=60, help="months ahead, this one first")] = 12,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """How many live cards expire in each coming month without a successor yet: the renewal
    runs (renew-expiring) and card bureau volumes to plan."""
    _run(_config(config, store), lambda s: s.expiring_cards(months))


@cards.command("compromised")
def cards_compromised(
    file: Annotated[Path, typer.Argument(help="the network's alert: one PAN per line")],
    action: Annotated[
        str,
        typer.Option(help="watch (put them on a rules list), suspend (62) or reissue (new PANs)"),
    ] = "watch",
    list_name: Annotated[str, typer.Option(help="the rules list for watch")] = "compromised_cards",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """A compromise alert from the network (PANs exposed in a breach): this issuer's live cards
    among them are watched (the rules list, for stricter rules) or suspended; the rest are
    counted. The PANs are read, never kept or printed."""
    try:
        pans = [line.strip() for line in file.read_text().splitlines() if line.strip()]
    except OSError as exc:
        _say(f"error: cannot read {file}: {exc.strerror or exc}")
        raise typer.Exit(1) from None
    alert = _validated(rq.CompromiseAlert, {"pans": pans, "action": action, "list_name": list_name})
    _run(_config(config, store), lambda s: s.compromised_cards(alert.pans, alert.action,
                                                               alert.list_name))  # fmt: skip


@cards.command("dormant")
def cards_dormant(
    days: Annotated[int, typer.Option(min=1, max=3650, help="not used for this many days")] = 365,
    suspend: Annotated[bool, typer.Option(help="suspend them (reason: dormant; audited)")] = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Active cards nobody has used for DAYS (never used: counted from activation), with when
    each was last used; --suspend suspends them until the cardholder asks."""
    _run(
        _config(config, store),
        lambda s: s.dormant_cards(s.clock() - days * 86_400.0, suspend=suspend),
    )


@cards.command("renew-expiring")
def cards_renew_expiring(
    expiry: Annotated[str, typer.Argument(help="the month the cards expire, YYMM")],
    dry_run: Annotated[bool, typer.Option(help="list the cards due, renew nothing")] = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The monthly renewal run: renew every issued, active or suspended card expiring in
    EXPIRY that has no successor yet (same PAN, new expiry and card values; then
    export-personalisation for the bureau). Running the month again renews nothing twice."""
    run = _validated(rq.RenewalRun, {"expiry": expiry, "dry_run": dry_run})
    _run(_config(config, store), lambda s: s.renew_expiring(run))


@cards.command("bulk-issue")
def cards_bulk_issue(
    file: Annotated[Path, typer.Argument(help="CSV: product_id,account_id[,cardholder_name,...]")],
    results: Annotated[
        Path | None, typer.Option(help="write line,card_id,pan,error per row to this CSV")
    ] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Issue a card per CSV row with a progress bar; bad rows are reported by line number and
    skipped. Re-running the same file issues nothing twice."""
    from authhost.admin.bulk import bulk_issue, read_rows

    rows = _csv_file_rows(lambda: read_rows(file))

    async def issue(service: CardService, advance: Callable[[Any], None]) -> list[Any]:
        return (await bulk_issue(service, rows, advance)).results

    done = _run_csv_rows(file, len(rows), "issuing", issue, _config(config, store))
    _report_csv_rows(file, done, "issued", results, ("line", "card_id", "pan", "error"))


def _csv_file_rows(read: Callable[[], list[Any]]) -> list[Any]:
    """The rows of an operator's CSV file, or exit 1 with why the file cannot be used."""
    from authhost.admin.csv_rows import CsvFileError

    try:
        return read()
    except CsvFileError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(1) from None


def _run_csv_rows(
    file: Path,
    total: int,
    doing: str,
    work: Callable[[CardService, Callable[[Any], None]], Awaitable[list[Any]]],
    cfg: Config,
) -> list[Any]:
    """Run ``work`` over a file's rows with a progress bar counting rows done and failed."""
    progress = Progress(
        TextColumn(doing),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        console=err,
    )

    async def run(service: CardService) -> list[Any]:
        with progress:
            task = progress.add_task(doing, total=total, failed=0)
            failed = 0

            def advance(result: Any) -> None:
                nonlocal failed
                failed += 0 if result.ok else 1
                progress.update(task, advance=1, failed=failed)

            return await work(service, advance)

    return _run(cfg, run, show=False)


def _report_csv_rows(
    file: Path, done: list[Any], verb: str, results: Path | None, columns: tuple[str, ...]
) -> None:
    """Each failed row by line, the counts, and every row's result to ``results`` (CSV);
    exit 1 when a row failed."""
    failed = [row for row in done if not row.ok]
    for failure in failed:
        _say(f"{file}:{failure.line}: {failure.error}")
    _say(f"{len(done)} row(s): {len(done) - len(failed)} {verb}, {len(failed)} failed")
    if results is not None:
        import csv

        with results.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            for row in done:
                writer.writerow([getattr(row, name) for name in columns])
    if failed:
        raise typer.Exit(1)


# --- PIN ------------------------------------------------------------------------------------

pin = typer.Typer(help="PIN set/reset (from an encrypted PIN block), generate, and unlock.")


@pin.command("set")
def pin_set(
    card_id: str,
    pin_block: Annotated[str, typer.Option(help="encrypted PIN block, hex (16 or 32 digits)")],
    ksn: Annotated[str | None, typer.Option(help="DUKPT KSN when the block is DUKPT")] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Set or reset a PIN; only its PVV / IBM 3624 offset is stored."""
    request = _validated(rq.PinChange, {"pin_block": pin_block, "ksn": ksn})
    _run(_config(config, store), lambda s: s.set_pin(card_id, request))


@pin.command("generate")
def pin_generate(
    out: Annotated[Path, typer.Option("--out", help="new file for the PIN mailer printer")],
    card_ids: Annotated[list[str] | None, typer.Argument(help="cards to give a new PIN")] = None,
    all_created: Annotated[
        bool, typer.Option(help="every card at created without a PIN (new plastics)")
    ] = False,
    length: Annotated[int, typer.Option(help="digits (IBM 3624 cards; a PVV holds 4)")] = 4,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Random PINs for cards, out only as PIN blocks under the PIN mailer printer's key.

    The cards keep the PVV or offset; the file (mode 0600, never overwritten) holds one line
    per card: PAN, cardholder, PIN block, key name and check value. Audited per card.
    """
    _check_named_or_all(card_ids, all_created)
    if not 4 <= length <= 12:
        _say("error: --length is 4 to 12 digits")
        raise typer.Exit(2)

    async def generate(service: CardService) -> int:
        ids = await _named_or_created(service, card_ids, all_created, without_pin=True)
        return await service.generate_pins(ids, out, length)

    count = _run(_config(config, store), generate, show=False)
    _say(f"wrote {count} PIN mailer record(s) to {out} (mode 0600)")


@pin.command("unlock")
def pin_unlock(card_id: str, store: StoreOpt = None, config: ConfigOpt = None) -> None:
    """Reset the wrong-PIN counter of a locked card (response 75)."""
    _run(_config(config, store), lambda s: s.unlock_pin(card_id))


# --- journal and audit ----------------------------------------------------------------------

journal = typer.Typer(help="The authorisation journal: per card, or exported for analysts.")


@journal.command("show")
def journal_show(
    card_id: str,
    limit: LimitOpt = 100,
    after_id: Annotated[int, typer.Option(help="entries after this journal id")] = 0,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """A card's authorisation history (masked)."""
    _run(_config(config, store), lambda s: s.card_journal(card_id, limit=limit, after_id=after_id))


@journal.command("export")
def journal_export(
    out: Annotated[Path, typer.Option("--out", help="file to write")],
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet")] = "csv",
    card_id: Annotated[str, typer.Option(help="only this card")] = "",
    account_id: Annotated[str, typer.Option(help="only this account")] = "",
    merchant_id: Annotated[str, typer.Option(help="only this merchant (field 42)")] = "",
    since: Annotated[float, typer.Option(help="epoch seconds, inclusive")] = 0.0,
    until: Annotated[float, typer.Option(help="epoch seconds, exclusive")] = float("inf"),
    labels: Annotated[
        bool, typer.Option(help="add a label column from the fraud reports (1 = fraud)")
    ] = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Export the journal (columns = JOURNAL_COLUMNS) as CSV or Parquet.

    With --labels, a `label` column (1 for an entry reported as fraud, else 0) makes the file
    what `authhost train --data` and `authhost backtest --data` read."""
    from authhost.admin.journal_export import FORMATS, export_journal
    from authhost.store.interface import JournalQuery

    if fmt not in FORMATS:
        _say(f"error: --format must be one of {', '.join(FORMATS)}")
        raise typer.Exit(2)
    query = JournalQuery(
        card_id=card_id, account_id=account_id, merchant_id=merchant_id, since=since, until=until
    )
    count = _run(
        _config(config, store),
        lambda s: export_journal(s.store, query, fmt, out, labels=labels),
        show=False,
    )
    _say(f"wrote {count} journal entries to {out}")


@journal.command("report-fraud")
def journal_report_fraud(
    card_id: Annotated[str, typer.Argument(help="the card")],
    journal_id: Annotated[int, typer.Argument(help="its journal entry (journal show)")],
    source: Annotated[str, typer.Option(help="chargeback, cardholder or analyst")],
    genuine: Annotated[bool, typer.Option(help="the transaction was genuine after all")] = False,
    note: Annotated[str, typer.Option(help="free text (PANs are masked)")] = "",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Report a journalled transaction as fraud (or --genuine): the label the journal export
    gives training and backtests (audited)."""
    spec = _validated(rq.FraudReportSpec, {"fraud": not genuine, "source": source, "note": note})
    _run(_config(config, store), lambda s: s.report_fraud(card_id, journal_id, spec))


@journal.command("explain")
def journal_explain(
    card_id: str,
    journal_id: int,
    model: Annotated[
        str, typer.Option(help="an artifact of the models directory (default: the champion)")
    ] = "",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Why one of the card's transactions scored what it did: its features as the server
    computed them (the card's 30 days before it, replayed; and the merchant's last hour for a
    model that reads it), the model's score and the features that pushed it up most."""
    settings = _config(config, store)

    async def explain(service: CardService) -> dict[str, Any]:
        service.models_dir = settings.models.dir
        return await service.explain_entry(card_id, journal_id, model)

    _run(settings, explain)


@journal.command("explain-rules")
def journal_explain_rules(
    card_id: str,
    journal_id: int,
    rules: Annotated[Path | None, typer.Option(help="a rules file (default: [rules] file)")] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """What each rule makes of one of the card's transactions: matched or not, the values of
    the variables it reads (its context as the server had it, replayed), the set's outcome in
    priority order, and what the journal recorded. Try a new rules file on a past case with
    --rules."""
    settings = _config(config, store)

    async def explain(service: CardService) -> dict[str, Any]:
        service.rules_file, service.lists_dir = settings.rules.file, settings.rules.lists_dir
        return await service.explain_rules(card_id, journal_id, rules or "")

    _run(settings, explain)


@journal.command("fraud-reports")
def journal_fraud_reports(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    after_id: Annotated[int, typer.Option(min=0)] = 0,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The fraud reports (verdicts on journal entries), in journal order."""
    _run(_config(config, store), lambda s: s.fraud_reports(limit=limit, after_id=after_id))


@journal.command("reviews")
def journal_reviews(
    show_all: Annotated[
        bool, typer.Option("--all", help="also the ones with a verdict already")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    after_id: Annotated[int, typer.Option(min=0)] = 0,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The review queue: transactions the rules flagged for review, oldest first, with their
    verdict so far (record one with report-fraud)."""
    _run(
        _config(config, store),
        lambda s: s.review_queue(limit=limit, after_id=after_id, open_only=not show_all),
    )


@journal.command("acceptors")
def journal_acceptors(
    by: Annotated[
        str, typer.Option(help="the counter to rank by, e.g. failed_cvv_10m, distinct_cards_1h")
    ] = "failed_cvv_10m",
    terminals: Annotated[bool, typer.Option(help="terminals instead of merchants")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The merchants (or terminals) with the most of one counter now, over every card: where
    card testing is going on. The counters are the ones rules read as merchant.* and
    terminal.*, counted from the last hour of the journal."""
    _run(
        _config(config, store),
        lambda s: s.busiest_acceptors(by=by, terminals=terminals, limit=limit),
    )


@journal.command("movements")
def journal_movements(
    after_id: Annotated[int, typer.Option(min=0, help="the last journal id already posted")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="movements at most")] = 1000,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The money movements after a journal id, in order, for the core banking ledger (entries
    2 s old and older); ask again with next_after_id."""
    _run(_config(config, store), lambda s: s.money_movements(after_id, limit))


@journal.command("alerts")
def journal_alerts(
    after_id: Annotated[int, typer.Option(min=0, help="the last journal id already read")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="alerts at most")] = 1000,
    amount_minor: Annotated[
        int, typer.Option(min=0, help="also approvals at or above this amount (0: not)")
    ] = 0,
    card_not_present: Annotated[
        bool, typer.Option("--card-not-present", help="also approvals without the card")
    ] = False,
    abroad: Annotated[bool, typer.Option("--abroad", help="also approvals abroad")] = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The cardholder alerts after a journal id, in order, for the notification service:
    suspected fraud declined, a lost or stolen card used, the PIN locked, money received, and
    the approvals asked for; ask again with next_after_id."""
    _run(
        _config(config, store),
        lambda s: s.cardholder_alerts(
            after_id,
            limit,
            amount_minor=amount_minor,
            card_not_present=card_not_present,
            abroad=abroad,
        ),  # fmt: skip
    )


@journal.command("find")
def journal_find(
    rrn: Annotated[str, typer.Option(help="retrieval reference number (field 37)")],
    day: DayOpt = "",
    since: SinceOpt = 0.0,
    until: UntilOpt = 0.0,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """What was answered for a transaction a switch or an acquirer asks about: the journal
    entries of a day or period with its retrieval reference number (field 37)."""
    _run(
        _config(config, store),
        lambda s: s.find_entries(rrn=rrn, day=day, since=since, until=until),
    )


@journal.command("totals")
def journal_totals(
    day: DayOpt = "",
    since: SinceOpt = 0.0,
    until: UntilOpt = 0.0,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """A day's (or a period's) totals for reconciliation with the networks' settlement: holds
    placed, amounts posted, refunds credited and reversals released per currency and per
    acquirer (field 32), the net owed for postings, and declines by response code."""
    _run(
        _config(config, store),
        lambda s: s.journal_totals(day=day, since=since, until=until),
    )


def models_compare(
    day: DayOpt = "",
    since: SinceOpt = 0.0,
    until: UntilOpt = 0.0,
    champion_threshold: Annotated[
        int | None, typer.Option(min=0, max=999, help="default: the champion artifact's")
    ] = None,
    challenger_threshold: Annotated[
        int | None, typer.Option(min=0, max=999, help="default: the challenger artifact's")
    ] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The champion against the challenger over the requests both scored in a period: alerts
    at each one's threshold, the reported frauds each catches and for how much, how often they
    agree, and the frauds only one of them catches. Read it before promoting a challenger."""
    settings = _config(config, store)

    async def compare(service: CardService) -> dict[str, Any]:
        service.models_dir = settings.models.dir
        return await service.compare_models(
            day=day, since=since, until=until, champion_threshold=champion_threshold,
            challenger_threshold=challenger_threshold,
        )  # fmt: skip

    _run(settings, compare)


@journal.command("prune")
def journal_prune(
    keep_days: Annotated[
        int, typer.Option(help="keep this many days of journal (at least 35); delete the rest")
    ],
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Delete journal entries, and holds that hold nothing, older than --keep-days (audited).

    Export first what the bank's retention policy keeps elsewhere (`journal export --until`).
    """
    _run(_config(config, store), lambda s: s.prune_journal(keep_days))


audit = typer.Typer(help="The audit log of changes (who, when, what, before/after).")


@audit.command("list")
def audit_list(
    subject: Annotated[str, typer.Option(help="card, account, product or list id")] = "",
    limit: LimitOpt = 100,
    after_id: Annotated[int, typer.Option(help="entries after this audit id")] = 0,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Audit entries, oldest first."""
    _run(
        _config(config, store),
        lambda s: s.audit(subject=subject, limit=limit, after_id=after_id),
    )


# --- named lists ----------------------------------------------------------------------------

disputes = typer.Typer(help="Cardholders' disputes of posted transactions.")


@disputes.command("open")
def disputes_open(
    card_id: Annotated[str, typer.Argument(help="the card")],
    journal_id: Annotated[int, typer.Argument(help="the posted charge (journal show)")],
    reason: Annotated[
        str, typer.Option(help="fraud, not_received, not_as_described, duplicate, amount, other")
    ],
    amount: Annotated[
        int | None, typer.Option("--amount-minor", help="the part disputed (default: all)")
    ] = None,
    credit: Annotated[bool, typer.Option(help="give the amount back now (provisional)")] = True,
    note: Annotated[str, typer.Option(help="free text (PANs are masked)")] = "",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Open the cardholder's dispute of a posted charge: a provisional credit (--no-credit:
    none) posted through the pipeline as a refund advice; a fraud dispute also labels the
    entry fraud. Audited."""
    spec = _validated(
        rq.DisputeOpen,
        {"reason": reason, "amount_minor": amount, "provisional_credit": credit, "note": note},
    )
    _run(
        _config(config, store),
        lambda s: s.open_dispute(card_id, journal_id, spec),
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


@disputes.command("list")
def disputes_list(
    state: Annotated[str, typer.Option(help="open, won, lost or withdrawn")] = "",
    limit: LimitOpt = 100,
    after: Annotated[str, typer.Option(help="disputes after this id (paging)")] = "",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Disputes, oldest first."""
    _run(_config(config, store), lambda s: s.list_disputes(state=state, limit=limit, after=after))


@disputes.command("show")
def disputes_show(dispute_id: str, store: StoreOpt = None, config: ConfigOpt = None) -> None:
    """One dispute."""
    _run(_config(config, store), lambda s: s.get_dispute(dispute_id))


lists = typer.Typer(help="Named lists used by fraud rules (e.g. blocked merchants).")


@lists.command("list")
def lists_list(store: StoreOpt = None, config: ConfigOpt = None) -> None:
    """Names of the lists."""
    _run(_config(config, store), lambda s: s.list_names())


@lists.command("show")
def lists_show(name: str, store: StoreOpt = None, config: ConfigOpt = None) -> None:
    """One list's values."""
    _run(_config(config, store), lambda s: s.get_list(name))


@lists.command("put")
def lists_put(
    name: str,
    file: Annotated[Path, typer.Argument(help="one value per line ('-' for stdin)")],
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Replace a list with the values of a file."""
    text = sys.stdin.read() if str(file) == "-" else file.read_text()
    values = [line.strip() for line in text.splitlines() if line.strip()]
    request = _validated(rq.ListValues, {"values": values})
    _run(_config(config, store), lambda s: s.put_list(name, request))


# --- demo -----------------------------------------------------------------------------------


def demo(
    export: Annotated[
        Path | None, typer.Option("--export", help="write the demo cards and test keys here")
    ] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Create demo products, accounts and cards (idempotent) on a demo installation.

    Runs the security module in demo mode (generated test keys). --export writes the cards
    with clear PANs, PINs and test keys for test tools: demo installations only.
    """
    from authhost.admin.demo import ensure_demo, export_demo

    async def work(service: CardService) -> list[dict[str, Any]]:
        cards = await ensure_demo(service)
        if export is not None:
            await export_demo(service, export)
        return cards

    cards = _run(_config(config, store, demo=True), work, show=False)
    for card in cards:
        typer.echo(f"{card['card_id']}  {card['pan']}  {card['state']:<9}  {card['account_id']}")
    if export is not None:
        _say(f"wrote the demo cards and test keys to {export} (test use only)")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.add_typer(products, name="products")
    app.add_typer(accounts, name="accounts")
    app.add_typer(cards, name="cards")
    app.add_typer(pin, name="pin")
    app.add_typer(journal, name="journal")
    models_app.command("compare")(models_compare)  # the models group reads the journal here
    app.add_typer(audit, name="audit")
    app.add_typer(lists, name="lists")
    app.add_typer(disputes, name="disputes")
    app.command("demo")(demo)
