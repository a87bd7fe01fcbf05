"""Why a journalled transaction scored what it did, or what the rules made of it, asked after
the fact by an analyst.

The server keeps the model's reasons only for high scores (``[models] explain_from``). For any
other entry this rebuilds the context the server had: the card's own 30 days of journal before
the entry and, for a model that reads them, the last hour at its merchant, replayed by
``models.context.replay_contexts`` exactly as training replays an export. The model of the
caller's choice (the active champion, or another artifact) scores and explains it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from authhost.admin.errors import NotFoundError
from authhost.cards.acceptor_velocity import WINDOW_LONG_S
from authhost.cards.velocity import RETENTION_S
from authhost.models.context import replay_contexts
from authhost.models.features import feature_names, feature_values
from authhost.models.scored import SCORED_CLASSES, SERVER, entry_declined_before_fraud
from authhost.models.scorer import Scorer
from authhost.rules.engine import RuleSet
from authhost.rules.explain import explain_rules
from authhost.store.interface import CardStore, JournalQuery
from authhost.store.records import JournalEntry

TOP_REASONS = 5


async def explain_journal_entry(
    store: CardStore, card_id: str, journal_id: int, scorer: Scorer
) -> dict[str, Any]:
    """The entry's features as the server computed them, ``scorer``'s score of them and the
    features that pushed it up most. NotFoundError for an entry the card does not have. For an
    entry the fraud step never had (``models.scored``) ``scored_online`` is false and
    ``not_scored_because`` says why: the score is then what the model would have given."""
    entry = await card_journal_entry(store, card_id, journal_id)
    rows = await _history(store, entry, scorer.reads_acceptors)
    ctx = next(ctx for row, ctx in replay_contexts(rows) if row["journal_id"] == journal_id)
    values = feature_values(ctx, scorer.terminal_risk, scorer.feature_blocks, scorer.amount_units)
    not_scored = _not_in_fraud_step(entry, "the model did not score it") or _unscored(entry)
    return {
        "journal_id": journal_id,
        "card_id": card_id,
        "model": scorer.name,
        "feature_set": scorer.feature_set,
        "scored_online": not_scored is None,
        "not_scored_because": not_scored,
        "score": scorer.score_one(ctx),
        # the model's own score beside the rebuilt one (fraud_score has score rules' points:
        # set against it, a faithful rebuild looked wrong); null when the journal has none
        "journalled": {
            "score": entry.model_score if entry.model_score >= 0 else None,
            "fraud_score": entry.fraud_score,
            "reasons": entry.model_reasons,
        },
        "reasons": [
            {"feature": name, "added": round(added, 4)}
            for name, added in scorer.explain(ctx, top=TOP_REASONS)
        ],
        "features": dict(zip(feature_names(scorer.feature_set), values, strict=True)),
        "rows_replayed": len(rows),
    }


async def explain_rules_for_entry(
    store: CardStore,
    card_id: str,
    journal_id: int,
    rule_set: RuleSet,
    lists: Mapping[str, frozenset[str]],
) -> dict[str, Any]:
    """Each rule of ``rule_set`` on the entry's context as the server had it (the card's 30
    days, and the merchant's last hour for rules that read it, replayed), with the values of
    the variables it reads, beside what the journal recorded (``rules.explain``).

    ``score`` is the model's own as journalled (``model_score``; for an entry from before it
    was, the journalled fraud score less the points of the score rules that match).

    Online the rules run only in the fraud step. For an entry that never reached it (declined
    by an earlier step, ``models.scored``, or an advice or reversal, which the fraud step never
    scores) ``rules_ran`` is false and ``not_run_because`` says why: the verdicts are then
    what the rules would make of its context, not what they did."""
    entry = await card_journal_entry(store, card_id, journal_id)
    not_run = _rules_not_run(entry)
    rows = await _history(store, entry, rule_set.reads_acceptors)
    ctx = next(ctx for row, ctx in replay_contexts(rows) if row["journal_id"] == journal_id)
    if entry.model_score >= 0:  # journalled: the score the rules saw
        score: int | None = entry.model_score
    else:  # an entry from before it was: the journalled score less the score rules' points
        score = entry.fraud_score if entry.fraud_score >= 0 else None
        if score is not None:
            rules = RuleSet(rule_set.rules, rule_set.version)
            score = max(0, min(999, score - rules.evaluate(ctx, score, lists).score_delta))
    return {
        "journal_id": journal_id,
        "card_id": card_id,
        "rules_ran": not_run is None,
        "declined_before_fraud_step": entry_declined_before_fraud(entry),
        "not_run_because": not_run,
        "journalled": {
            "response_code": entry.response_code,
            "reason_codes": [r for r in entry.reason_codes.split(";") if r],
            "rule_matches": [r for r in entry.rule_matches.split(";") if r],
            "fraud_score": entry.fraud_score,
        },
        "score": score,
        **explain_rules(rule_set, ctx, score, lists),
        "rows_replayed": len(rows),
    }


def _rules_not_run(entry: JournalEntry) -> str | None:
    """Why no rule ran on the entry online, or None when the fraud step had it."""
    why = _not_in_fraud_step(entry, "no rule ran on it")
    if why is None:
        return None
    return why + "; the verdicts below are what the rules would make of its context"


def _unscored(entry: JournalEntry) -> str | None:
    """Why an entry the fraud step had carries no model score (journalled -1), or None."""
    if entry.fraud_score >= 0:
        return None
    if entry.model_skipped:
        return "the model ran past its time budget ([models] budget_ms): no score online"
    return "no model was active when it was decided: no score online"


def _not_in_fraud_step(entry: JournalEntry, so: str) -> str | None:
    """Why the fraud step (its rules and model) never had the entry online, ending in what
    that means (``so``), or None when it had it."""
    if entry.message_class not in SCORED_CLASSES:
        return (
            f"a {entry.message_class} is never scored: the fraud step has only authorisation "
            f"and financial requests, so {so} online"
        )
    step = entry_declined_before_fraud(entry)
    if step is None:
        return None
    reason = entry.reason_codes.split(";", 1)[0]
    by = "by the server, outside the pipeline" if step == SERVER else f"by the {step} step"
    return f"declined {entry.response_code} ({reason}) {by}, before the fraud step: {so} online"


async def card_journal_entry(store: CardStore, card_id: str, journal_id: int) -> JournalEntry:
    """One of the card's journal entries, by its id; NotFoundError when the card has none."""
    found = await store.journal(JournalQuery(card_id=card_id, after_id=journal_id - 1, limit=1))
    if not found or found[0].journal_id != journal_id:
        raise NotFoundError(f"journal entry {journal_id} of card {card_id} not found")
    return found[0]


async def _history(store: CardStore, entry: JournalEntry, acceptors: bool) -> list[dict]:
    """The journal rows the entry's context depends on, in the order the server met them."""
    until = math.nextafter(entry.ts, math.inf)  # the store's ``until`` is exclusive
    queries = [JournalQuery(card_id=entry.card_id, since=entry.ts - RETENTION_S, until=until)]
    if acceptors and entry.merchant_id:
        queries.append(
            JournalQuery(merchant_id=entry.merchant_id, since=entry.ts - WINDOW_LONG_S, until=until)
        )
    by_id: dict[int, JournalEntry] = {}
    for query in queries:
        async for row in store.export_journal(query):
            if row.ts < entry.ts or row.journal_id <= entry.journal_id:
                by_id[row.journal_id] = row
    return [by_id[i].as_row() for i in sorted(by_id, key=lambda i: (by_id[i].ts, i))]
