"""Turn a sweep's parameters into Optuna suggestions and a sweep's method into a sampler."""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np
import optuna

from edgetune.config.sweep import BETA, NORMAL, QUANTISED, ParameterSpec, SweepSpec
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


# The W&B distributions with no bounded Optuna counterpart (normal, log-normal, beta, and a
# categorical with probabilities) are searched over their quantile u in (0, 1), and the value is
# the distribution's inverse CDF at u: a uniform u draws from the distribution exactly, and a
# Bayesian sampler works in the space W&B's own Bayesian search normalises to (its CDF).
QUANTILE_EDGE = 1e-6
BY_QUANTILE = (*NORMAL, *BETA, "categorical_w_probabilities")


def distribution(spec: ParameterSpec) -> optuna.distributions.BaseDistribution:
    """The one translation of a W&B distribution into what Optuna searches: every sampler, the
    grid and the predictor's random draws read a parameter through it (and `applied` turns a
    searched value into the one the candidate gets)."""
    dist = spec.distribution
    if dist == "categorical":
        return optuna.distributions.CategoricalDistribution(spec.values)  # type: ignore[arg-type]
    if dist == "int_uniform":
        return optuna.distributions.IntDistribution(int(spec.min), int(spec.max))  # type: ignore[arg-type]
    if dist in BY_QUANTILE:
        return optuna.distributions.FloatDistribution(QUANTILE_EDGE, 1 - QUANTILE_EDGE)
    if dist == "q_uniform":
        return optuna.distributions.FloatDistribution(spec.min, spec.max, step=spec.q or 1.0)  # type: ignore[arg-type]
    low, high = float(spec.min), float(spec.max)  # type: ignore[arg-type]
    if dist in ("log_uniform", "q_log_uniform"):  # natural-log bounds: X = exp(U(min, max))
        low, high = math.exp(low), math.exp(high)
    elif dist == "inv_log_uniform":  # log(1/X) ~ U(min, max): X log-uniform on [e^-max, e^-min]
        low, high = math.exp(-high), math.exp(-low)
    # inv_log_uniform_values is log-uniform on [min, max]: log(1/X) uniform on [log(1/max), log(1/min)]
    return optuna.distributions.FloatDistribution(low, high, log=dist != "uniform")


def applied(spec: ParameterSpec, searched_value: Any) -> Any:
    """The value a candidate gets for what the sampler chose: the inverse CDF of a quantile, then
    W&B's rounding `round(X / q) * q` (an int when q is)."""
    dist = spec.distribution or ""
    value = searched_value
    if dist == "categorical_w_probabilities":
        edges = np.cumsum(spec.probabilities)  # type: ignore[arg-type]
        return spec.values[min(int(np.searchsorted(edges, value, side="right")), len(edges) - 1)]  # type: ignore[index]
    if dist in NORMAL:
        value = NormalDist(spec.mu if spec.mu is not None else 0.0,
                           spec.sigma if spec.sigma is not None else 1.0).inv_cdf(value)
        value = math.exp(value) if "log" in dist else value
    elif dist in BETA:
        from scipy.stats import beta

        value = float(beta.ppf(value, spec.a if spec.a is not None else 1.0, spec.b if spec.b is not None else 1.0))
    if dist in QUANTISED and dist != "q_uniform":  # q_uniform is Optuna's stepped float already
        q = spec.q if spec.q is not None else 1
        value = round(value / q) * q
        return int(value) if isinstance(q, int) else float(value)
    return value


def applied_values(sweep: SweepSpec, values: dict[str, Any]) -> dict[str, Any]:
    """`applied` over a set of searched values (fixed ones pass as they are)."""
    return {k: applied(sweep.parameters[k], v) if k in sweep.parameters else v for k, v in values.items()}


def suggest(trial: optuna.Trial, sweep: SweepSpec) -> dict[str, Any]:
    """Sample every parameter of the sweep on `trial`; fixed ones are returned as they are. A
    value transformed on its way to the candidate is kept beside the sampler's (`applied_params`)."""
    values = dict(fixed_values(sweep))
    raw: dict[str, Any] = {}
    for name, spec in searched(sweep).items():
        d = distribution(spec)
        if isinstance(d, optuna.distributions.CategoricalDistribution):
            raw[name] = trial.suggest_categorical(name, d.choices)  # type: ignore[arg-type]
        elif isinstance(d, optuna.distributions.IntDistribution):
            raw[name] = trial.suggest_int(name, d.low, d.high)
        else:
            raw[name] = trial.suggest_float(name, d.low, d.high, step=d.step, log=d.log)
        values[name] = applied(spec, raw[name])
    changed = {k: values[k] for k in raw if values[k] != raw[k]}
    if changed:
        trial.set_user_attr("applied_params", changed)
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
