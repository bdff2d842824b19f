"""Fine-tuning spent where it pays: a candidate is promoted from rung 0 (its score once its norm
statistics are re-estimated, no training) to rung 1 (the search's fine-tuning) only when it
could still matter; the final stage, which trains the feasible front again, is the top rung.

Re-estimated scores rank candidates the way fine-tuned ones do (the report's Kendall tau says
how well, per study), so two kinds of candidate are not trained:
- dominated: a candidate already fine-tuned and feasible, at the same precision, is at least as
  fast and scored at least as well at rung 0; on the accuracy-latency front this one can only
  fall behind it;
- hopeless: the study has an accuracy floor, and the candidate's rung-0 score is more than
  `slack` points under the lowest rung-0 score of the fine-tuned candidates that reached the
  floor (at least two of them, so one lucky network does not set the bar).
Such a candidate is recorded complete, with its rung-0 figures as its own (deployed figures at
its precision), `rung` 0 and the reason; its latency is measured, so the sampler learns from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from edgetune.metrics.objectives import Constraint
from edgetune.metrics.record import Recorded
from edgetune.search.base import is_feasible

EVIDENCE = 2  # feasible fine-tuned candidates before the floor rule may hold one back


@dataclass(frozen=True)
class Rung0:
    study: optuna.Study
    constraints: Sequence[Constraint]
    precision: str
    slack: float

    def floor(self) -> float | None:
        floors = [c.min for c in self.constraints if c.metric == "top1" and c.min is not None]
        return max(floors) if floors else None

    def promoted_peers(self) -> list[optuna.trial.FrozenTrial]:
        """Candidates of this precision that were fine-tuned and came out feasible."""
        return [t for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if (r := Recorded.of(t)).rung == 1 and r.precision == self.precision
                and is_feasible(t) and r.value("top1_before_ft") is not None and r.latency_ratio is not None]

    def may_hold_back(self) -> bool:
        """Whether any candidate could be held back now: only once a peer was fine-tuned and came
        out feasible. Until then a candidate need not be timed before its fine-tuning."""
        return bool(self.promoted_peers())

    def held_back(self, metrics: dict[str, Any]) -> str | None:
        """Why the candidate (its rung-0 `metrics`: top1_before_ft, latency_ratio) is not worth
        fine-tuning, or None to promote it."""
        score, ratio = metrics.get("top1_before_ft"), metrics.get("latency_ratio")
        if score is None or ratio is None:
            return None
        peers = self.promoted_peers()
        for t in peers:
            peer_ratio, peer_score = Recorded.of(t).latency_ratio, Recorded.of(t).value("top1_before_ft")
            if peer_ratio <= ratio and peer_score >= score:  # type: ignore[operator]
                return (f"dominated at rung 0 by trial {t.number} (x{peer_ratio:.3f} latency, "
                        f"{peer_score:.2f} % before fine-tuning, feasible after it) against "
                        f"x{ratio:.3f} and {score:.2f} %")
        floor = self.floor()
        if floor is None or len(peers) < EVIDENCE:
            return None
        lowest = min(Recorded.of(t).value("top1_before_ft") for t in peers)
        if score < lowest - self.slack:
            return (f"{score:.2f} % before fine-tuning, more than {self.slack:g} points under the lowest "
                    f"({lowest:.2f} %) of the {len(peers)} fine-tuned candidates that reached the floor "
                    f"{floor:.2f} %")
        return None
