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
