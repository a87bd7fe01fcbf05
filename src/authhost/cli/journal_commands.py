"""``authhost journal``: a card's history, exports for analysts, explanations, reviews and
fraud reports, the feeds, totals and retention; ``authhost models compare`` and ``authhost
models drift``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer

from authhost.admin import requests as rq
from authhost.admin.service import CardService
from authhost.cli.admin_support import (
    IDS,
    ConfigOpt,
    DayOpt,
    LimitOpt,
    SinceOpt,
    StoreOpt,
    UntilOpt,
    _config,
    _run,
    _say,
    _validated,
    not_nan,
)
from authhost.cli.tables import (
    TABLES,
    OutputOpt,
    compare_rows,
    explain_rows,
    explain_rules_rows,
    show,
    wants_table,
)

journal = typer.Typer(help="The authorisation journal: per card, or exported for analysts.")


@journal.command("show")
def journal_show(
    card_id: str,
    limit: LimitOpt = 100,
    after_id: Annotated[int, typer.Option(callback=IDS, help="entries after this journal id")] = 0,
    output: OutputOpt = "auto",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """A card's authorisation history (masked)."""
    _run(
        _config(config, store),
        lambda s: s.card_journal(card_id, limit=limit, after_id=after_id),
        table="journal",
        output=output,
    )


@journal.command("export")
def journal_export(
    out: Annotated[Path, typer.Option("--out", help="file to write")],
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="csv or parquet (default: by the file's suffix, else csv)"),
    ] = None,
    card_id: Annotated[str, typer.Option(help="only this card")] = "",
    account_id: Annotated[str, typer.Option(help="only this account")] = "",
    merchant_id: Annotated[str, typer.Option(help="only this merchant (field 42)")] = "",
    since: Annotated[float, typer.Option(callback=not_nan, help="epoch seconds, inclusive")] = 0.0,
    until: Annotated[
        float, typer.Option(callback=not_nan, help="epoch seconds, exclusive")
    ] = float("inf"),
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
    from authhost.out_files import out_file_problem
    from authhost.store.interface import JournalQuery

    suffix = out.suffix.lstrip(".").lower()
    if fmt is None:  # the file's name says it: a CSV called .parquet reads as neither
        fmt = suffix if suffix in FORMATS else "csv"
    if fmt not in FORMATS:
        _say(f"error: --format must be one of {', '.join(FORMATS)}")
        raise typer.Exit(2)
    if suffix in FORMATS and suffix != fmt:
        _say(
            f"error: --format {fmt} but {out.name} is named .{suffix}: a backtest would not read it"
        )
        raise typer.Exit(2)
    if problem := out_file_problem(out, example=f"journal.{fmt}"):
        _say(f"error: {problem}")
        raise typer.Exit(1)
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
    journal_id: Annotated[
        int, typer.Argument(callback=IDS, help="its journal entry (journal show)")
    ],
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


