"""Drift of a model's inputs and score over a period of a store's journal (``models.drift``
does the binning and the PSI): which model, which reference, and the replay.

The period's journal, with the 30 days before it that the cards' velocity counts, is
streamed once through ``models.context.JournalReplay``: the contexts and feature vectors are
those training and serving compute (the model's feature set, its terminal risk table), for
the requests the model scores (``models.scored``). The score is the journal's: the champion's
``model_score`` or the challenger's ``challenger_score``; a model that is neither is scored on
the replayed features, as it would have scored them. The journal does not record which model
scored a request, so a journalled score counts only where the registry's change log
(``models.registry``) says the model held that role at the request's time; the others are
left out of the score's PSI and the notes say when the champion changed. With a segment kind
(``models.segments``), each segment of the period is measured against the same segment of
the reference. Memory: the counts, and a reference period's feature matrix when one is given.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
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
    SEGMENT_ROWS_MIN,
    DriftTally,
    Reference,
    ReferenceError,
    Thresholds,
    build_reference,
    drift_report,
)
from authhost.models.features import MISSING_VALUES, feature_names, feature_values
from authhost.models.registry import Change, Registry, RegistryError
from authhost.models.scored import SCORED_CLASSES, entry_declined_before_fraud
from authhost.models.scorer import Scorer
from authhost.models.segments import segment_of
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


# the statuses a level of `models drift --fail-on` (and the server's drift runs) counts
FAIL_LEVELS = {"act": ("act",), "watch": ("act", "watch")}


def drifted(report: dict[str, Any], level: str) -> str:
    """What reached ``level`` (act; watch: act or watch) in a drift report, in one line:
    the period's features and score, then how many of each segment's ("" for none)."""
    statuses = FAIL_LEVELS[level]

    def found(part: dict[str, Any]) -> list[str]:
        names = [f["feature"] for f in part["features"] if f["status"] in statuses]
        score = part["score"]
        return names + (["score"] if score is not None and score["status"] in statuses else [])

    whole = found(report)
    segments = [(s["segment"], len(found(s))) for s in report.get("segments") or ()]
    segments = [(name, n) for name, n in segments if n]
    if not whole and not segments:
        return ""
    said = [
        f"{len(whole)} of the period ({', '.join(whole[:5])}{' ...' if len(whole) > 5 else ''})"
    ]
    if segments:
        said.append(f"by {report['segment']}: " + ", ".join(f"{n} {k}" for n, k in segments))
    return f"drift at {level} or above: " + "; ".join(said)


# where the score of each role is journalled; any other model is scored on the replay
SCORE_COLUMNS = {"champion": "model_score", "challenger": "challenger_score"}
REPLAYED = "replayed"


@dataclass(frozen=True)
class Model:
    """The model whose drift is measured, its role now and where its scores come from, and
    the registry's logged changes of the active models (oldest first)."""

    scorer: Scorer
    role: str  # champion, challenger or "" (neither)
    changes: list[Change] = field(default_factory=list)
    unlogged_history: bool = False  # earlier champions, activated before changes were logged
    _times: list[float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_times", [c.at for c in self.changes])

    @property
    def score_source(self) -> str:
        return SCORE_COLUMNS.get(self.role, REPLAYED)

    def role_at(self, ts: float) -> str:
        """Its role at ``ts`` by the change log (without one, or where the log names no
        model in its role now: that role)."""
        changes = self.changes
        if not changes:
            return self.role
        i = bisect.bisect_right(self._times, ts)
        roles = (
            (changes[0].was_champion, changes[0].was_challenger)
            if i == 0
            else (changes[i - 1].champion, changes[i - 1].challenger)
        )
        name = self.scorer.name
        if name in roles:
            return "champion" if roles[0] == name else "challenger"
        # a role the log names no model in then (before its first activation, where the
        # journal has no score of it) is read as held by the model that has it now: a score
        # journalled there is from before the log began (a models directory set up again)
        held = {"champion": roles[0], "challenger": roles[1]}.get(self.role, "")
        return self.role if held is None else ""

    def journalled(self, entry: JournalEntry, role: str) -> int:
        """The entry's journalled score of this model, which had ``role`` then (-1: none)."""
        if role == "champion":
            return entry.model_score
        return entry.challenger_score if role == "challenger" else -1

    def changes_in(self, since: float, until: float) -> list[Change]:
        """The changes inside the period (one at its start changes none of its requests)."""
        return [c for c in self.changes if since < c.at < until]


async def model_drift(
    store: CardStore,
    models_dir: str | Path,
    since: float,
    until: float,
    *,
    model: str = "",
    reference_period: tuple[float, float] | None = None,
    thresholds: Thresholds | None = None,
    segment: str = "",
) -> dict[str, Any]:
    """The drift report of [since, until) against the artifact's reference, or against the
    ``reference_period`` of the journal; with ``segment`` (a kind of ``models.segments``),
    each segment's too, against the same segment of the reference."""
    thresholds = thresholds or Thresholds()
    try:
        keyed = segment_of(segment) if segment else None
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    chosen = await _model(Registry(models_dir or "models"), model)
    cut = await journal_cut(store)
    notes = []
    if reference_period is not None:
        reference = await _period_reference(store, chosen, *reference_period, segment)
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
        if segment and segment not in reference.segments:
            raise InvalidRequest(
                f"model {chosen.scorer.name} keeps no reference by {segment} (trained before "
                "authhost kept them): give a reference period (--reference-day, or "
                "--reference-since and --reference-until; reference_day, reference_since "
                "and reference_until in the API), or retrain it"
            )
    tally = DriftTally(reference)
    segments = _SegmentTallies(reference.segments.get(segment, {})) if keyed else None
    replay = _PeriodReplay(chosen, since, until, keyed)
    async for matrix, scores, keys in replay.chunks(store):
        tally.add_rows(matrix)
        tally.add_scores(scores[scores >= 0])
        if segments is not None:
            segments.add(matrix, scores, keys)
    if not tally.rows:
        raise InvalidRequest(
            f"no requests the model scores from {iso_time(since)} to {iso_time(until)}"
            f"{replay.declined_note()}: nothing to measure drift on; choose a period with "
            "traffic"
        )
    report = {
        "since": iso_time(since),
        "until": iso_time(until),
        "model": chosen.scorer.name,
        "role": chosen.role or None,
        "feature_set": chosen.scorer.feature_set,
        "score_source": chosen.score_source,
        "declined_before_fraud_step": replay.declined_before,
        "score_other_model": replay.other_model,
        **drift_report(tally, thresholds),
        "notes": [
            note
            for note in (
                SHORT_PERIOD_NOTE if until - since < WEEK_S else "",
                few_rows_note(tally.rows) if tally.rows < FEW_ROWS else "",
                pruned_note(cut, since, until, "period"),
                *notes,
                *_change_notes(chosen, since, until, replay.other_model),
            )
            if note
        ],
    }
    if segments is not None:
        report["segment"] = segment
        report["segments"] = segments.report(tally.rows, reference, thresholds)
    return report


def _change_notes(chosen: Model, since: float, until: float, other: int) -> list[str]:
    """What the champion (and the challenger) changes of the period do to the score's PSI."""
    name, role = chosen.scorer.name, chosen.role
    notes = []
    for change in chosen.changes_in(since, until):
        for what, was, now in (
            ("champion", change.was_champion, change.champion),
            ("challenger", change.was_challenger, change.challenger),
        ):
            if was != now and (what == "champion" or name in (was, now)):
                notes.append(
                    f"the {what} changed at {iso_time(change.at)} ({was or 'none'} to "
                    f"{now or 'none'}, models {change.action}): a running server scored with "
                    "the new one from its next SIGHUP or restart"
                )
    if notes and role:
        notes.append(
            "the journal does not record which model scored a request, so the score's PSI is "
            f"over the requests journalled while {name} was the {role} by the registry's "
            f"change times; {other:,} journalled while another model was (or none) are left "
            "out of it, not of the features'"
        )
    elif notes:
        notes.append(f"{name}'s scores are replayed: the change does not mix them")
    if chosen.unlogged_history and role and not chosen.changes:
        notes.append(
            "the models registry has no times of its champion changes (made before authhost "
            "logged them, or by an older one): if the champion changed in the period, the "
            "score's PSI mixes two models' journalled scores"
        )
    return notes


async def _model(registry: Registry, name: str) -> Model:
    """The named artifact, or the active champion, with its role now and the registry's
    change log."""
    scorer = await named_or_champion(registry, name)
    try:
        state = await anyio.to_thread.run_sync(registry.state)
    except RegistryError as exc:
        raise InvalidRequest(str(exc)) from None
    changes = await anyio.to_thread.run_sync(registry.changes)
    role = {state.champion: "champion", state.challenger: "challenger"}.get(scorer.name, "")
    return Model(scorer, role, changes, bool(state.history))


async def _period_reference(
    store: CardStore, chosen: Model, since: float, until: float, segment: str = ""
) -> Reference:
    """The reference distributions of another period of the journal (its deciles), and of
    its segments of the kind ``segment`` when one is given."""
    replay = _PeriodReplay(chosen, since, until, segment_of(segment) if segment else None)
    matrices, scores, keys, rows = [], [], [], 0
    async for matrix, chunk_scores, chunk_keys in replay.chunks(store):
        matrices.append(matrix)
        scores.append(chunk_scores)
        keys.append(chunk_keys)
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
            unknown=MISSING_VALUES,
            segments={segment: np.concatenate(keys)} if segment else None,
        )
    except ReferenceError as exc:  # not expected: the matrix has rows and the model's width
        raise InvalidRequest(str(exc)) from None


