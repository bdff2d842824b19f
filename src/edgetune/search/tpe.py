"""Tree-structured Parzen estimators: cheap per suggestion, handles categorical choices."""

from __future__ import annotations

import optuna

from edgetune.search.base import SearchContext, Strategy


class Tpe(Strategy):
    name = "tpe"

    def sampler(self, ctx: SearchContext) -> optuna.samplers.BaseSampler:
        return optuna.samplers.TPESampler(seed=ctx.seed, multivariate=True)
