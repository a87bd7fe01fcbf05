"""Backtest reports: terminal tables (rich), the JSON file, and PNG plots (matplotlib, Agg)."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from authhost.auth.currencies import exponent_of
from authhost.rules.backtest import BacktestResult, Money, SetResult


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _money(by_currency: Money) -> str:
    """Totals per currency, one line each, in its own decimals with its numeric code
    (1,234.50 978): amounts of two currencies are never added."""
    if not by_currency:
        return "0"
    lines = []
    for currency, value in by_currency.items():
        exponent = exponent_of(currency)
        lines.append(f"{value:,.{exponent}f} {currency}".rstrip())
    return "\n".join(lines)


def _rates(by_currency: dict[str, float | None]) -> str:
    """A rate per currency (one line each); the bare rate when the data has one currency."""
    if len(by_currency) == 1:
        return _pct(next(iter(by_currency.values())))
    return "\n".join(f"{_pct(rate)} {code}".rstrip() for code, rate in by_currency.items()) or "-"


def rules_table(result: SetResult) -> Table:
    table = Table(title=Text(f"rules of {result.file or 'rule set'} (version {result.version})"))
    for column in ("rule", "action", "mode", "matches", "TP", "FP", "precision", "recall"):
        table.add_column(
            column, justify="left" if column in ("rule", "action", "mode") else "right"
        )
    # matched, not caught: a review or score rule's matches go through
    table.add_column("fraud amount matched", justify="right")
    for rule in result.rules:
        table.add_row(
            Text(rule.name),
            rule.action,
            rule.mode,
            f"{rule.matches:,}",
            f"{rule.true_positives:,}",
            f"{rule.false_positives:,}",
            _pct(rule.precision),
            _pct(rule.recall),
            _money(rule.fraud_amount),
        )
    return table


SUMMARY_ROWS = (
    ("transactions evaluated", "transactions", "{:,}"),
    ("fraud transactions", "fraud", "{:,}"),
    ("declined", "declined", "{:,}"),
    ("declined fraud (TP)", "declined_fraud", "{:,}"),
    ("declined genuine (FP)", "declined_genuine", "{:,}"),
    ("detection rate", "detection_rate", "pct"),
    ("fraud amount detection rate", "amount_detection_rate_by_currency", "rates"),
    ("false positive ratio (FP per TP)", "false_positive_ratio", "num"),
    ("fraud amount", "fraud_amount", "money"),
    ("fraud amount caught", "declined_fraud_amount", "money"),
    ("declined good volume", "declined_genuine_amount", "money"),
    ("reviewed fraud / genuine", None, "review"),
    ("rule errors", "errors", "{:,}"),
)


def _cell(result: SetResult, key: str | None, fmt: str) -> str:
    if key is None:
        return f"{result.reviewed_fraud:,} / {result.reviewed_genuine:,}"
    value = getattr(result, key)
    if fmt == "pct":
        return _pct(value)
    if fmt == "num":
        return _num(value)
    if fmt == "money":
        return _money(value)
    if fmt == "rates":
        return _rates(value)
    return fmt.format(value)


def summary_table(result: BacktestResult) -> Table:
    """Whole-set figures; with two sets, side by side (A = --rules, B = --compare)."""
    table = Table(title=Text(f"backtest of {result.data}: {result.rows:,} rows"))
    table.add_column("figure")
    for i, s in enumerate(result.sets):
        name = Path(s.file).name if s.file else f"set {i + 1}"
        table.add_column(
            Text(f"{'AB'[i] if len(result.sets) == 2 else ''} {name}".strip()), justify="right"
        )
    for label, key, fmt in SUMMARY_ROWS:
        table.add_row(label, *(_cell(s, key, fmt) for s in result.sets))
    if result.diff is not None:
        d = result.diff
        table.add_row(
            "declined by A only: fraud / genuine", f"{d.only_a_fraud:,} / {d.only_a_genuine:,}", ""
        )
        table.add_row(
            "declined by B only: fraud / genuine", "", f"{d.only_b_fraud:,} / {d.only_b_genuine:,}"
        )
    return table


def excluded_lines(result: BacktestResult) -> list[str]:
    """What the figures leave out: the requests declined before the fraud step, which no rule
    sees online (``models.scored``), by step and by fraud scenario."""
    if not result.excluded_before_fraud_step:
        return []
    steps = ", ".join(f"{step} {n:,}" for step, n in result.excluded_by_step.items())
    lines = [
        f"{result.excluded_before_fraud_step:,} requests declined before the fraud step left "
        f"out (no rule sees them online; replayed into the counters only): {steps}"
    ]
    if result.excluded_frauds:
        scenarios = ", ".join(
            f"{name or 'unnamed'} {n:,}" for name, n in result.excluded_frauds_by_scenario.items()
        )
        lines.append(
            f"of which fraud: {result.excluded_frauds:,} "
            f"(amount {_money(result.excluded_fraud_amount).replace(chr(10), ', ')}): {scenarios}"
        )
    return lines


def print_report(result: BacktestResult, console: Console) -> None:
    for s in result.sets:
        console.print(rules_table(s))
    console.print(summary_table(result))
    for line in excluded_lines(result):
        console.print(Text(line))  # scenario names come from the data: never markup
    if result.lists_missing:
        console.print(
            Text(
                "warning: the rules read lists this backtest was not given, empty here "
                "('in' never matches, 'not in' always does; give --lists-dir): "
                + ", ".join(result.lists_missing),
                style="yellow",
            )
        )
    console.print(
        Text(
            f"{result.evaluated:,} requests evaluated (the ones the fraud step scores) "
            f"in {result.seconds:.1f} s",
            style="dim",
        )
    )


def write_json(result: BacktestResult, path: Path) -> Path:
    path.write_text(json.dumps(result.to_dict(), indent=2))
    return path


def write_plots(result: BacktestResult, directory: Path) -> list[Path]:
    """Per-rule precision/recall (one file per set) and the score distribution plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for i, s in enumerate(result.sets):
        fig, ax = plt.subplots(figsize=(8, max(3.0, 0.35 * len(s.rules) + 1.5)))
        names = [r.name + (" (shadow)" if r.mode == "shadow" else "") for r in s.rules]
        y = range(len(names))
        ax.barh([v - 0.2 for v in y], [r.precision or 0 for r in s.rules], 0.4, label="precision")
        ax.barh([v + 0.2 for v in y], [r.recall or 0 for r in s.rules], 0.4, label="recall")
        ax.set_yticks(list(y), names)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("fraction")
        ax.set_title(f"per-rule precision and recall ({Path(s.file).name or 'rules'})")
        ax.legend(loc="lower right")
        fig.tight_layout()
        path = directory / f"rules_precision_recall{'' if i == 0 else '_compare'}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    fig, ax = plt.subplots(figsize=(8, 4))
    bins = list(range(0, 1001, 25))
    if result.scores_genuine:
        ax.hist(result.scores_genuine, bins=bins, alpha=0.6, density=True, label="genuine")
    if result.scores_fraud:
        ax.hist(result.scores_fraud, bins=bins, alpha=0.6, density=True, label="fraud")
    ax.set_xlabel("model score (0-999)")
    ax.set_ylabel("density")
    ax.set_title("score distribution: fraud vs genuine")
    if result.scores_fraud or result.scores_genuine:
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no scored transactions", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    path = directory / "score_distribution.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)
    return written
