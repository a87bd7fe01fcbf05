"""``authhost cards`` over many cards at once: the files that leave the host (exception file,
account updates, the bureau's personalisation file), PAN key rotation, the renewal run,
cards expiring, compromised or dormant, and bulk issuance."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from authhost.admin import requests as rq
from authhost.admin.service import CardService
from authhost.cli.admin_support import (
    ConfigOpt,
    DayOpt,
    SinceOpt,
    StoreOpt,
    UntilOpt,
    _check_named_or_all,
    _config,
    _csv_file_rows,
    _named_or_created,
    _report_csv_rows,
    _run,
    _run_csv_rows,
    _say,
    _validated,
    read_text_file,
    results_file,
)
from authhost.cli.card_commands import cards
from authhost.cli.key_commands import keys_app

_PAN_LINE = re.compile(r"[0-9]{12,19}\Z")  # as rq.CompromiseAlert takes them


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
    card_ids: Annotated[
        bool,
        typer.Option(
            "--card-ids",
            help="the file holds card ids, one per line (the cards at risk of authhost fraud "
            "common-points), not PANs",
        ),
    ] = False,
    action: Annotated[
        str,
        typer.Option(help="watch (put them on a rules list), suspend (62) or reissue (new PANs)"),
    ] = "watch",
    list_name: Annotated[str, typer.Option(help="the rules list for watch")] = "compromised_cards",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """A compromise alert from the network (PANs exposed in a breach): this issuer's live cards
    among them are watched (the rules list, for stricter rules), suspended or reissued under
    new PANs; the rest are counted. The PANs are read, never kept or printed."""
    numbered = [(n, line.strip()) for n, line in enumerate(read_text_file(file).splitlines(), 1)]
    lines = [line for _, line in numbered if line]
    bad = [n for n, line in numbered if line and not card_ids and not _PAN_LINE.match(line)]
    if bad:  # named by the file's lines, where the request's index ("pans.2") named none
        shown = ", ".join(str(n) for n in bad[:10]) + (" ..." if len(bad) > 10 else "")
        _say(
            f"error: {file}: line(s) {shown}: not a card number (12-19 digits); "
            "nothing was done: fix or remove them"
        )
        raise typer.Exit(1)
    named = {"card_ids": lines} if card_ids else {"pans": lines}
    alert = _validated(rq.CompromiseAlert, {**named, "action": action, "list_name": list_name})
    _run(
        _config(config, store),
        lambda s: s.compromised_cards(
            alert.pans, alert.action, alert.list_name, card_ids=alert.card_ids
        ),
    )


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

    with results_file(results) as written:
        done = _run_csv_rows(file, len(rows), "issuing", issue, _config(config, store))
        note = _say_issued_before(file, done)
        columns = ("line", "card_id", "pan", "error")
        _report_csv_rows(file, done, "issued", written, columns, note)


def _say_issued_before(file: Path, done: list[Any]) -> str:
    """Name the rows answered with a card an earlier run issued, and the note for the counts:
    a row's default key is its content, so a later file repeating a row (the same product,
    account and name) gets the first card back, not a new one, and the operator must not
    take it for a new card."""
    from authhost.admin.totals import iso_time

    earlier = [row for row in done if row.ok and row.issued_before is not None]
    for row in earlier:
        _say(
            f"{file}:{row.line}: not issued: {row.card_id} was issued for it at "
            f"{iso_time(row.issued_before)} (a re-run, or the same row content in an "
            "earlier file): give the row an idempotency_key of its own for a new card"
        )
    return f"; {len(earlier)} of them by an earlier run" if earlier else ""
