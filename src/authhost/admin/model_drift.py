"""Drift of a model's inputs and score over a period of a store's journal (``models.drift``
does the binning and the PSI): which model, which reference, and the replay.

The period's journal, with the 30 days before it that the cards' velocity counts, is
streamed once through ``models.context.JournalReplay``: the contexts and feature vectors are
those training and serving compute (the model's feature set, its terminal risk table), for
the requests the model scores (``models.scored``). The score is the journal's: the champion's
``model_score`` or the challenger's ``challenger_score``; a model that is neither is scored on
the replayed features, as it would have scored them. Memory: the counts, and a reference
period's feature matrix when one is given.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import numpy as np

from authhost.admin.chosen_model import named_or_champion
from authhost.admin.errors import InvalidRequest
from authhost.admin.totals import iso_time
from authhost.cards.velocity import RETENTION_S
from authhost.models.context import JournalReplay
from authhost.models.drift import (
    DriftTally,
    Reference,
    ReferenceError,
    Thresholds,
    build_reference,
    drift_report,
)
from authhost.models.features import feature_names, feature_values
from authhost.models.registry import Registry, RegistryError
from authhost.models.scored import SCORED_CLASSES, entry_declined_before_fraud
from authhost.models.scorer import Scorer
from authhost.store.interface import CardStore, JournalQuery
from authhost.store.records import JournalEntry

CHUNK = 2048  # feature vectors binned (or scored) in one numpy pass
WEEK_S = 7 * 86400.0
# what a period shorter than a week differs in from any reference of whole weeks, by design
SHORT_PERIOD_NOTE = (
    "the period is shorter than a week: 'weekend' (and the hour features, for part of a day) "
    "drift by the calendar alone; compare whole weeks, or the same weekday (--reference-day, "
    "reference_day)"
)
# below this many scored requests, chance alone moves a PSI towards 'watch': an undrifted
# sample of n requests over k bins has a PSI of about (k - 1) / n (its chi-square over n)
FEW_ROWS = 1000


def few_rows_note(rows: int) -> str:
    return (
        f"only {rows:,} scored requests: a PSI of about {9 / rows:.2g} over ten bins comes from "
        "chance alone, so read 'watch' and 'act' with care; choose a longer period"
    )


# the audit action of a journal retention run, whose 'before' is where the journal now starts
PRUNE_ACTION = "journal.prune"
AUDIT_PAGE = 1000
# a reference period's feature vectors are held in memory (8 bytes a feature a request):
# beyond this many scored requests (about 190 MB for 47 features) it is refused, not swapped
REFERENCE_ROWS_MAX = 500_000


def pruned_note(cut: float, since: float, until: float, what: str) -> str:
    """What a replay whose 30-day lookback crosses the journal's retention cut reads wrong."""
    whole = cut + RETENTION_S
    return (
        f"the journal was pruned before {iso_time(cut)}: the {what}'s requests up to "
        f"{iso_time(min(whole, until))} replay with less than the 30 days of card history "
        "serving counted, so their velocity features (counts and amounts over 1h to 30d, "
        "since_last_log, first_in_30d) read lower than they were and drift by the pruning "
        f"alone; measure from {iso_time(whole)} on"
        if since < whole
        else ""
    )


async def journal_cut(store: CardStore) -> float:
    """The newest journal retention cut (``journal.prune``'s audited ``before``): no entry
    before it is left. -inf when the journal was never pruned."""
    cut, after = -math.inf, 0
    while True:
        page = await store.audit("journal", AUDIT_PAGE, after)
        for entry in page:
            if entry.action != PRUNE_ACTION:
                continue
            try:
                cut = max(cut, float(json.loads(entry.after)["before"]))
            except (ValueError, KeyError, TypeError):  # not the shape prune_journal writes
                continue
        if len(page) < AUDIT_PAGE:
            return cut
        after = page[-1].audit_id


# where the score of each role is journalled; any other model is scored on the replay
SCORE_COLUMNS = {"champion": "model_score", "challenger": "challenger_score"}
REPLAYED = "replayed"


@dataclass(frozen=True)
class Model:
    """The model whose drift is measured, its role now and where its scores come from."""

    scorer: Scorer
    role: str  # champion, challenger or "" (neither)

    @property
    def score_source(self) -> str:
        return SCORE_COLUMNS.get(self.role, REPLAYED)

    def journalled(self, entry: JournalEntry) -> int:
        """The entry's journalled score of this model (-1: none)."""
        return entry.model_score if self.role == "champion" else entry.challenger_score


