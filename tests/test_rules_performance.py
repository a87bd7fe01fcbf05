"""rules.performance counting, on journal entries written here: a decline is a rule's own only
when the rule declines and is enforced (a shadow or review rule may share its reason), and an
account verification that passed (85) is not a decline."""

from __future__ import annotations

from authhost.rules.performance import RuleFacts, RulePerformance
from authhost.store.records import FraudReport, JournalEntry


def entry(journal_id: int, code: str, matches: str, reasons: str = "") -> JournalEntry:
    return JournalEntry(ts=1.0, mti="0100", message_class="authorisation", response_code=code,
                        card_id="c1", amount_minor=1_000, currency="978", rule_matches=matches,
                        reason_codes=reasons, journal_id=journal_id)  # fmt: skip


def test_a_decline_is_only_the_enforced_decline_rules_own():
    facts = {
        "block": RuleFacts("decline", "FR-1", False),
        "watch": RuleFacts("review", "FR-1", False),  # the same reason, another action
        "trial": RuleFacts("decline", "FR-1", True),  # the same reason, in shadow
        "verify-watch": RuleFacts("review", "FR-V", False),
    }
    performance = RulePerformance(facts)
    performance.add(entry(1, "59", "block;watch;trial", "FR-1;FR-1"),
                    FraudReport(1, "c1", False, "cardholder", 2.0))  # fmt: skip
    performance.add(entry(2, "85", "verify-watch", "verification;FR-V"), None)
    rows = {row["rule"]: row for row in performance.rows()}
    assert [rows[n]["declined_by_rule"] for n in ("block", "watch", "trial")] == [1, 0, 0]
    assert [rows[n]["declined_genuine"] for n in ("block", "watch", "trial")] == [1, 1, 1]
    verified = rows["verify-watch"]
    assert (verified["approved"], verified["declined"]) == (1, 0)  # 85 passed every check


def test_a_decline_is_credited_to_one_rule_when_several_share_its_reason():
    """Counted by hand: four entries, two frauds. Two enforced decline rules that share a
    reason both matched entry 1: only the first in priority order (the journal's match order)
    declined it. Each rule's own declines add up to the declines the rules decided (2), never
    more; every other column counts each rule's matches, so a fraud two rules matched is a
    fraud of each (that is each rule's precision), as the docs say."""
    facts = {
        "velocity": RuleFacts("decline", "FR-V", False),
        "big": RuleFacts("decline", "FR-V", False),  # the same reason as velocity
        "geo": RuleFacts("review", "FR-G", False),
    }
    fraud = FraudReport(0, "c1", True, "chargeback", 2.0)
    genuine = FraudReport(0, "c1", False, "cardholder", 2.0)
    performance = RulePerformance(facts)
    performance.add(entry(1, "59", "velocity;big", "FR-V;FR-V"), fraud)
    performance.add(entry(2, "59", "big;geo", "FR-V;FR-G"), fraud)
    performance.add(entry(3, "00", "geo", "FR-G"), genuine)
    performance.add(entry(4, "00", ""), None)
    rows = {row["rule"]: row for row in performance.rows()}
    counted = ("matches", "declined", "declined_by_rule", "approved", "fraud", "genuine")
    assert {name: tuple(row[k] for k in counted) for name, row in rows.items()} == {
        "velocity": (1, 1, 1, 0, 1, 0),
        "big": (2, 2, 1, 0, 2, 0),  # entry 1 was velocity's decline, entry 2 its own
        "geo": (2, 1, 0, 1, 1, 1),
    }
    assert sum(row["declined_by_rule"] for row in rows.values()) == 2  # the two declines
    assert (performance.entries, performance.with_matches) == (4, 3)


def test_a_rule_is_credited_only_with_the_genuine_customers_it_declined_itself():
    """A score rule matching most requests matched every genuine customer a decline rule
    turned away, and its declined_genuine put it at the top of the table that answers "which
    rule turns genuine customers away?" although it declines nobody."""
    facts = {
        "block": RuleFacts("decline", "FR-B", False),
        "countries": RuleFacts("score", "FR-C", False),
    }
    genuine = FraudReport(0, "c1", False, "cardholder", 2.0)
    performance = RulePerformance(facts)
    performance.add(entry(1, "59", "block;countries", "FR-B"), genuine)
    performance.add(entry(2, "75", "countries", "pin.tries_exhausted"), genuine)
    performance.add(entry(3, "51", "countries", "funds.insufficient;FR-C"), genuine)
    performance.add(entry(4, "59", "gone", "FR-GONE"), genuine)  # no longer in the file
    rows = performance.rows()
    assert [row["rule"] for row in rows] == ["block", "countries", "gone"]
    by_rule = {row["rule"]: row for row in rows}
    assert (by_rule["block"]["declined_genuine"], by_rule["block"]["declined_genuine_by_rule"]) == (
        1,
        1,
    )
    assert by_rule["countries"]["declined_genuine"] == 3
    assert by_rule["countries"]["declined_genuine_by_rule"] == 0
    assert by_rule["gone"]["declined_genuine_by_rule"] is None  # unknown, as declined_by_rule
