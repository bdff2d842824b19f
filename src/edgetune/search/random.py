"""Uniform random search: the baseline every smarter strategy must beat."""

from __future__ import annotations

import optuna

from edgetune.search.base import SearchContext, Strategy


class Random(Strategy):
    name = "random"

    def sampler(self, ctx: SearchContext) -> optuna.samplers.BaseSampler:
        return optuna.samplers.RandomSampler(seed=ctx.seed)
