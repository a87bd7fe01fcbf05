"""The champion/challenger report over a store's journal (``models.comparison`` does the
counting): the thresholds of the active artifacts, and the fraud reports as verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio

from authhost.admin.errors import InvalidRequest
from authhost.admin.totals import iso_time
from authhost.models.comparison import ScoredPair, compare
from authhost.models.registry import Registry, RegistryError
from authhost.models.scored import entry_declined_before_fraud
from authhost.store.interface import CardStore, JournalQuery
from authhost.store.records import JournalEntry

VERDICT_BATCH = 1000  # entries whose fraud reports are read in one call


async def compare_models(
    store: CardStore,
    models_dir: str | Path,
    since: float,
    until: float,
    champion_threshold: int | None = None,
    challenger_threshold: int | None = None,
) -> dict[str, Any]:
    """The comparison of the requests both models scored in [since, until), each at its
    artifact's threshold unless given. Streams the journal: memory for the pairs only."""
    registry = Registry(models_dir or "models")
    try:
        state = await anyio.to_thread.run_sync(registry.state)
        artifacts = await anyio.to_thread.run_sync(registry.list)
    except RegistryError as exc:
        raise InvalidRequest(str(exc)) from None
    thresholds = {a.name: a.threshold for a in artifacts}
    champion_threshold = _threshold(champion_threshold, state.champion, thresholds, "champion")
    challenger_threshold = _threshold(
        challenger_threshold, state.challenger, thresholds, "challenger"
    )
    pairs: list[ScoredPair] = []
    batch: list[JournalEntry] = []
    declined_before = 0  # never scored: neither model can be judged on them (models.scored)
    async for entry in store.export_journal(JournalQuery(since=since, until=until)):
        if entry_declined_before_fraud(entry) is not None:
            declined_before += 1
            continue
        if entry.fraud_score >= 0 and entry.challenger_score >= 0:
            batch.append(entry)
            if len(batch) >= VERDICT_BATCH:
                pairs += await _with_verdicts(store, batch)
                batch = []
    pairs += await _with_verdicts(store, batch)
    return {
        "since": iso_time(since),
        "until": iso_time(until),
        "champion_model": state.champion,
        "challenger_model": state.challenger,
        **compare(
            pairs,
            champion_threshold,
            challenger_threshold,
            declined_before_fraud_step=declined_before,
        ),
    }


def _threshold(given: int | None, active: str | None, known: dict[str, int], role: str) -> int:
    """The threshold given, or the active ``role`` artifact's; 422 with what to do when
    neither is there."""
    if given is not None:
        return given
    if active not in known:
        hint = " (models activate --challenger)" if role == "challenger" else ""
        raise InvalidRequest(
            f"no active {role}: activate one{hint}, or give {role}_threshold (--{role}-threshold)"
        )
    return known[active]


async def _with_verdicts(store: CardStore, entries: list[JournalEntry]) -> list[ScoredPair]:
    if not entries:
        return []
    reports = await store.fraud_reports_of([e.journal_id for e in entries])
    return [
        ScoredPair(
            e.journal_id,
            e.model_score if e.model_score >= 0 else e.fraud_score,  # the model's own
            e.challenger_score,
            e.amount_minor,
            reports[e.journal_id].fraud if e.journal_id in reports else None,
            e.currency,
        )
        for e in entries
    ]
