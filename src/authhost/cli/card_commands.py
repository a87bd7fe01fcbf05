"""``authhost cards``: issue, show and find cards, their lifecycle, and what is set on them
(limits, controls, chip scripts, travel notices, tokens, stop payments)."""

from __future__ import annotations

import re
import sys
import time
from typing import Annotated, Any

import typer

from authhost.admin import requests as rq
from authhost.admin.service import LIFECYCLE_ACTIONS, CardService
from authhost.admin.service.lifecycle import SUCCESSOR_ACTIONS
from authhost.cli.admin_support import (
    IDS,
    ConfigOpt,
    DayOpt,
    IdemOpt,
    LimitOpt,
    OffsetOpt,
    RemoveLimitOpt,
    SinceOpt,
    StoreOpt,
    UntilOpt,
    _comma_list,
    _config,
    _run,
    _validated,
    limits_named,
    not_nan,
)
from authhost.cli.admin_support import LimitAmount as Amount
from authhost.cli.admin_support import LimitCount as Count
from authhost.cli.tables import OutputOpt

cards = typer.Typer(help="Cards: issue, personalise, lifecycle, bureau export, bulk issue.")


@cards.command("list")
def cards_list(
    account_id: Annotated[str, typer.Option(help="only this account's cards")] = "",
    state: Annotated[str, typer.Option(help="only cards in this state")] = "",
    last4: Annotated[str, typer.Option(help="only cards whose number ends so (4 digits)")] = "",
    name: Annotated[str, typer.Option(help="only cards whose cardholder name holds this")] = "",
    limit: LimitOpt = 100,
    offset: OffsetOpt = 0,
    output: OutputOpt = "auto",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """List cards (masked PANs); --last4 and --name find a caller's card without its PAN."""
    _run(
        _config(config, store),
        lambda s: s.list_cards(
            account_id=account_id,
            state=state,
            limit=limit,
            offset=offset,
            last4=last4,
            name=name,
        ),
        table="cards",
        output=output,
    )


@cards.command("show")
def cards_show(card_id: str, store: StoreOpt = None, config: ConfigOpt = None) -> None:
    """Show one card, with when it was last used (last_used, epoch seconds; null: never)."""
    _run(_config(config, store), lambda s: s.show_card(card_id))


@cards.command("timeline")
def cards_timeline(
    card_id: str,
    day: DayOpt = "",
    since: SinceOpt = 0.0,
    until: UntilOpt = 0.0,
    before: Annotated[
        float,
        typer.Option(callback=not_nan, help="only before this time (the next_before of a page)"),
    ] = 0.0,
    limit: Annotated[int, typer.Option(min=1, max=2000, help="events at most")] = 200,
    no_chain: Annotated[
        bool, typer.Option("--no-chain", help="this card only, not its predecessors and successors")
    ] = False,
    output: OutputOpt = "auto",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """A card's case timeline, newest first: its authorisations, audited changes, fraud
    reports and disputes, and those of the cards it succeeds and that succeed it (renewals,
    replacements, reissues), each with a one-line summary (masked PANs)."""
    _run(
        _config(config, store),
        lambda s: s.card_timeline(
            card_id,
            day=day,
            since=since,
            until=until,
            before=before,
            limit=limit,
            chain=not no_chain,
        ),  # fmt: skip
        table="timeline",
        output=output,
    )


@cards.command("find")
def cards_find(store: StoreOpt = None, config: ConfigOpt = None) -> None:
    """Find a card by PAN. The PAN is read from a hidden prompt (or stdin), never an argument,
    so it stays out of shell history and process lists; in groups as on the card (spaces or
    hyphens between the digits) too."""
    interactive = sys.stdin.isatty()
    pan = typer.prompt("PAN", hide_input=True) if interactive else sys.stdin.readline()
    # "4761 7311 5035 8266", as embossed and read out, was refused as not 12-19 digits
    grouped = re.fullmatch(r"[0-9]+([ -][0-9]+)*", pan.strip())
    typed = re.sub(r"[ -]", "", pan.strip()) if grouped else pan.strip()
    request = _validated(rq.CardSearch, {"pan": typed})
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
    billing_postcode: Annotated[
        str | None, typer.Option(help="billing postcode for AVS (kept as a keyed hash only)")
    ] = None,
    billing_street: Annotated[
        str | None, typer.Option(help="billing street address for AVS (its house number hashed)")
    ] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Set the cardholder name, the account link, the delivery address reference or the
    billing address address verification compares (never stored: only keyed hashes)."""
    request = _validated(
        rq.Personalise,
        {
            "cardholder_name": cardholder_name,
            "account_id": account_id,
            "address_ref": address_ref,
            "billing_postcode": billing_postcode,
            "billing_street": billing_street,
        },
    )
    _run(_config(config, store), lambda s: s.personalise(card_id, request))


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
    remove: RemoveLimitOpt = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Set the card's own limits (they beat the product's): the limits named are set, the
    card's others kept (--remove NAME drops one); no option removes them all.
    --max-balance: the most a debit or prepaid account may hold after a transfer to the card."""
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

    async def limits(service: CardService) -> dict[str, Any]:
        if not (given or dropped):  # no option: every limit removed, whatever they were
            return await service.set_card_limits(card_id, rq.LimitsSpec())

        async def write(kept: dict[str, Any] | None) -> dict[str, Any]:
            # the limits not named are the card's own, kept: setting --daily-count used to
            # remove a --per-transaction limit set before, without a word
            merged = {**named, **{k: v for k, v in (kept or {}).items() if k not in dropped}}
            spec = _validated(rq.LimitsSpec, {**merged, **given})
            return await service.set_card_limits(card_id, spec, made_from=kept)

        return await service.merged(card_id, "limits", write)  # another's change kept

    _run(_config(config, store), limits)


def _lifecycle_command(action: str, summary: str) -> None:
    """One ``cards ACTION`` command. Only replace, renew and reissue create a card, so only
    they take ``--idempotency-key`` (a retried one makes one card): every other action
    showed the option in its --help and then refused it whatever the key."""

    def command(
        card_id: str,
        reason: Annotated[str, typer.Option(help="recorded in the audit log")] = "",
        store: StoreOpt = None,
        config: ConfigOpt = None,
    ) -> None:
        _run(_config(config, store), lambda s: s.apply(card_id, action, reason=reason))

    def successor_command(
        card_id: str,
        reason: Annotated[str, typer.Option(help="recorded in the audit log")] = "",
        idempotency_key: IdemOpt = "",
        store: StoreOpt = None,
        config: ConfigOpt = None,
    ) -> None:
        _run(
            _config(config, store),
            lambda s: s.apply(card_id, action, reason=reason, idempotency_key=idempotency_key),
        )

    chosen = successor_command if action in SUCCESSOR_ACTIONS else command
    chosen.__doc__ = summary + "."
    cards.command(action)(chosen)


for _action, _summary in LIFECYCLE_ACTIONS.items():
    _lifecycle_command(_action, _summary)


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
        if clear:
            return await service.set_travel_notices(card_id, rq.TravelNotices(notices=[]))

        async def write(notices: list[dict[str, Any]]) -> dict[str, Any]:
            today = time.strftime("%Y-%m-%d", time.gmtime())
            kept = [n for n in notices if n["end"] >= today]
            kept.append({"countries": _comma_list(countries), "start": start, "end": end})
            spec = _validated(rq.TravelNotices, {"notices": kept})
            return await service.set_travel_notices(card_id, spec, made_from=notices)

        return await service.merged(card_id, "travel_notices", write)  # another's trip kept

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
    after_id: Annotated[int, typer.Option(callback=IDS, help="the last audit id already read")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="events at most")] = 1000,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The token events after an audit id, in order, for the notification service: cards
    added to wallets (or asked for), tokens activated, suspended, deleted, moved to a new
    PAN; ask again with next_after_id."""
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
    with --all-merchants; stops already in place are kept unless withdrawn, and a merchant
    named again gets the new --until in place of its old stop."""
    settings = _config(config, store)

    added = [*(merchant or []), *(["*"] if all_merchants else [])]
    # a merchant named again is changed, not stopped twice: its old stop (until withdrawn,
    # say) would stay in force beside the new --until and outlast it
    gone = {*(withdraw or []), *added}

    async def stop(service: CardService) -> dict[str, Any]:
        async def write(stops: list[dict[str, Any]]) -> dict[str, Any]:
            kept = [x for x in stops if x["merchant_id"] not in gone]
            kept += [{"merchant_id": m, "until": until} for m in added]
            spec = _validated(rq.StopPayments, {"stops": kept})
            return await service.set_stop_payments(card_id, spec, made_from=stops)

        return await service.merged(card_id, "stop_payments", write)  # another's stop kept

    _run(settings, stop)
