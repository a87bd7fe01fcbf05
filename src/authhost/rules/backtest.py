"""Backtesting rule sets on labelled history: the same contexts, the same engine as production.

Rows are replayed in time order through ``models.context.replay_contexts`` (so velocity is
what the server would have seen) and each request the server's fraud step scores is
evaluated by every rule set given. Online the rules run only in the fraud step: a request
declined before it (an unknown card 14, a CVV failure 82/N7, a wrong PIN 55, a blocked card,
a limit) never meets a rule, so crediting a rule with it would report as caught what the
server answered before any rule ran. ``models.scored`` (the rule training and
``models compare`` use) says which rows those are; they still feed the replayed counters (a
card's declines, a terminal's unknown numbers, as online) and are counted apart
(``excluded_before_fraud_step``, by step and fraud scenario). Advices and reversals are
replayed, never evaluated. ``score`` is the model score the journal recorded (``fraud_score``,
-1 = not scored, i.e. missing). A transaction counts as caught when the set declines it;
reviews are reported apart.

Amounts are totalled per currency (the card's, ``currency``), each in its own major units
(ISO 4217 exponent): 10,000 yen and 100.00 dollars are two totals, never one number. The
amount detection rate is a ratio of one currency's amounts, so it is given per currency
(``amount_detection_rate_by_currency``), and as one figure only when the data has one currency.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

from authhost.auth.currencies import exponent_of
from authhost.models.context import replay_contexts
from authhost.models.scored import SCORED_CLASSES, row_declined_before_fraud, scored_online
from authhost.rules.engine import Lists, RuleSet
from authhost.rules.variables import per_major

PROGRESS_EVERY = 10_000


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


Money = dict[str, float]  # currency code -> amount in its major units ("" : none given)


def _add(money: dict[str, int], currency: str, amount_minor: int) -> None:
    money[currency] = money.get(currency, 0) + amount_minor


def _major(money: dict[str, int]) -> Money:
    """Minor-unit totals as major units, each by its currency's exponent, codes in order."""
    out = {}
    for currency, minor in sorted(money.items()):
        exponent = exponent_of(currency)
        out[currency] = round(minor / per_major(currency), exponent)
    return out


@dataclass
class RuleResult:
    """How one rule did: matches split by label, and the fraud amount it matched."""

    name: str
    action: str
    mode: str
    matches: int = 0
    true_positives: int = 0
    false_positives: int = 0
    fraud_amount: Money = field(default_factory=dict)  # fraud it matched, per currency
    precision: float | None = None
    recall: float | None = None


@dataclass
class SetResult:
    """Totals of one rule set over the data."""

    file: str
    version: str
    rules: list[RuleResult]
    transactions: int = 0
    fraud: int = 0
    fraud_amount: Money = field(default_factory=dict)  # per currency, major units
    declined: int = 0
    declined_fraud: int = 0
    declined_genuine: int = 0
    declined_fraud_amount: Money = field(default_factory=dict)
    declined_genuine_amount: Money = field(default_factory=dict)  # the "declined good volume"
    reviewed_fraud: int = 0
    reviewed_genuine: int = 0
    errors: int = 0
    detection_rate: float | None = None  # declined fraud / fraud
    amount_detection_rate: float | None = None  # the data's one currency (None: several)
    amount_detection_rate_by_currency: dict[str, float | None] = field(default_factory=dict)
    false_positive_ratio: float | None = None  # declined genuine per declined fraud


@dataclass
class Diff:
    """Where two rule sets decide differently (A = --rules, B = --compare)."""

    only_a_fraud: int = 0
    only_a_genuine: int = 0
    only_b_fraud: int = 0
    only_b_genuine: int = 0


@dataclass
class BacktestResult:
    data: str
    rows: int = 0
    evaluated: int = 0  # requests the fraud step scores: the ones the rules see
    # authorisation/financial requests declined before the fraud step: no rule runs on them
    # online, so none is evaluated (``models.scored``); still replayed into the counters
    excluded_before_fraud_step: int = 0
    excluded_frauds: int = 0
    excluded_fraud_amount: Money = field(default_factory=dict)  # per currency, major units
    excluded_by_step: dict[str, int] = field(default_factory=dict)
    excluded_frauds_by_scenario: dict[str, int] = field(default_factory=dict)
    sets: list[SetResult] = field(default_factory=list)
    diff: Diff | None = None
    # lists the rules read that the backtest was not given: empty here, so ``in`` never
    # matches and ``not in`` always does, unlike the server, which has its lists
    lists_missing: list[str] = field(default_factory=list)
    scores_fraud: list[int] = field(default_factory=list, repr=False)
    scores_genuine: list[int] = field(default_factory=list, repr=False)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, object]:
        """The JSON report (scores summarised, not listed)."""
        out = asdict(self)
        out.pop("scores_fraud")
        out.pop("scores_genuine")
        out["scored_fraud"] = len(self.scores_fraud)
        out["scored_genuine"] = len(self.scores_genuine)
        return out


