"""Every combination of a finite space, in a seeded order."""

from __future__ import annotations

import optuna

from edgetune.search.base import SearchContext, Strategy
from edgetune.search.space.parameters import grid_space


class _AskTellGrid(optuna.samplers.GridSampler):
    """Optuna's grid sampler calls `study.stop()` once the grid is used up, which only works
    inside `study.optimize`; edgetune's loop asks and tells, and stops at the grid's size."""

    def after_trial(self, study, trial, state, values) -> None:
        return None


class Grid(Strategy):
    name = "grid"

    def sampler(self, ctx: SearchContext) -> optuna.samplers.BaseSampler:
        return _AskTellGrid(grid_space(ctx.sweep, ctx.source), seed=ctx.seed)
