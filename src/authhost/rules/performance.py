"""How each rule did in production: what it matched, what became of those requests, and what
the labels that came back (chargebacks, the cardholders' answers, analysts) say about them.

A backtest replays today's rules over labelled history; this counts what the journal recorded
the rules doing, so an analyst sees which rule declines the customers who then answer "it was
me" (``declined_genuine_by_rule``: its own declines; ``declined_genuine`` counts whatever
declined its matches, a score or review rule's included), and how often a rule's matches
turned out to be fraud (``precision``, over the labelled matches only: most requests are never
labelled). Pure: the admin service streams the journal and the fraud reports in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from authhost.cards.cardholder_pass import PASS_REASON
from authhost.iso.codes import APPROVED_CODES, ResponseCode
from authhost.store.records import FraudReport, JournalEntry

# not declined: approved (00, 10), or an account verification that passed every check (85)
PASSED_CODES = APPROVED_CODES | {ResponseCode.NO_REASON_TO_DECLINE.value}


@dataclass(frozen=True, slots=True)
class RuleFacts:
    """What the rules file says of a rule now (the journal keeps only its name)."""

    action: str
    reason: str
    shadow: bool
    window: str = ""  # a temporary rule's (``Rule.window_text``): one that ended matches no more


@dataclass(slots=True)
class RuleTally:
    rule: str
    matches: int = 0
    approved: int = 0  # matched, and the request was approved (00, 10) or verified (85)
    declined: int = 0  # matched, and the request was declined (by this rule or anything else)
    declined_by_rule: int | None = None  # declined with the rule's reason first (rules file)
    passed: int = 0  # approved through the cardholder's pass despite the match
    reviewed: int = 0  # approved and flagged for review
    fraud: int = 0  # matches reported fraud
    genuine: int = 0  # matches reported genuine
    genuine_by_cardholder: int = 0  # of which the cardholder said "it was me"
    declined_genuine: int = 0  # declined (by anything), and reported genuine
    # its own declines reported genuine: the customers this rule turned away (None as above)
    declined_genuine_by_rule: int | None = None
    # fraud matched, by the account's currency (minor units)
    fraud_amount_minor: dict[str, int] = field(default_factory=dict)

    @property
    def precision(self) -> float | None:
        labelled = self.fraud + self.genuine
        return None if labelled == 0 else self.fraud / labelled

    def as_dict(self, facts: RuleFacts | None) -> dict[str, object]:
        return {
            "rule": self.rule,
            "in_rules_file": facts is not None,
            "action": facts.action if facts else "",
            "shadow": facts.shadow if facts else None,
            "window": facts.window if facts else "",
            "matches": self.matches,
            "approved": self.approved,
            "declined": self.declined,
            "declined_by_rule": self.declined_by_rule,
            "passed": self.passed,
            "reviewed": self.reviewed,
            "fraud": self.fraud,
            "genuine": self.genuine,
            "genuine_by_cardholder": self.genuine_by_cardholder,
            "declined_genuine": self.declined_genuine,
            "declined_genuine_by_rule": self.declined_genuine_by_rule,
            "precision": None if self.precision is None else round(self.precision, 4),
            "fraud_amount_minor": dict(sorted(self.fraud_amount_minor.items())),
        }


class RulePerformance:
    """Counts entries one by one (the journal is streamed, not held)."""

    def __init__(self, facts: Mapping[str, RuleFacts] | None = None) -> None:
        self.facts = dict(facts or {})
        self.entries = 0  # entries of the period read
        self.with_matches = 0
        self._tallies: dict[str, RuleTally] = {}
        self._by_reason: dict[str, set[str]] = defaultdict(set)
        for name, rule in self.facts.items():
            if rule.action == "decline" and not rule.shadow:  # only these decide a decline
                self._by_reason[rule.reason].add(name)

    def add(self, entry: JournalEntry, report: FraudReport | None) -> None:
        self.entries += 1
        if not entry.rule_matches:
            return
        self.with_matches += 1
        approved = entry.response_code in PASSED_CODES
        reasons = entry.reason_codes.split(";") if entry.reason_codes else []
        first_reason = reasons[0] if reasons else ""
        # the rule whose decline decided: the first match (in priority order, as the journal
        # lists them) among the enforced decline rules with the first reason; rules sharing
        # that reason matched too, but the decline was not theirs
        deciders = self._by_reason.get(first_reason, set()) if not approved else set()
        decider = next((n for n in entry.rule_matches.split(";") if n in deciders), None)
        for name in dict.fromkeys(entry.rule_matches.split(";")):
            if not name:
                continue
            tally = self._tallies.get(name)
            if tally is None:
                tally = self._tallies[name] = RuleTally(name)
                if name in self.facts:
                    tally.declined_by_rule = tally.declined_genuine_by_rule = 0
            tally.matches += 1
            if approved:
                tally.approved += 1
                tally.reviewed += entry.review
                tally.passed += PASS_REASON in reasons
            else:
                tally.declined += 1
                if tally.declined_by_rule is not None and name == decider:
                    tally.declined_by_rule += 1
            if report is None:
                continue
            if report.fraud:
                tally.fraud += 1
                amounts = tally.fraud_amount_minor
                amounts[entry.currency] = amounts.get(entry.currency, 0) + entry.amount_minor
            else:
                tally.genuine += 1
                tally.genuine_by_cardholder += report.source == "cardholder"
                tally.declined_genuine += not approved
                if tally.declined_genuine_by_rule is not None and name == decider:
                    tally.declined_genuine_by_rule += 1

    def add_all(self, pairs: Iterable[tuple[JournalEntry, FraudReport | None]]) -> None:
        for entry, report in pairs:
            self.add(entry, report)

    def rows(self) -> list[dict[str, object]]:
        """One row per rule that matched, most friction first (genuine customers it declined
        itself, then its matches declined and reported genuine: a score rule whose matches
        another rule declined turned nobody away), then most matches; then the rules of the
        file that matched nothing."""
        ordered = sorted(
            self._tallies.values(),
            key=lambda t: (-(t.declined_genuine_by_rule or 0), -t.declined_genuine, -t.matches),
        )
        rows = [t.as_dict(self.facts.get(t.rule)) for t in ordered]
        for name in sorted(set(self.facts) - set(self._tallies)):
            silent = RuleTally(name, declined_by_rule=0, declined_genuine_by_rule=0)
            rows.append(silent.as_dict(self.facts[name]))
        return rows