class _Tally:
    """Accumulates one set's figures while rows stream by."""

    def __init__(self, rules: RuleSet) -> None:
        self.result = SetResult(
            file=rules.source,
            version=rules.version,
            rules=[RuleResult(r.name, r.action.value, r.mode.value) for r in rules.rules],
        )
        self.by_name = {r.name: r for r in self.result.rules}
        # minor units per currency while the rows stream by; major units at the end
        self.rule_fraud: dict[str, dict[str, int]] = {r.name: {} for r in self.result.rules}
        self.fraud: dict[str, int] = {}
        self.declined_fraud: dict[str, int] = {}
        self.declined_genuine: dict[str, int] = {}

    def add(
        self,
        matched: Sequence[str],
        declined: bool,
        review: bool,
        fraud: bool,
        currency: str,
        amount_minor: int,
    ) -> None:
        res = self.result
        res.transactions += 1
        for name in matched:
            rule = self.by_name[name]
            rule.matches += 1
            if fraud:
                rule.true_positives += 1
                _add(self.rule_fraud[name], currency, amount_minor)
            else:
                rule.false_positives += 1
        if fraud:
            res.fraud += 1
            _add(self.fraud, currency, amount_minor)
        if declined:
            res.declined += 1
            if fraud:
                res.declined_fraud += 1
                _add(self.declined_fraud, currency, amount_minor)
            else:
                res.declined_genuine += 1
                _add(self.declined_genuine, currency, amount_minor)
        elif review:
            if fraud:
                res.reviewed_fraud += 1
            else:
                res.reviewed_genuine += 1

    def finish(self) -> SetResult:
        res = self.result
        for rule in res.rules:
            rule.precision = _ratio(rule.true_positives, rule.matches)
            rule.recall = _ratio(rule.true_positives, res.fraud)
            rule.fraud_amount = _major(self.rule_fraud[rule.name])
        res.detection_rate = _ratio(res.declined_fraud, res.fraud)
        res.amount_detection_rate_by_currency = {
            currency: _ratio(self.declined_fraud.get(currency, 0), total)
            for currency, total in sorted(self.fraud.items())
        }
        if len(self.fraud) == 1:  # a ratio of amounts is one currency's
            [res.amount_detection_rate] = res.amount_detection_rate_by_currency.values()
        res.false_positive_ratio = _ratio(res.declined_genuine, res.declined_fraud)
        res.fraud_amount = _major(self.fraud)
        res.declined_fraud_amount = _major(self.declined_fraud)
        res.declined_genuine_amount = _major(self.declined_genuine)
        return res


def run_backtest(
    rows: Iterable[Mapping[str, object]],
    rule_sets: Sequence[RuleSet],
    lists: Lists | None = None,
    *,
    data_name: str = "",
    progress: Callable[[int], None] | None = None,
) -> BacktestResult:
    """Replay ``rows`` (sorted by ts) through every rule set; figures per rule and per set,
    over the requests the fraud step scores (``models.scored``); the ones declined before it
    are counted apart."""
    started = time.perf_counter()
    lists = lists or {}
    tallies = [_Tally(rs) for rs in rule_sets]
    result = BacktestResult(data=data_name)
    diff = Diff() if len(rule_sets) == 2 else None
    rows_seen = evaluated = 0
    by_step: Counter[str] = Counter()
    frauds_by_scenario: Counter[str] = Counter()
    excluded_fraud_amount: dict[str, int] = {}
    for row, ctx in replay_contexts(rows):
        rows_seen += 1
        if progress is not None and rows_seen % PROGRESS_EVERY == 0:
            progress(PROGRESS_EVERY)
        fraud = bool(row.get("label") or 0)
        if not scored_online(row):  # no rule ran on it online: replayed only
            # an advice or a reversal is never scored; a request declined before the fraud
            # step is counted apart
            if (row.get("message_class") or "") in SCORED_CLASSES:
                by_step[row_declined_before_fraud(row) or ""] += 1
                if fraud:
                    frauds_by_scenario[str(row.get("scenario") or "")] += 1
                    _add(excluded_fraud_amount, ctx.currency, ctx.amount_minor)
            continue
        evaluated += 1
        raw_score = _model_score(row)
        score = int(raw_score) if raw_score is not None and raw_score >= 0 else None  # type: ignore[operator,call-overload]
        if score is not None:
            (result.scores_fraud if fraud else result.scores_genuine).append(score)
        decisions = []
        for rs, tally in zip(rule_sets, tallies, strict=True):
            out = rs.evaluate(ctx, score, lists)
            declined = out.decline_code is not None
            decisions.append(declined)
            tally.add(out.matched, declined, out.review, fraud, ctx.currency, ctx.amount_minor)
            tally.result.errors += len(out.errors)
        if diff is not None and decisions[0] != decisions[1]:
            if decisions[0]:
                diff.only_a_fraud += fraud
                diff.only_a_genuine += not fraud
            else:
                diff.only_b_fraud += fraud
                diff.only_b_genuine += not fraud
    if progress is not None:
        progress(rows_seen % PROGRESS_EVERY)
    result.rows = rows_seen
    result.evaluated = evaluated
    result.excluded_before_fraud_step = by_step.total()
    result.excluded_frauds = frauds_by_scenario.total()
    result.excluded_fraud_amount = _major(excluded_fraud_amount)
    result.excluded_by_step = dict(sorted(by_step.items()))
    result.excluded_frauds_by_scenario = dict(sorted(frauds_by_scenario.items()))
    result.sets = [t.finish() for t in tallies]
    result.lists_missing = sorted(set().union(*(rs.lists for rs in rule_sets)) - set(lists))
    result.diff = diff
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _model_score(row: Mapping[str, object]) -> object:
    """The score the rules saw: the model's own (``model_score``), or for rows without it
    the journalled ``fraud_score`` (which has the score rules' points)."""
    own = row.get("model_score")
    if own is not None and own == own and own >= 0:  # type: ignore[operator]  # (NaN != NaN)
        return own
    return row.get("fraud_score")
