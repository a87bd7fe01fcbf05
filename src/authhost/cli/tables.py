"""Listing commands' answers as tables for people, JSON for programs.

An analyst reading a card's history at a terminal wants one line per decision (when, what was
asked, the answer, the amount in its currency, where, the score and the reasons), not seventy
JSON keys per entry; a script wants every key. ``--output`` chooses (``auto``: a table on a
terminal, JSON in a pipe or file, so ``| jq`` keeps working). The table shows a chosen few
columns of the same rows the JSON holds; nothing is computed that the JSON lacks.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from authhost.admin.disputes import step_of as dispute_step_of
from authhost.admin.totals import amount_text, movement_in_row

OUTPUTS = ("auto", "table", "json")
OutputOpt = Annotated[
    str,
    typer.Option(
        "--output",
        "-o",
        help="table or json (auto: a table on a terminal, JSON in a pipe or file)",
    ),
]

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    cell: Callable[[Row], str]
    right: bool = False  # numbers line up on the right


@dataclass(frozen=True, slots=True)
class TableSpec:
    title: str
    columns: tuple[Column, ...]
    rows_key: str = ""  # the answer's list of rows ("" the answer is the list)
    caption: Callable[[dict[str, Any]], str] | None = None  # what the answer says beside them
    # what the analyst reads first, above the rows (a report's verdict: the rules' outcome)
    heading: Callable[[dict[str, Any]], str] | None = None


def amount(minor: int | None, currency: str | None) -> str:
    """Minor units in the currency's own exponent, with its numeric code: 1,234.50 978."""
    return amount_text(minor, currency)


def when(ts: float | None) -> str:
    """Epoch seconds as a UTC time to the second ('' for none)."""
    if not ts:
        return ""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _key(name: str) -> Callable[[Row], str]:
    def cell(row: Row) -> str:
        value = row.get(name)
        return "" if value is None else str(value)

    return cell


def _amounts(name: str) -> Callable[[Row], str]:
    """A {currency: minor units} figure, a line per currency in its own decimals: amounts of
    two currencies are never added."""

    def cell(row: Row) -> str:
        by_currency = row.get(name) or {}
        return "\n".join(amount(minor, code) for code, minor in sorted(by_currency.items()))

    return cell


def _score(row: Row) -> str:
    score = row.get("fraud_score", -1)
    return "" if score is None or score < 0 else str(score)


def _reasons(row: Row) -> str:
    text = row.get("reason_codes") or ""
    return text.replace(";", " ") + (" [review]" if row.get("review") else "")


def _iso(text: str | None) -> str:
    """An ISO 8601 UTC time of an answer as the tables write times."""
    return (text or "")[:19].replace("T", " ")


def _next_action(row: Row) -> str:
    """A dispute's next action and whose it is: ``issuer: chargeback``."""
    action = row.get("next_action") or {}
    return f"{action['owner']}: {action['action']}" if action else ""


def _due(row: Row) -> str:
    """A dispute's next limit, marked when it has passed."""
    action = row.get("next_action") or {}
    due = when(action.get("deadline"))
    return f"{due} (overdue)" if due and action.get("overdue") else due


def _stage_amount(row: Row, name: str) -> str:
    """One of a dispute's stage amounts (``amounts``), blank before its stage."""
    value = (row.get("amounts") or {}).get(name)
    return amount(value, row.get("currency")) if value else ""


def _arbitration_fee(row: Row) -> str:
    """The network's arbitration fee in its own currency, and who bears it."""
    fee = row.get("arbitration_fee_minor")
    if not fee:
        return ""
    return f"{amount(fee, row.get('arbitration_fee_currency'))} {row.get('arbitration_fee_payer')}"


def _merchant(row: Row) -> str:
    name = " ".join((row.get("merchant_name") or "").split())
    return name or row.get("merchant_id") or ""


def _money(row: Row) -> str:
    """What the entry did to the account, and for a dispute's own movement which one: the
    bank's take-back of a lost dispute's credit is a post at the merchant, not its charge."""
    moved = movement_in_row(row)
    step = dispute_step_of(str(row.get("terminal_id") or ""), str(row.get("rrn") or ""))
    return f"{moved}: dispute {step}" if moved and step else moved


