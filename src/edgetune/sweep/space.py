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


def suggest(trial: optuna.Trial, sweep: SweepSpec) -> dict[str, Any]:
    """Sample every parameter of the sweep on `trial`; fixed ones are returned as they are."""
    values = dict(fixed_values(sweep))
    for name, spec in searched(sweep).items():
        dist = spec.distribution
        if dist == "categorical":
            values[name] = trial.suggest_categorical(name, spec.values)  # type: ignore[arg-type]
        elif dist == "int_uniform":
            values[name] = trial.suggest_int(name, int(spec.min), int(spec.max))  # type: ignore[arg-type]
        elif dist == "q_uniform":
            values[name] = trial.suggest_float(name, spec.min, spec.max, step=spec.q or 1.0)  # type: ignore[arg-type]
        elif dist == "log_uniform_values":
            values[name] = trial.suggest_float(name, spec.min, spec.max, log=True)  # type: ignore[arg-type]
        else:
            values[name] = trial.suggest_float(name, spec.min, spec.max)  # type: ignore[arg-type]
    return values


def grid_space(sweep: SweepSpec, source: str = "<sweep>") -> dict[str, list[Any]]:
    space: dict[str, list[Any]] = {}
    for name, spec in searched(sweep).items():
        dist = spec.distribution
        if dist == "categorical":
            space[name] = list(spec.values or [])
        elif dist == "int_uniform":
            space[name] = list(range(int(spec.min), int(spec.max) + 1))  # type: ignore[arg-type]
        elif dist == "q_uniform":
            q = spec.q or 1.0
            n = math.floor((spec.max - spec.min) / q + 1e-9) + 1  # type: ignore[operator]
            space[name] = [round(float(v), 12) for v in spec.min + q * np.arange(n)]  # type: ignore[operator]
        else:
            raise ConfigError(
                f"method 'grid' needs a finite set of values, but '{name}' is {dist}; "
                "use values, value, int_uniform or q_uniform, or method random/bayes",
                source=source, key=f"parameters.{name}",
            )
    size = math.prod(len(v) for v in space.values()) if space else 1
    if size > GRID_LIMIT:
        raise ConfigError(f"the grid has {size} points (limit {GRID_LIMIT}); narrow it or use bayes",
                          source=source, key="parameters")
    return space


def grid_size(sweep: SweepSpec) -> int:
    return math.prod(len(v) for v in grid_space(sweep).values()) if searched(sweep) else 1
