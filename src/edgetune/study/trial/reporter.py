"""Progress out of a study: the CLI draws it with rich, a notebook or a test may ignore it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

    from edgetune.study.planning.plan import Plan
    from edgetune.study.trial.candidate import CandidateResult


class Reporter:
    """Receives progress; every method may be left as it is (a silent run)."""

    def start(self, plan: Plan, done: int, total: int, baseline: dict[str, Any] | None) -> None: ...
    def stage(self, text: str) -> None: ...
    def trial_done(self, number: int, params: dict[str, Any], result: CandidateResult | None,
                   note: str | None, best: optuna.trial.FrozenTrial | None, counts: bool = True) -> None:
        """`counts`: the trial is one of those asked for (not a reference, not skipped on its prediction)."""
    def front(self, points: list[tuple[int, float, float]]) -> None:
        """The current accuracy/latency Pareto front: (trial, latency, top-1) by latency."""
    def step(self, label: str, done: int, total: int) -> None:
        """Long work after the search (a finalist's training): `done` of `total` steps."""
    def finish(self) -> None: ...