_JOURNAL = (
    Column("id", _key("journal_id"), right=True),
    Column("time (UTC)", lambda r: when(r.get("ts"))),
    Column("mti", _key("mti")),
    Column("rc", _key("response_code")),
    Column("amount", lambda r: amount(r.get("amount_minor"), r.get("currency")), right=True),
    # what the entry did to the money (hold, post, credit, release, take_back; "" none): a
    # refund or a dispute's credit otherwise reads as a second charge of the same amount; as
    # the statement says it (a refund's reversal takes back, it frees no hold; a dispute's
    # movements named)
    Column("money", _money),
    Column("merchant", _merchant),
    Column("ctry", _key("country")),
    Column("channel", _key("channel")),
    Column("score", _score, right=True),
    Column("reasons", _reasons),
    Column("verdict", _key("verdict")),
)


def _moved_bins(row: Row) -> str:
    return "; ".join(f"{b['bin']} {b['live']:.3f} / {b['reference']:.3f}" for b in row["bins"])


def _drift_caption(result: dict[str, Any]) -> str:
    """The score's PSI and what was compared: what a drift table is read with."""
    score = result.get("score")
    said = (
        f"score PSI {score['psi']:.4f} {score['status']} ({_moved_bins(score)})"
        if score
        else "score: none journalled in the period"
    )
    return "; ".join(
        [
            f"{said}; model {result['model']} ({result['role'] or 'not active'}), "
            f"{result['rows']} requests {result['since']}..{result['until']} against "
            f"{result['reference_source']} ({result['reference_rows']} requests)",
            *result.get("notes", ()),
        ]
    )


def explain_rows(result: dict[str, Any]) -> list[Row]:
    """``journal explain``'s features as rows: the ones that pushed the score up most first
    (what each added to the log-odds), then the rest in the model's order."""
    added = {r["feature"]: r["added"] for r in result.get("reasons") or ()}
    rows = [
        {"feature": name, "value": value, "added": added.get(name)}
        for name, value in (result.get("features") or {}).items()
    ]
    return sorted(rows, key=lambda r: -r["added"] if r["added"] is not None else 0.0)


def _explain_caption(result: dict[str, Any]) -> str:
    """The score rebuilt beside the journalled one, and whether the model scored it online."""
    journalled = result.get("journalled") or {}
    online = (
        "scored online"
        if result.get("scored_online")
        else f"not scored online: {result.get('not_scored_because')}"
    )
    return (
        f"journal entry {result['journal_id']} of card {result['card_id']}: model "
        f"{result['model']} ({result['feature_set']}) scores {result['score']}; journalled "
        f"model score {_or_dash(journalled.get('score'))}, fraud score "
        f"{_or_dash(journalled.get('fraud_score'))}; {online}; "
        f"{result['rows_replayed']} journal rows replayed"
    )


def explain_rules_rows(result: dict[str, Any]) -> list[Row]:
    """``journal explain-rules``' rules as rows: the ones that matched (or failed) first,
    each group in the set's order, so the rules that decided are on top."""
    rules = list(result.get("rules") or ())
    return sorted(rules, key=lambda r: 0 if r.get("matched") or r.get("error") else 1)


def _verdict(row: Row) -> str:
    if row.get("error"):
        return "error"
    if row.get("outside_window"):
        return "outside window"
    return "matched" if row.get("matched") else "no"


def _variables(row: Row) -> str:
    """The variables a rule reads with their values (None: missing, so a comparison fails)."""
    said = [f"{name}={value}" for name, value in (row.get("variables") or {}).items()]
    return " ".join(said + [f"list:{name}" for name in row.get("lists") or ()])