@journal.command("cardholder-answer")
def journal_cardholder_answer(
    card_id: Annotated[str, typer.Argument(help="the card")],
    journal_id: Annotated[
        int, typer.Argument(callback=IDS, help="the payment asked about (journal alerts)")
    ],
    was_me: Annotated[
        bool,
        typer.Option(
            "--was-me/--not-me",
            help="it was the cardholder (a pass to retry) or not (the card is suspended)",
        ),
    ],
    minutes: Annotated[
        int, typer.Option(help="how long the pass lasts (0: none)", min=0, max=24 * 60)
    ] = 60,
    any_merchant: Annotated[bool, typer.Option(help="the pass covers every merchant")] = False,
    max_amount: Annotated[
        int | None,
        typer.Option(help="the most the pass lets through, minor units (default: the payment's)"),
    ] = None,
    reissue: Annotated[bool, typer.Option(help="with --not-me: a new card, new PAN")] = False,
    note: Annotated[str, typer.Option(help="free text (PANs are masked)")] = "",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The cardholder's answer to an alert about a payment: --was-me labels it genuine and
    lets a retry at that merchant, up to that amount, through the fraud checks for --minutes;
    --not-me labels it fraud and suspends the card (--reissue: and orders a new one). Audited."""
    spec = _validated(
        rq.CardholderAnswer,
        {
            "was_cardholder": was_me,
            "pass_minutes": minutes,
            "any_merchant": any_merchant,
            "max_amount_minor": max_amount,
            "reissue": reissue,
            "note": note,
        },
    )
    _run(_config(config, store), lambda s: s.answer_alert(card_id, journal_id, spec))


@journal.command("explain")
def journal_explain(
    card_id: str,
    journal_id: Annotated[int, typer.Argument(callback=IDS, help="the card's journal entry")],
    model: Annotated[
        str, typer.Option(help="an artifact of the models directory (default: the champion)")
    ] = "",
    output: OutputOpt = "auto",
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

    result = _run(settings, explain, show=False, output=output)
    if wants_table(output):  # the features as rows; the JSON keeps them as an object
        show(dict(result, features=explain_rows(result)), TABLES["explain"], output)
    else:
        show(result, None, output)


@journal.command("explain-rules")
def journal_explain_rules(
    card_id: str,
    journal_id: Annotated[int, typer.Argument(callback=IDS, help="the card's journal entry")],
    rules: Annotated[
        Path | None, typer.Option(help="a rules file (default: \\[rules] file)")
    ] = None,
    output: OutputOpt = "auto",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """What each rule makes of one of the card's transactions: matched or not, the values of
    the variables it reads (its context as the server had it, replayed), the set's outcome in
    priority order, and what the journal recorded. Try a new rules file on a past case with
    --rules. A table (-o table) has the set's outcome and the journalled one on top, then the
    rules that matched."""
    settings = _config(config, store)

    async def explain(service: CardService) -> dict[str, Any]:
        service.rules_file, service.lists_dir = settings.rules.file, settings.rules.lists_dir
        return await service.explain_rules(card_id, journal_id, rules or "")

    result = _run(settings, explain, show=False, output=output)
    if wants_table(output):  # matched rules first; the JSON keeps the set's order
        show(dict(result, rules=explain_rules_rows(result)), TABLES["explain_rules"], output)
    else:
        show(result, None, output)


@journal.command("fraud-reports")
def journal_fraud_reports(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="rows to show")] = 100,
    after_id: Annotated[
        int, typer.Option(callback=IDS, help="reports after this report id (paging)")
    ] = 0,
    output: OutputOpt = "auto",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The fraud reports (verdicts on journal entries) in the order they were written, after
    report id --after-id: a late report on an old entry, or a changed verdict, comes after the
    ones listed before (page on with the last report id)."""
    _run(
        _config(config, store),
        lambda s: s.fraud_reports(limit=limit, after_id=after_id),
        table="fraud_reports",
        output=output,
    )


@journal.command("reviews")
def journal_reviews(
    show_all: Annotated[
        bool, typer.Option("--all", help="also the ones with a verdict already")
    ] = False,
    declined: Annotated[
        bool,
        typer.Option(
            "--declined",
            help="also the ones a later step declined (funds 51...): they never went through",
        ),
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="rows to show")] = 100,
    after_id: Annotated[
        int, typer.Option(callback=IDS, help="entries after this journal id (paging)")
    ] = 0,
    output: OutputOpt = "auto",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The review queue: transactions the rules flagged for review that went through, oldest
    first, with their verdict so far (record one with report-fraud)."""
    _run(
        _config(config, store),
        lambda s: s.review_queue(
            limit=limit, after_id=after_id, open_only=not show_all, declined=declined
        ),
        table="reviews",
        output=output,
    )


@journal.command("acceptors")
def journal_acceptors(
    by: Annotated[
        str, typer.Option(help="the counter to rank by, e.g. failed_cvv_10m, distinct_cards_1h")
    ] = "failed_cvv_10m",
    terminals: Annotated[bool, typer.Option(help="terminals instead of merchants")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="rows to show")] = 20,
    output: OutputOpt = "auto",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The merchants (or terminals) with the most of one counter now, over every card: where
    card testing is going on. The counters are the ones rules read as merchant.* and
    terminal.*, counted from the last hour of the journal."""
    _run(
        _config(config, store),
        lambda s: s.busiest_acceptors(by=by, terminals=terminals, limit=limit),
        table="acceptors",
        output=output,
    )


@journal.command("movements")
def journal_movements(
    after_id: Annotated[
        int, typer.Option(callback=IDS, help="the last journal id already posted")
    ] = 0,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="movements at most")] = 1000,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The money movements after a journal id, in order, for the core banking ledger (entries
    2 s old and older); ask again with next_after_id."""
    _run(_config(config, store), lambda s: s.money_movements(after_id, limit))


@journal.command("alerts")
def journal_alerts(
    after_id: Annotated[
        int, typer.Option(callback=IDS, help="the last journal id already read")
    ] = 0,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="alerts at most")] = 1000,
    amount_minor: Annotated[
        int, typer.Option(min=0, help="also approvals at or above this amount (0: not)")
    ] = 0,
    card_not_present: Annotated[
        bool, typer.Option("--card-not-present", help="also approvals without the card")
    ] = False,
    abroad: Annotated[bool, typer.Option("--abroad", help="also approvals abroad")] = False,
    output: OutputOpt = "auto",
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
        ),
        table="alerts",
        output=output,
    )


@journal.command("find")
def journal_find(
    rrn: Annotated[
        str,
        typer.Option(
            help="retrieval reference number (field 37), or a clearing presentment's "
            "acquirer reference number (13 to 23 digits)"
        ),
    ],
    day: DayOpt = "",
    since: SinceOpt = 0.0,
    until: UntilOpt = 0.0,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """What was answered for a transaction a switch or an acquirer asks about: the journal
    entries of a day or period with its retrieval reference number (field 37), or a clearing
    presentment's 0220 by its acquirer reference number."""
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
    output: OutputOpt = "auto",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The champion against the challenger over the requests both scored in a period: alerts
    at each one's threshold, the reported frauds each catches and for how much, how often they
    agree, and the frauds only one of them catches. Read it before promoting a challenger. A
    table (-o table) has the period and its reported frauds on top, a row per model."""
    settings = _config(config, store)

    async def compare(service: CardService) -> dict[str, Any]:
        service.models_dir = settings.models.dir
        return await service.compare_models(
            day=day, since=since, until=until, champion_threshold=champion_threshold,
            challenger_threshold=challenger_threshold,
        )  # fmt: skip

    result = _run(settings, compare, show=False, output=output)
    if wants_table(output):  # the two sides as rows; the JSON keeps them by role
        show(dict(result, sides=compare_rows(result)), TABLES["compare"], output)
    else:
        show(result, None, output)


def _psi(value: str) -> float:
    """A PSI threshold: a number from 0 to 100 (``nan`` passed the float parsing and was then
    refused as "less than or equal to 100")."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not 0.0 <= number <= 100.0:
        raise typer.BadParameter(f"{value!r} is not a PSI from 0 to 100")
    return number


