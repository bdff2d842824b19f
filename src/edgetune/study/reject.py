"""Stop scoring a candidate as soon as its top-1 can no longer reach the study's accuracy floor.

The validation images are scored batch by batch. After `seen` of `total` images with `correct`
right, the top-1 over all of them is at most (correct + K) / total, where K counts the right
answers among the images not yet scored. K is bounded at the stated confidence in two steps: the
unseen images' accuracy p by the one-sided Clopper-Pearson bound from the seen ones (they are
the same fixed random subset, in no particular order), then K's own spread around (total - seen)
p by a normal term. When even that bound is under the floor, the remaining images cannot save
the candidate: it is recorded as rejected with the figures of the images seen, its latency is
still measured (so every sampler learns from a complete, infeasible trial), and the study saves
the rest of the scoring.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from scipy.stats import beta, norm

from edgetune.objectives import Constraint


def top1_upper_bound(correct: int, seen: int, total: int, confidence: float) -> float:
    """The highest top-1 (%) over `total` images still plausible at `confidence`."""
    p = 1.0 if correct >= seen else float(beta.ppf(confidence, correct + 1, seen - correct))
    rest = total - seen
    k = rest * p + float(norm.ppf(confidence)) * math.sqrt(rest * p * (1 - p))
    return 100.0 * (correct + min(rest, k)) / total


@dataclass(frozen=True)
class Rejection:
    """The floor a trial's top-1 must reach (the highest `min` of the top-1 constraints)."""

    floor: float
    total: int
    confidence: float

    def stop(self, correct: int, seen: int) -> bool:
        return seen < self.total and top1_upper_bound(correct, seen, self.total, self.confidence) < self.floor

    def reason(self, correct: int, seen: int) -> str:
        bound = top1_upper_bound(correct, seen, self.total, self.confidence)
        return (f"rejected after {seen} of {self.total} validation images: top-1 at most {bound:.2f} % at "
                f"{self.confidence:.1%} confidence, under the floor {self.floor:.2f} %")


def rejection(constraints: list[Constraint], total: int, confidence: float | None) -> Rejection | None:
    """The rule for a study's constraints, or None when nothing bounds top-1 from below."""
    floors = [c.min for c in constraints if c.metric == "top1" and c.min is not None]
    if confidence is None or not floors:
        return None
    return Rejection(max(floors), total, confidence)


StopRule = Callable[[int, int], bool]
