"""Turn a sweep's parameters into Optuna suggestions and a sweep's method into a sampler."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna

from edgetune.config.sweep import ParameterSpec, SweepSpec
from edgetune.errors import ConfigError

GRID_LIMIT = 10_000


def fixed_values(sweep: SweepSpec) -> dict[str, Any]:
    """Parameters that take one value: `value:` and one-element `values:` (the seed's figure 3.11).

    They are applied to every trial but not searched, so a single fixed choice does not turn a
    numeric space into a categorical one.
    """
    out: dict[str, Any] = {}
    for name, spec in sweep.parameters.items():
        if spec.distribution == "constant":
            out[name] = spec.value
        elif spec.distribution == "categorical" and len(spec.values or []) == 1:
            out[name] = spec.values[0]  # type: ignore[index]
    return out


def searched(sweep: SweepSpec) -> dict[str, ParameterSpec]:
    fixed = fixed_values(sweep)
    return {n: s for n, s in sweep.parameters.items() if n not in fixed}


def distribution(spec: ParameterSpec) -> optuna.distributions.BaseDistribution:
    """The one translation of a W&B distribution into Optuna's: every sampler, the grid and the
    predictor's random draws read a parameter through it."""
    dist = spec.distribution
    if dist == "categorical":
        return optuna.distributions.CategoricalDistribution(spec.values)  # type: ignore[arg-type]
    if dist == "int_uniform":
        return optuna.distributions.IntDistribution(int(spec.min), int(spec.max))  # type: ignore[arg-type]
    step = (spec.q or 1.0) if dist == "q_uniform" else None
    return optuna.distributions.FloatDistribution(spec.min, spec.max, log=dist == "log_uniform_values",  # type: ignore[arg-type]
                                                  step=step)


def suggest(trial: optuna.Trial, sweep: SweepSpec) -> dict[str, Any]:
    """Sample every parameter of the sweep on `trial`; fixed ones are returned as they are."""
    values = dict(fixed_values(sweep))
    for name, spec in searched(sweep).items():
        d = distribution(spec)
        if isinstance(d, optuna.distributions.CategoricalDistribution):
            values[name] = trial.suggest_categorical(name, d.choices)  # type: ignore[arg-type]
        elif isinstance(d, optuna.distributions.IntDistribution):
            values[name] = trial.suggest_int(name, d.low, d.high)
        else:
            values[name] = trial.suggest_float(name, d.low, d.high, step=d.step, log=d.log)
    return values


def grid_values(d: optuna.distributions.BaseDistribution) -> list[Any] | None:
    """Every value of a finite distribution (None for a continuous one)."""
    if isinstance(d, optuna.distributions.CategoricalDistribution):
        return list(d.choices)
    if isinstance(d, optuna.distributions.IntDistribution):
        return list(range(d.low, d.high + 1, d.step))
    if isinstance(d, optuna.distributions.FloatDistribution) and d.step is not None:
        n = math.floor((d.high - d.low) / d.step + 1e-9) + 1
        return [round(float(v), 12) for v in d.low + d.step * np.arange(n)]
    return None


def grid_space(sweep: SweepSpec, source: str = "<sweep>") -> dict[str, list[Any]]:
    space: dict[str, list[Any]] = {}
    for name, spec in searched(sweep).items():
        values = grid_values(distribution(spec))
        if values is None:
            raise ConfigError(
                f"method 'grid' needs a finite set of values, but '{name}' is {spec.distribution}; "
                "use values, value, int_uniform or q_uniform, or method random/bayes",
                source=source, key=f"parameters.{name}",
            )
        space[name] = values
    size = math.prod(len(v) for v in space.values()) if space else 1
    if size > GRID_LIMIT:
        raise ConfigError(f"the grid has {size} points (limit {GRID_LIMIT}); narrow it or use bayes",
                          source=source, key="parameters")
    return space


def grid_size(sweep: SweepSpec) -> int:
    return math.prod(len(v) for v in grid_space(sweep).values()) if searched(sweep) else 1