# the exit status of `models drift --fail-on` when a PSI reached the level (1: an error)
DRIFT_FOUND = 3


def _fail_on(value: str) -> str:
    from authhost.admin.model_drift import FAIL_LEVELS  # numpy: only for this command

    if value and value not in FAIL_LEVELS:
        raise typer.BadParameter(f"{value!r} is not act or watch")
    return value


def models_drift(
    day: DayOpt = "",
    since: SinceOpt = 0.0,
    until: UntilOpt = 0.0,
    model: Annotated[
        str, typer.Option(help="an artifact of the models directory (default: the champion)")
    ] = "",
    reference_day: Annotated[
        str,
        typer.Option(
            help="compare with this business day of the journal, not the artifact's reference"
        ),
    ] = "",  # fmt: skip
    reference_since: Annotated[
        float, typer.Option(callback=not_nan, help="or with the journal from this time")
    ] = 0.0,
    reference_until: Annotated[
        float, typer.Option(callback=not_nan, help="to this time (exclusive), epoch seconds")
    ] = 0.0,
    watch: Annotated[
        float, typer.Option(min=0.0, max=100.0, parser=_psi, help="PSI from which to watch")
    ] = 0.10,
    act: Annotated[
        float, typer.Option(min=0.0, max=100.0, parser=_psi, help="PSI above which to act")
    ] = 0.25,
    segment: Annotated[
        str,
        typer.Option(
            help="also each segment of this kind against the same segment of the reference: "
            "channel (card_present, ecommerce, atm), entry, cross-border, mcc-group, product"
        ),
    ] = "",
    fail_on: Annotated[
        str,
        typer.Option(
            callback=_fail_on,
            help=f"exit with status {DRIFT_FOUND} (after the report) when a feature's or the "
            "score's PSI, of the period or a segment, is act (or act or watch): for cron",
        ),
    ] = "",
    output: OutputOpt = "auto",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Is the model still seeing the traffic it was trained on? Each feature's and the
    score's Population Stability Index over a period's scored requests, against the
    artifact's reference (its held-out training days) or another period, most drifted first:
    stable below --watch, watch up to --act, act above."""
    settings = _config(config, store)

    async def drift(service: CardService) -> dict[str, Any]:
        service.models_dir = settings.models.dir
        return await service.model_drift(
            day=day, since=since, until=until, model=model, reference_day=reference_day,
            reference_since=reference_since, reference_until=reference_until, watch=watch,
            act=act, segment=segment,
        )  # fmt: skip

    table = "drift_segments" if segment else "drift"
    report = _run(settings, drift, table=table, output=output)
    from authhost.admin.model_drift import drifted

    if fail_on and (found := drifted(report, fail_on)):
        _say(found)
        raise typer.Exit(DRIFT_FOUND)


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