def _explain_rules_heading(result: dict[str, Any]) -> str:
    """The set's outcome beside what the journal recorded, and whether the rules ran online."""
    out, journalled = result.get("outcome") or {}, result.get("journalled") or {}
    outcome = (
        f"decline {out['decline_code']}"
        if out.get("decline_code")
        else "allowed"
        if out.get("allowed")
        else "review"
        if out.get("review")
        else "no decline"
    )
    lines = [
        f"journal entry {result['journal_id']} of card {result['card_id']}, rules "
        f"{result.get('rules_version') or '-'}: {outcome}, matched "
        f"{' '.join(out.get('matched') or ()) or '-'}, model score "
        f"{_or_dash(result.get('score'))}, rules add {out.get('score_delta', 0):+d}",
        f"journalled: response {journalled.get('response_code') or '-'}, rules "
        f"{' '.join(journalled.get('rule_matches') or ()) or '-'}, reasons "
        f"{' '.join(journalled.get('reason_codes') or ()) or '-'}, fraud score "
        f"{_or_dash(journalled.get('fraud_score'))}",
    ]
    if result.get("not_run_because"):
        lines.append(str(result["not_run_because"]))
    return "\n".join(lines)


def compare_rows(result: dict[str, Any]) -> list[Row]:
    """``models compare``'s two sides as rows: the champion, then the challenger."""
    return [
        dict(result[role], role=role, model=result.get(f"{role}_model"))
        for role in ("champion", "challenger")
    ]


def _compare_heading(result: dict[str, Any]) -> str:
    """What was compared, what is known of it, and how the two agree: read before the rows."""
    frauds = ", ".join(
        amount(minor, code)
        for code, minor in (result.get("reported_fraud_amount_minor") or {}).items()
    )
    return (
        f"{result['since']}..{result['until']}: {result['scored_by_both']} requests scored by "
        f"both, {result['reported_frauds']} reported fraud ({frauds or '-'}), "
        f"{result['reported_genuine']} reported genuine; "
        f"{result['declined_before_fraud_step']} declined before the fraud step left out\n"
        f"{_agreement(result)}"
    )


def _agreement(result: dict[str, Any]) -> str:
    """How often they agree, and the frauds only one catches (journal ids, to look at)."""
    agree = result["agreement"]
    corr = result.get("score_correlation")
    return (
        f"both alert {agree['both_alert']}, champion only {agree['champion_only']}, challenger "
        f"only {agree['challenger_only']}, neither {agree['neither']}; score correlation "
        f"{'-' if corr is None else f'{corr:.4f}'}; frauds only the challenger catches: "
        f"{' '.join(map(str, result['frauds_only_challenger_catches'])) or '-'}; only the "
        f"champion: {' '.join(map(str, result['frauds_only_champion_catches'])) or '-'}"
    )


def _or_dash(value: object) -> str:
    return "-" if value is None or value == -1 else str(value)


def _segment_drift(row: Row) -> str:
    """A segment's most drifted features (and its score), or why it was not measured."""
    if row["summary"] is None:
        return " ".join(row["notes"])
    moved = [f"{f['feature']} {f['psi']:.3f} {f['status']}" for f in row["features"][:3]]
    score = row["score"]
    said = f"score {score['psi']:.3f} {score['status']}" if score else "score: none"
    return "; ".join([*moved, said, *row["notes"]])


def _segments_caption(result: dict[str, Any]) -> str:
    """The whole period's summary, under the segments."""
    summary = ", ".join(f"{n} {status}" for status, n in result["summary"].items())
    return (
        f"whole period: {summary} of {len(result['features'])} features; {_drift_caption(result)}"
    )


CHANGE_WIDTH = 160  # an audit table's change cell: the JSON (-o json) has it all


def _audit_value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_audit_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    if value is None or isinstance(value, bool):
        return json.dumps(value)  # null, true, false: as the JSON says them
    return str(value)


def _audit_change(row: Row) -> str:
    """What an audit entry changed, in one cell: each field of ``after`` that ``before`` did
    not have as such (``state active -> lost``; a creation: its fields), so that a security
    officer reading the table sees a closure's reason or a list's additions without asking
    for the JSON. Cut at CHANGE_WIDTH characters."""
    before, after = (_audit_fields(row.get(name)) for name in ("before", "after"))
    if after is None:
        return ""
    parts = []
    for key, value in after.items():
        if key in before and before[key] == value:
            continue
        if key in before:
            parts.append(f"{key} {_audit_value(before[key])} -> {_audit_value(value)}")
        else:
            parts.append(f"{key} {_audit_value(value)}")
    text = "; ".join(parts)
    return text if len(text) <= CHANGE_WIDTH else text[: CHANGE_WIDTH - 1] + "…"


