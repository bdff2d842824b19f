"""NSGA-II: the evolutionary multi-objective search, with Optuna's constraint handling."""

from __future__ import annotations

import optuna

from edgetune.search.base import SearchContext, Strategy


class Nsga2(Strategy):
    name = "nsga2"

    def sampler(self, ctx: SearchContext) -> optuna.samplers.BaseSampler:
        population = max(4, min(50, (ctx.sweep.trials or 50) // 5))
        return optuna.samplers.NSGAIISampler(seed=ctx.seed, population_size=population)
