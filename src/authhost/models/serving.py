"""What the auth pipeline's fraud step calls: the champion's score and the challenger's shadow
score of one transaction.

``ModelService`` satisfies ``auth.steps.fraud.ModelScorer`` (``champion_score(ctx)``,
``challenger_score(ctx)``); the fraud step holds the time budget (the challenger is scored
only while the champion left half of it, so shadow scoring cannot cost the decision).
``reload`` re-reads the registry's ``active`` file (SIGHUP / after ``authhost models
activate``) and swaps both scorers in one assignment.
"""

from __future__ import annotations

import logging
from pathlib import Path

from authhost.models.context import TxContext
from authhost.models.registry import Registry
from authhost.models.scorer import Scorer

log = logging.getLogger(__name__)


class ModelService:
    def __init__(
        self,
        champion: Scorer | None,
        challenger: Scorer | None = None,
        *,
        registry: Registry | None = None,
        explain_from: int = -1,
        action_threshold: int = 0,
    ) -> None:
        self._pair = (champion, challenger)
        self._registry = registry
        self._explain_from = explain_from
        self._action_threshold = action_threshold  # [models] threshold (0: none)

    @classmethod
    def from_dir(
        cls,
        models_dir: str | Path,
        explain_from: int = -1,
        action_threshold: int = 0,
    ) -> ModelService:
        """The active champion and challenger of a models directory (none active: no scores)."""
        registry = Registry(models_dir)
        champion, challenger = registry.load_active()
        return cls(
            champion,
            challenger,
            registry=registry,
            explain_from=explain_from,
            action_threshold=action_threshold,
        )

    @property
    def champion(self) -> Scorer | None:
        return self._pair[0]

    @property
    def challenger(self) -> Scorer | None:
        return self._pair[1]

    @property
    def active(self) -> bool:
        """A champion is loaded (with none, the fraud step skips building features)."""
        return self._pair[0] is not None

    def reads_acceptors(self) -> bool:
        """The champion or the challenger scores merchant and terminal counters (the second
        feature set): the store must count them for every request."""
        return any(s is not None and s.reads_acceptors for s in self._pair)

    def champion_score(self, ctx: TxContext) -> int | None:
        """The champion's score (0-999), None without one."""
        champion = self._pair[0]
        return None if champion is None else champion.score_one(ctx)

    def challenger_score(self, ctx: TxContext) -> int | None:
        """The challenger's score in shadow (0-999), None without one."""
        challenger = self._pair[1]
        return None if challenger is None else challenger.score_one(ctx)

    def score(self, ctx: TxContext) -> tuple[int | None, int | None]:
        """(champion score, challenger score), each 0-999 or None: both, whatever they take
        (for tools and benchmarks; the fraud step applies its time budget itself)."""
        return self.champion_score(ctx), self.challenger_score(ctx)

    def explain(self, ctx: TxContext, score: int) -> str:
        """The champion's top reasons for ``score`` ("feature=+0.00;..." in log-odds), when
        the score reaches ``explain_from`` (-1: the champion's operating threshold, or the
        server's ``[models] threshold`` where that is lower); "" below, so only the few
        requests an analyst looks at pay for it."""
        champion = self._pair[0]
        if champion is None:
            return ""
        cut = self._explain_from
        if cut < 0:
            cut = champion.threshold
            if self._action_threshold:
                cut = min(cut, self._action_threshold)
        if score < cut:
            return ""
        try:
            reasons = champion.explain(ctx)
        except Exception:  # an explanation never costs a decision
            log.exception("explaining the score of model %s failed", champion.name)
            return ""
        return ";".join(f"{name}={share:+.2f}" for name, share in reasons)

    def reload(self) -> None:
        """Re-read the registry. On a RegistryError the models loaded before keep serving."""
        if self._registry is not None:
            self._pair = self._registry.load_active()
