"""The ask/tell loop every strategy shares: ask a trial (with the strategy's values enqueued
when it has chosen them), sample the rest from the sweep, evaluate, and let the evaluator tell."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna

from edgetune.search.base import SearchContext, Strategy, TrialOutcome
from edgetune.search.space.parameters import suggest

Evaluate = Callable[[optuna.Trial, dict[str, Any]], TrialOutcome]


def drive_study(study: optuna.Study, strategy: Strategy, ctx: SearchContext, evaluate: Evaluate,
                done: Callable[[], bool]) -> None:
    def run_trial(fixed: dict[str, Any] | None) -> TrialOutcome:
        if fixed is not None:
            study.enqueue_trial(fixed)
        trial = study.ask()
        return evaluate(trial, suggest(trial, ctx.sweep))

    strategy.drive(ctx, run_trial, done)