def _audit_fields(text: Any) -> dict[str, Any] | None:
    """An audit entry's ``before`` or ``after`` (JSON text) as fields: {} for none, a value
    that is not an object as ``value``; None when there is nothing."""
    if text in (None, ""):
        return {} if text == "" else None
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return {"value": text}
    return value if isinstance(value, dict) else {"value": value}


TABLES: dict[str, TableSpec] = {
    "journal": TableSpec("journal", _JOURNAL),
    "reviews": TableSpec(
        "review queue",
        (*_JOURNAL[:2], Column("card", _key("pan_masked")), *_JOURNAL[2:]),
        rows_key="reviews",
    ),
    "alerts": TableSpec(
        "cardholder alerts",
        (
            Column("id", _key("journal_id"), right=True),
            Column("time (UTC)", lambda r: (r.get("time") or "")[:19].replace("T", " ")),
            Column("card", _key("pan")),
            Column("alerts", lambda r: " ".join(r.get("alerts") or ())),
            Column("rc", _key("response_code")),
            Column(
                "amount", lambda r: amount(r.get("amount_minor"), r.get("currency")), right=True
            ),  # fmt: skip
            Column("merchant", _merchant),
            Column("rrn", _key("rrn")),
        ),
        rows_key="alerts",
    ),
    "cards": TableSpec(
        "cards",
        (
            Column("card_id", _key("card_id")),
            Column("pan", _key("pan")),
            Column("state", _key("state")),
            Column("expiry", _key("expiry")),
            Column("product", _key("product_id")),
            Column("account", _key("account_id")),
            Column("cardholder", _key("cardholder_name")),
            Column("pin tries", _key("pin_tries"), right=True),
        ),
    ),
    "fraud_reports": TableSpec(
        "fraud reports",
        (
            Column("report id", _key("report_id"), right=True),
            Column("journal id", _key("journal_id"), right=True),
            Column("card_id", _key("card_id")),
            Column("verdict", lambda r: "fraud" if r.get("fraud") else "genuine"),
            Column("source", _key("source")),
            Column("reported (UTC)", lambda r: when(r.get("reported_at"))),
            Column("note", _key("note")),
        ),
    ),
    "acceptors": TableSpec(
        "busiest acceptors",
        (
            Column("merchant_id", _key("merchant_id")),
            Column("name", _merchant),
            Column("terminal", _key("terminal_id")),
            *(
                Column(name.replace("_count", "").replace("_", " "), _key(name), right=True)
                for name in (
                    "count_10m",
                    "distinct_cards_10m",
                    "declined_count_10m",
                    "failed_cvv_10m",
                    "unknown_card_count_10m",
                    "count_1h",
                    "failed_cvv_1h",
                )
            ),  # fmt: skip
        ),
        rows_key="acceptors",
    ),
    "rule_performance": TableSpec(
        "rules in production",
        (
            Column("rule", _key("rule")),
            Column(
                "action",
                lambda r: (r.get("action") or "?") + (" (shadow)" if r.get("shadow") else ""),
            ),
            *(
                Column(header, _key(name), right=True)
                for header, name in (
                    ("matches", "matches"),
                    ("approved", "approved"),
                    ("declined", "declined"),
                    ("by it", "declined_by_rule"),
                    ("passed", "passed"),
                    ("reviewed", "reviewed"),
                    ("fraud", "fraud"),
                    ("genuine", "genuine"),
                    ("it was me", "genuine_by_cardholder"),
                    ("declined genuine", "declined_genuine"),
                    ("genuine it declined", "declined_genuine_by_rule"),
                )
            ),
            Column(
                "precision",
                lambda r: "" if r.get("precision") is None else f"{r['precision']:.2f}",
                right=True,
            ),
            Column("fraud amount", _amounts("fraud_amount_minor"), right=True),
            # a temporary rule's window: the figures of one that has ended stop growing
            Column("window", lambda r: r.get("window") or ""),
        ),
        rows_key="rules",
    ),
    "explain": TableSpec(
        "features, the ones that pushed the score up most first",
        (
            Column("feature", _key("feature")),
            Column("value", lambda r: f"{r['value']:.4f}", right=True),
            Column(
                "added (log-odds)",
                lambda r: "" if r["added"] is None else f"{r['added']:+.4f}",
                right=True,
            ),
        ),
        rows_key="features",
        caption=_explain_caption,
    ),
    "explain_rules": TableSpec(
        "rules, the ones that matched first",
        (
            Column("rule", _key("name")),
            Column("verdict", _verdict),
            Column(
                "action", lambda r: r["action"] + (" (shadow)" if r.get("mode") == "shadow" else "")
            ),
            Column("priority", _key("priority"), right=True),
            Column("variables read", _variables),
        ),
        rows_key="rules",
        heading=_explain_rules_heading,
    ),
    "compare": TableSpec(
        "champion against challenger",
        (
            Column("role", _key("role")),
            Column("model", lambda r: r.get("model") or "-"),
            Column("thr", _key("threshold"), right=True),
            Column("alerts", _key("alerts"), right=True),
            Column("alert rate", lambda r: f"{r['alert_rate']:.4f}", right=True),
            Column("frauds caught", _key("frauds_caught"), right=True),
            Column("fraud amount caught", _amounts("fraud_amount_caught_minor"), right=True),
            Column("alerts reported genuine", _key("alerts_reported_genuine"), right=True),
        ),
        rows_key="sides",
        heading=_compare_heading,
    ),
    "drift": TableSpec(
        "feature drift, most drifted first",
        (
            Column("feature", _key("feature")),
            Column("PSI", lambda r: f"{r['psi']:.4f}", right=True),
            Column("status", _key("status")),
            Column("bins that moved most: live / reference share", _moved_bins),
        ),
        rows_key="features",
        caption=_drift_caption,
    ),
    "drift_segments": TableSpec(
        "drift by segment, most drifted first",
        (
            Column("segment", _key("segment")),
            Column("share", lambda r: f"{r['share']:.3f}", right=True),
            Column(
                "ref share",
                lambda r: "" if r["reference_share"] is None else f"{r['reference_share']:.3f}",
                right=True,
            ),
            Column("rows", _key("rows"), right=True),
            *(
                Column(
                    status,
                    lambda r, s=status: "" if r["summary"] is None else str(r["summary"][s]),
                    right=True,
                )
                for status in ("act", "watch", "stable")
            ),
            Column("most drifted: feature PSI status; the score's", _segment_drift),
        ),
        rows_key="segments",
        caption=_segments_caption,
    ),
    "common_points": TableSpec(
        "common points of purchase",
        (
            Column("merchant_id", _key("merchant_id")),
            Column("terminal", _key("terminal_id")),
            Column("name / location", _merchant),
            Column("mcc", _key("mcc")),
            Column("fraud cards", _key("fraud_cards"), right=True),
            Column("cards", _key("cards"), right=True),
            Column("share", lambda r: f"{r['share']:.2f}", right=True),
            Column(
                "lift", lambda r: "" if r.get("lift") is None else f"{r['lift']:.1f}", right=True
            ),
            Column("first visit (UTC)", lambda r: _iso(r.get("first_visit"))),
            Column("last visit (UTC)", lambda r: _iso(r.get("last_visit"))),
        ),
        rows_key="points",
    ),
    "at_risk": TableSpec(
        "cards at risk (no fraud reported yet)",
        (
            Column("merchant_id", _key("merchant_id")),
            Column("terminal", _key("terminal_id")),
            Column("card_id", _key("card_id")),
            Column("pan", _key("pan")),
            Column("visits", _key("visits"), right=True),
            Column("first visit (UTC)", lambda r: _iso(r.get("first_visit"))),
            Column("last visit (UTC)", lambda r: _iso(r.get("last_visit"))),
            Column("in fraud span", lambda r: "yes" if r.get("in_fraud_span") else ""),
        ),
        rows_key="at_risk",
    ),
    "audit": TableSpec(
        "audit log",
        (
            Column("id", _key("audit_id"), right=True),
            Column("time (UTC)", lambda r: when(r.get("ts"))),
            Column("actor", _key("actor")),
            Column("action", _key("action")),
            Column("subject", _key("subject")),
            Column("change", _audit_change),
        ),
    ),
    "timeline": TableSpec(
        "case timeline (newest first)",
        (
            Column("time (UTC)", lambda r: when(r.get("ts"))),
            Column("kind", _key("kind")),
            Column("card", _key("pan")),
            Column("summary", _key("summary")),
            Column(
                "ids",
                lambda r: " ".join(
                    f"{label} {r[key]}"
                    for label, key in (
                        ("journal", "journal_id"),
                        ("audit", "audit_id"),
                        ("dispute", "dispute_id"),
                    )
                    if r.get(key) is not None
                ),
            ),  # fmt: skip
        ),
        rows_key="events",
    ),
    "disputes": TableSpec(
        "disputes",
        (
            Column("dispute_id", _key("dispute_id")),
            Column("journal id", _key("journal_id"), right=True),
            Column("card_id", _key("card_id")),
            Column("reason", _key("reason")),
            Column("state", _key("state")),
            Column(
                "amount", lambda r: amount(r.get("amount_minor"), r.get("currency")), right=True
            ),  # fmt: skip
            Column(
                "credited", lambda r: amount(r.get("credited_minor"), r.get("currency")), right=True
            ),  # fmt: skip
            Column("opened (UTC)", lambda r: when(r.get("opened_at"))),
            Column("stage", _key("stage")),
            Column("charged back", lambda r: _stage_amount(r, "charged_back_minor"), right=True),
            Column("represented", lambda r: _stage_amount(r, "represented_minor"), right=True),
            Column("arbitration fee", _arbitration_fee, right=True),
            Column("next", _next_action),
            Column("due (UTC)", _due),
        ),
    ),
}


