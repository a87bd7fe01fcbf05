"""``authhost products`` and ``authhost accounts``: card products, accounts and their money."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from authhost.admin import requests as rq
from authhost.admin.service import CardService
from authhost.cards.model import CardKind, PinMethod
from authhost.cli.admin_support import (
    ConfigOpt,
    DayOpt,
    IdemOpt,
    LimitAmount,
    LimitCount,
    LimitOpt,
    OffsetOpt,
    RemoveLimitOpt,
    SinceOpt,
    StoreOpt,
    UntilOpt,
    _config,
    _csv_file_rows,
    _read_json,
    _report_csv_rows,
    _run,
    _run_csv_rows,
    _say,
    _validated,
    limits_named,
    minor_units,
    results_file,
)

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
    validity_months, atc_jump_limit, cavv_key_name (each given field replaces the product's,
    but the limits named are merged into its others, null removing one; audited). A running
    server applies it from the next authorisation."""
    change = _validated(rq.ProductChange, _read_json(spec))
    _run(_config(config, store), lambda s: s.update_product(product_id, change))


@products.command("limits")
def products_limits(
    product_id: str,
    per_transaction: LimitAmount = None,
    daily_amount: LimitAmount = None,
    daily_count: LimitCount = None,
    monthly_amount: LimitAmount = None,
    monthly_count: LimitCount = None,
    atm_per_transaction: LimitAmount = None,
    atm_daily_amount: LimitAmount = None,
    atm_daily_count: LimitCount = None,
    max_balance: LimitAmount = None,
    remove: RemoveLimitOpt = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="the limits named are the whole set")
    ] = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Set the product's limits, as ``cards limits`` a card's: the limits named are set, the
    product's others kept (--remove NAME drops one; --replace: the named are all there is);
    no option removes them all. Merged into the product as read, written only if still so
    (another's change kept). A running server applies it from the next authorisation."""
    named = {
        "per_transaction": per_transaction,
        "daily_amount": daily_amount,
        "daily_count": daily_count,
        "monthly_amount": monthly_amount,
        "monthly_count": monthly_count,
        "atm_per_transaction": atm_per_transaction,
        "atm_daily_amount": atm_daily_amount,
        "atm_daily_count": atm_daily_count,
        "max_balance": max_balance,
    }
    given, dropped = limits_named(named, remove)
    if replace and dropped:
        _say("error: --remove and --replace: --replace already removes what it does not name")
        raise typer.Exit(1)
    _validated(rq.LimitsSpec, given)  # the values checked; then a removed one is a null:
    # a limit not named stays out of the spec's fields set, and so stays on the product
    spec = rq.LimitsSpec.model_validate({**given, **dict.fromkeys(dropped)})

    async def limits(service: CardService) -> dict[str, Any]:
        if replace or not (given or dropped):  # the whole set (none named: none left)
            return await service.set_product_limits(product_id, spec)
        return await service.update_product(product_id, rq.ProductChange(limits=spec))

    _run(_config(config, store), limits)


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
        creates=True,  # the first thing set up on a new installation
    )


accounts = typer.Typer(help="Accounts: funds, the bank's ledger balance, credit limits.")
# an amount may be negative ("accounts fund ID -500"): click would take "-500" for an option
# ("No such option: -5") and refuse it; unknown to click, it is kept as the argument
NEGATIVE_NUMBERS = {"ignore_unknown_options": True}


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
    balance: Annotated[
        int, typer.Option(parser=minor_units, help="opening funds, minor units")
    ] = 0,
    credit_limit: Annotated[
        int,
        typer.Option(
            parser=minor_units,
            help="credit: the limit; debit: the arranged overdraft (minor units)",
        ),
    ] = 0,
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
        creates=True,
    )


@accounts.command("fund", context_settings=NEGATIVE_NUMBERS)
def accounts_fund(
    account_id: str,
    amount: Annotated[
        int, typer.Argument(parser=minor_units, help="minor units; negative takes funds off")
    ],
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


@accounts.command("ledger-balance", context_settings=NEGATIVE_NUMBERS)
def accounts_ledger_balance(
    account_id: str,
    balance: Annotated[
        int, typer.Argument(parser=minor_units, help="the bank's ledger balance, minor units")
    ],
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

    with results_file(results) as written:
        done = _run_csv_rows(file, len(rows), "synchronising", sync, _config(config, store))
        _report_csv_rows(
            file, done, "synchronised", written, ("line", "account_id", "balance", "error")
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
    reversal with its card (masked), merchant and approval code, the bank's own bookings
    (loads, take-offs, ledger syncs), their sums, the balance it opened and closed at, and
    the account as it stands now."""
    _run(
        _config(config, store),
        lambda s: s.account_statement(account_id, day=day, since=since, until=until),
    )


@accounts.command("credit-limit")
def accounts_credit_limit(
    account_id: str,
    limit: Annotated[
        int, typer.Argument(parser=minor_units, help="new limit or overdraft, minor units")
    ],
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Set a credit account's limit, or a debit account's arranged overdraft."""
    request = _validated(rq.CreditLimitChange, {"credit_limit": limit})
    _run(_config(config, store), lambda s: s.set_credit_limit(account_id, request))