class _SegmentTallies:
    """The period's rows counted by segment into each segment's reference bins (a segment
    the reference keeps none of is only counted)."""

    def __init__(self, references: dict[str, Reference]) -> None:
        self.references = references
        self.tallies: dict[str, DriftTally] = {}
        self.unreferenced: dict[str, list[int]] = {}  # segment -> [rows, score rows]

    def add(self, matrix: np.ndarray, scores: np.ndarray, keys: np.ndarray) -> None:
        for value in np.unique(keys):
            rows = keys == value
            scored = scores[rows & (scores >= 0)]
            reference = self.references.get(value)
            if reference is None:
                counts = self.unreferenced.setdefault(str(value), [0, 0])
                counts[0] += int(rows.sum())
                counts[1] += len(scored)
                continue
            tally = self.tallies.get(value)
            if tally is None:
                tally = self.tallies[value] = DriftTally(reference)
            tally.add_rows(matrix[rows])
            tally.add_scores(scored)

    def report(
        self, rows: int, reference: Reference, thresholds: Thresholds
    ) -> list[dict[str, Any]]:
        """Each segment of the period or of the reference, the most drifted first: its share
        of the requests in each, its features' and score's PSI against its reference, notes."""
        out = []
        for value, segment_reference in self.references.items():
            tally = self.tallies.get(value) or DriftTally(segment_reference)
            entry = {
                "segment": value,
                "share": round(tally.rows / rows, 4),
                "reference_share": round(segment_reference.rows / reference.rows, 4),
            }
            if tally.rows:
                measured = drift_report(tally, thresholds)
                for key in ("thresholds", "reference_source"):
                    del measured[key]
                notes = [few_rows_note(tally.rows) if tally.rows < FEW_ROWS else ""]
                if segment_reference.rows < FEW_ROWS:
                    notes.append(
                        f"its reference has only {segment_reference.rows:,} requests: its "
                        "deciles are rough, so read 'watch' and 'act' with care"
                    )
                out.append(entry | measured | {"notes": [n for n in notes if n]})
                continue
            out.append(entry | _unmeasured(0, 0, segment_reference.rows) | {
                "notes": ["no requests of this segment in the period"]
            })  # fmt: skip
        for value, (seen, scored) in self.unreferenced.items():
            out.append(
                {"segment": value, "share": round(seen / rows, 4), "reference_share": None}
                | _unmeasured(seen, scored, None)
                | {
                    "notes": [
                        f"no reference of this segment: fewer than {SEGMENT_ROWS_MIN} of its "
                        "requests in the reference (or none), so it is not measured; compare "
                        "with a reference period that has them (--reference-since)"
                    ]
                }
            )
        out.sort(key=lambda e: (-_largest_psi(e), -e["share"], e["segment"]))
        return out


