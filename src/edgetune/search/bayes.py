"""Gaussian-process Bayesian optimisation, the sweep file's `bayes`: Optuna's GP sampler over
numeric spaces (constrained and multi-objective), TPE once a categorical parameter appears."""

from __future__ import annotations

import optuna

from edgetune.search.base import SearchContext, Strategy
from edgetune.search.space.parameters import searched


class Bayes(Strategy):
    name = "bayes"

    def sampler(self, ctx: SearchContext) -> optuna.samplers.BaseSampler:
        space = searched(ctx.sweep)
        if any(s.distribution == "categorical" for s in space.values()):
            return optuna.samplers.TPESampler(seed=ctx.seed, multivariate=True)
        # A handful of random trials first: the GP needs points before its acquisition is useful.
        return optuna.samplers.GPSampler(seed=ctx.seed, n_startup_trials=min(10, max(3, len(space) + 1)))