def check_output(output: str) -> None:
    if output not in OUTPUTS:
        raise typer.BadParameter(f"must be one of {', '.join(OUTPUTS)}", param_hint="--output")


def wants_table(output: str) -> bool:
    check_output(output)
    return output == "table" or (output == "auto" and sys.stdout.isatty())


def render(result: Any, spec: TableSpec) -> Table:
    """The rows of ``result`` (an answer of the spec's shape) as a table, with the paging
    hint of a feed's answer as its caption."""
    rows = result.get(spec.rows_key, []) if spec.rows_key else result
    table = Table(title=f"{spec.title}: {len(rows)}", title_justify="left")
    for column in spec.columns:
        table.add_column(column.header, justify="right" if column.right else "left")
    for row in rows:
        # Text, not markup: a merchant's name like "[red]" is printed as sent
        table.add_row(*(Text(column.cell(row)) for column in spec.columns))
    if isinstance(result, dict) and result.get("next_after_id") and rows:
        table.caption = f"next page: --after-id {result['next_after_id']}"
    if isinstance(result, dict) and result.get("next_before") and rows:
        table.caption = f"next page: --before {result['next_before']}"
    if isinstance(result, dict) and spec.caption is not None:
        table.caption = spec.caption(result)
    return table


def show(result: Any, spec: TableSpec | None, output: str) -> None:
    """Print an answer: as ``spec``'s table when one is wanted, else as JSON."""
    if spec is not None and wants_table(output):
        # a terminal's width there; in a pipe or file the table's own width, never cut short
        width = None if sys.stdout.isatty() else 400
        console = Console(soft_wrap=False, width=width)
        if isinstance(result, dict) and spec.heading is not None:  # never wrapped to the table
            console.print(Text(spec.heading(result)), soft_wrap=True)
        console.print(render(result, spec))
    else:
        typer.echo(json.dumps(result, indent=2))