def _unmeasured(rows: int, score_rows: int, reference_rows: int | None) -> dict[str, Any]:
    return {
        "rows": rows,
        "score_rows": score_rows,
        "reference_rows": reference_rows,
        "score": None,
        "summary": None,
        "features": [],
    }


def _largest_psi(entry: dict[str, Any]) -> float:
    """A segment's largest PSI, of a feature or the score (-1: not measured)."""
    psis = [f["psi"] for f in entry["features"]]
    if entry["score"] is not None:
        psis.append(entry["score"]["psi"])
    return max(psis, default=-1.0)


class _PeriodReplay:
    """One period's feature vectors and scores, replayed from the journal in chunks."""

    def __init__(
        self,
        chosen: Model,
        since: float,
        until: float,
        keyed: Callable[[Any], str] | None = None,
    ) -> None:
        self.chosen = chosen
        self.since, self.until = since, until
        self.keyed = keyed  # each request's segment (models.segments), when measured by one
        self.declined_before = 0  # never scored: a step before the fraud step declined them
        self.other_model = 0  # journalled while another model (or none) held the model's role

    def declined_note(self) -> str:
        n = self.declined_before
        return f" ({n} declined before the fraud step)" if n else ""

    async def chunks(
        self, store: CardStore
    ) -> AsyncIterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(feature matrix, scores, segments) chunks of the period's scored requests, in
        journal order: a score a row (-1: none), the journalled one while the model held the
        role whose score is journalled, or the model's own on the replayed features; and
        each row's segment (empty without a segment kind)."""
        scorer, chosen, keyed = self.chosen.scorer, self.chosen, self.keyed
        risk, blocks, units = scorer.terminal_risk, scorer.feature_blocks, scorer.amount_units
        replayed = chosen.score_source == REPLAYED
        replay = JournalReplay(self.since)
        rows: list[list[float]] = []
        scores: list[int] = []
        keys: list[str] = []
        query = JournalQuery(since=self.since - RETENTION_S, until=self.until)
        async for entry in store.export_journal(query):
            ctx = replay.step(entry.as_row())
            if ctx is None or entry.message_class not in SCORED_CLASSES:
                continue
            if entry_declined_before_fraud(entry) is not None:
                self.declined_before += 1
                continue
            rows.append(feature_values(ctx, risk, blocks, units))
            if keyed is not None:
                keys.append(keyed(ctx))
            if not replayed:
                role = chosen.role_at(entry.ts)
                self.other_model += not role
                scores.append(chosen.journalled(entry, role))
            if len(rows) >= CHUNK:
                yield self._chunk(rows, scores, keys, replayed)
                rows, scores, keys = [], [], []
        if rows:
            yield self._chunk(rows, scores, keys, replayed)

    def _chunk(
        self, rows: list[list[float]], scores: list[int], keys: list[str], replayed: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        matrix = np.array(rows, dtype=np.float64)
        segments = np.empty(len(keys), dtype=object)
        segments[:] = keys
        if replayed:
            return matrix, self.chosen.scorer.score_matrix(matrix), segments
        return matrix, np.array(scores, dtype=np.int64), segments
