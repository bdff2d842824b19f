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

The other side, when top-1 is only a constraint and not an objective (a latency-minimising search
with an accuracy floor): once the mirror-image lower bound is at or over the floor, the candidate
is feasible at the same confidence and more images would not change the decision, so scoring
stops there too; its top-1 is then the seen images' (recorded with `top1_images`), an estimate
the study only ever compares with the floor. Each check after a batch is one look at the data:
with L looks the chance that either rule decides wrongly is at most 2 L (1 - confidence) by the
union bound (0.6 % at 0.999 and three looks, 500-image batches of a 2,000-image subset).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from edgetune.metrics.objectives import Constraint


def top1_upper_bound(correct: int, seen: int, total: int, confidence: float) -> float:
    """The highest top-1 (%) over `total` images still plausible at `confidence`."""
    from scipy.stats import beta, norm  # a second of import, paid only by a study that rejects early

    p = 1.0 if correct >= seen else float(beta.ppf(confidence, correct + 1, seen - correct))
    rest = total - seen
    k = rest * p + float(norm.ppf(confidence)) * math.sqrt(rest * p * (1 - p))
    return 100.0 * (correct + min(rest, k)) / total


def top1_lower_bound(correct: int, seen: int, total: int, confidence: float) -> float:
    """The lowest top-1 (%) over `total` images still plausible at `confidence`."""
    from scipy.stats import beta, norm

    p = 0.0 if correct <= 0 else float(beta.ppf(1 - confidence, correct, seen - correct + 1))
    rest = total - seen
    k = rest * p - float(norm.ppf(confidence)) * math.sqrt(rest * p * (1 - p))
    return 100.0 * (correct + max(0.0, k)) / total


@dataclass(frozen=True)
class Rejection:
    """The floor a trial's top-1 must reach (the highest `min` of the top-1 constraints);
    `accepts`: whether scoring may also stop once the floor is surely reached (top-1 is not an
    objective, so its exact value decides nothing)."""

    floor: float
    total: int
    confidence: float
    accepts: bool = False

    def rejected(self, correct: int, seen: int) -> bool:
        return seen < self.total and top1_upper_bound(correct, seen, self.total, self.confidence) < self.floor

    def accepted(self, correct: int, seen: int) -> bool:
        return (self.accepts and seen < self.total
                and top1_lower_bound(correct, seen, self.total, self.confidence) >= self.floor)

    def stop(self, correct: int, seen: int) -> bool:
        return self.rejected(correct, seen) or self.accepted(correct, seen)

    def reason(self, correct: int, seen: int) -> str:
        if self.accepted(correct, seen):
            low = top1_lower_bound(correct, seen, self.total, self.confidence)
            return (f"accepted after {seen} of {self.total} validation images: top-1 at least {low:.2f} % at "
                    f"{self.confidence:.1%} confidence, clear of the floor {self.floor:.2f} %")
        bound = top1_upper_bound(correct, seen, self.total, self.confidence)
        return (f"rejected after {seen} of {self.total} validation images: top-1 at most {bound:.2f} % at "
                f"{self.confidence:.1%} confidence, under the floor {self.floor:.2f} %")


def rejection(constraints: list[Constraint], total: int, confidence: float | None,
              accepts: bool = False) -> Rejection | None:
    """The rule for a study's constraints, or None when nothing bounds top-1 from below."""
    floors = [c.min for c in constraints if c.metric == "top1" and c.min is not None]
    if confidence is None or not floors:
        return None
    return Rejection(max(floors), total, confidence, accepts)


StopRule = Callable[[int, int], bool]