async def model_drift(
    store: CardStore,
    models_dir: str | Path,
    since: float,
    until: float,
    *,
    model: str = "",
    reference_period: tuple[float, float] | None = None,
    thresholds: Thresholds | None = None,
) -> dict[str, Any]:
    """The drift report of [since, until) against the artifact's reference, or against the
    ``reference_period`` of the journal."""
    thresholds = thresholds or Thresholds()
    chosen = await _model(Registry(models_dir or "models"), model)
    cut = await journal_cut(store)
    notes = []
    if reference_period is not None:
        reference = await _period_reference(store, chosen, *reference_period)
        notes.append(pruned_note(cut, *reference_period, "reference period"))
    else:
        reference = chosen.scorer.artifact.reference
        if reference is None:
            raise InvalidRequest(
                f"model {chosen.scorer.name} has no reference distribution (trained before "
                "authhost kept one): give a reference period (--reference-day, or "
                "--reference-since and --reference-until; reference_day, reference_since "
                "and reference_until in the API), or retrain it"
            )
    tally = DriftTally(reference)
    replay = _PeriodReplay(chosen, since, until)
    async for matrix, scores in replay.chunks(store):
        tally.add_rows(matrix)
        tally.add_scores(scores)
    if not tally.rows:
        raise InvalidRequest(
            f"no requests the model scores from {iso_time(since)} to {iso_time(until)}"
            f"{replay.declined_note()}: nothing to measure drift on; choose a period with "
            "traffic"
        )
    return {
        "since": iso_time(since),
        "until": iso_time(until),
        "model": chosen.scorer.name,
        "role": chosen.role or None,
        "feature_set": chosen.scorer.feature_set,
        "score_source": chosen.score_source,
        "declined_before_fraud_step": replay.declined_before,
        **drift_report(tally, thresholds),
        "notes": [
            note
            for note in (
                SHORT_PERIOD_NOTE if until - since < WEEK_S else "",
                few_rows_note(tally.rows) if tally.rows < FEW_ROWS else "",
                pruned_note(cut, since, until, "period"),
                *notes,
            )
            if note
        ],
    }


async def _model(registry: Registry, name: str) -> Model:
    """The named artifact, or the active champion, with its role now."""
    scorer = await named_or_champion(registry, name)
    try:
        state = await anyio.to_thread.run_sync(registry.state)
    except RegistryError as exc:
        raise InvalidRequest(str(exc)) from None
    role = {state.champion: "champion", state.challenger: "challenger"}.get(scorer.name, "")
    return Model(scorer, role)


async def _period_reference(
    store: CardStore, chosen: Model, since: float, until: float
) -> Reference:
    """The reference distributions of another period of the journal (its deciles)."""
    replay = _PeriodReplay(chosen, since, until)
    matrices, scores, rows = [], [], 0
    async for matrix, chunk_scores in replay.chunks(store):
        matrices.append(matrix)
        scores.append(chunk_scores)
        rows += len(matrix)
        if rows > REFERENCE_ROWS_MAX:
            raise InvalidRequest(
                f"the reference period {iso_time(since)} to {iso_time(until)} has more than "
                f"{REFERENCE_ROWS_MAX:,} requests the model scores, more than are held in "
                "memory to cut into deciles: choose a shorter reference period"
            )
    if not matrices:
        raise InvalidRequest(
            f"no requests the model scores in the reference period {iso_time(since)} to "
            f"{iso_time(until)}{replay.declined_note()}: choose a reference period with traffic"
        )
    names = feature_names(chosen.scorer.feature_set)
    try:
        return build_reference(
            np.concatenate(matrices),
            names,
            np.concatenate(scores),
            f"journal {iso_time(since)}..{iso_time(until)}",
        )
    except ReferenceError as exc:  # not expected: the matrix has rows and the model's width
        raise InvalidRequest(str(exc)) from None


class _PeriodReplay:
    """One period's feature vectors and scores, replayed from the journal in chunks."""

    def __init__(self, chosen: Model, since: float, until: float) -> None:
        self.chosen = chosen
        self.since, self.until = since, until
        self.declined_before = 0  # never scored: a step before the fraud step declined them

    def declined_note(self) -> str:
        n = self.declined_before
        return f" ({n} declined before the fraud step)" if n else ""

    async def chunks(self, store: CardStore) -> AsyncIterator[tuple[np.ndarray, np.ndarray]]:
        """(feature matrix, scores) chunks of the period's scored requests, in journal order;
        the scores are the journalled ones (those of -1, not scored, left out) or the
        model's own on the replayed features."""
        scorer, chosen = self.chosen.scorer, self.chosen
        risk, blocks = scorer.terminal_risk, scorer.feature_blocks
        replayed = chosen.score_source == REPLAYED
        replay = JournalReplay(self.since)
        rows: list[list[float]] = []
        scores: list[int] = []
        query = JournalQuery(since=self.since - RETENTION_S, until=self.until)
        async for entry in store.export_journal(query):
            ctx = replay.step(entry.as_row())
            if ctx is None or entry.message_class not in SCORED_CLASSES:
                continue
            if entry_declined_before_fraud(entry) is not None:
                self.declined_before += 1
                continue
            rows.append(feature_values(ctx, risk, blocks))
            if not replayed and (score := chosen.journalled(entry)) >= 0:
                scores.append(score)
            if len(rows) >= CHUNK:
                yield self._chunk(rows, scores, replayed)
                rows, scores = [], []
        if rows:
            yield self._chunk(rows, scores, replayed)

    def _chunk(
        self, rows: list[list[float]], scores: list[int], replayed: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        matrix = np.array(rows, dtype=np.float64)
        if replayed:
            return matrix, self.chosen.scorer.score_matrix(matrix)
        return matrix, np.array(scores, dtype=np.int64)
