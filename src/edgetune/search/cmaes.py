"""CMA-ES over the numeric parameters: an evolution strategy for one objective.

Optuna's CMA-ES does not steer by constraints (it warns once when they are set); edgetune still
records every verdict, so an infeasible trial is never reported as best."""

from __future__ import annotations

import optuna

from edgetune.search.base import SearchContext, Strategy


class CmaEs(Strategy):
    name = "cmaes"
    multi_objective = False

    def sampler(self, ctx: SearchContext) -> optuna.samplers.BaseSampler:
        # Categorical parameters fall back to random sampling inside Optuna's CMA-ES sampler.
        return optuna.samplers.CmaEsSampler(seed=ctx.seed, warn_independent_sampling=False,
                                            independent_sampler=optuna.samplers.RandomSampler(seed=ctx.seed))
