"""The W&B sweep file as a strict pydantic schema, read without a W&B account.

The seed drove its search with W&B sweeps; users keep those files, so edgetune reads them
as they are (`program` and W&B's bookkeeping keys are accepted and ignored) and runs the
search on Optuna locally.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edgetune.errors import ConfigError

Distribution = Literal[
    "constant", "categorical", "uniform", "int_uniform", "q_uniform", "log_uniform_values",
]
DISTRIBUTIONS: tuple[str, ...] = Distribution.__args__  # type: ignore[attr-defined]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetricSpec(_Strict):
    name: str
    goal: Literal["minimize", "maximize"] = "minimize"


class ParameterSpec(_Strict):
    """One searched parameter; W&B infers the distribution when it is not named."""

    value: Any = None
    values: list[Any] | None = Field(default=None, min_length=1)
    # int | float keeps YAML's `35` apart from `35.0`: W&B infers int_uniform only from ints.
    min: int | float | None = None
    max: int | float | None = None
    q: float | None = Field(default=None, gt=0)
    distribution: Distribution | None = None

    @model_validator(mode="after")
    def _infer_and_check(self) -> ParameterSpec:
        if self.distribution is None:
            if self.value is not None:
                self.distribution = "constant"
            elif self.values is not None:
                self.distribution = "categorical"
            elif self.min is not None and self.max is not None:
                both_int = _is_int(self.min) and _is_int(self.max)
                self.distribution = "int_uniform" if both_int else "uniform"
            else:
                raise ValueError("give `value`, `values`, or `min` and `max`")
        dist = self.distribution
        if dist == "constant" and self.value is None:
            raise ValueError("distribution 'constant' needs `value`")
        if dist == "categorical" and not self.values:
            raise ValueError("distribution 'categorical' needs `values`")
        if dist in ("uniform", "int_uniform", "q_uniform", "log_uniform_values"):
            if self.min is None or self.max is None:
                raise ValueError(f"distribution '{dist}' needs `min` and `max`")
            if self.min > self.max:
                raise ValueError(f"`min` ({self.min}) is above `max` ({self.max})")
            if dist == "log_uniform_values" and self.min <= 0:
                raise ValueError(f"log_uniform_values needs `min` > 0, got {self.min}")
            if dist == "int_uniform" and not all(float(x).is_integer() for x in (self.min, self.max)):
                raise ValueError("int_uniform needs whole-number `min` and `max`")
        return self


def _is_int(x: float) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


class SweepSpec(_Strict):
    # Read from W&B files and ignored: edgetune runs its own pipeline locally.
    program: str | None = None
    command: list[Any] | None = None
    name: str | None = None
    description: str | None = None
    project: str | None = None
    entity: str | None = None

    method: Literal["grid", "random", "bayes"] = "bayes"
    metric: MetricSpec = Field(default_factory=lambda: MetricSpec(name="latency_ms"))
    parameters: dict[str, ParameterSpec] = Field(default_factory=dict)
    run_cap: int | None = Field(default=None, gt=0)


def parse_sweep(raw: Any, source: str = "<sweep>") -> SweepSpec:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"a sweep must be a mapping, got {type(raw).__name__}", source=source)
    try:
        return SweepSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        msg = first["msg"].removeprefix("Value error, ")
        got = first.get("input")
        detail = "" if isinstance(got, dict) else f" (got {got!r})"
        raise ConfigError(f"{msg}{detail}", source=source, key=key) from None


def load_sweep(path: str | Path) -> SweepSpec:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read sweep: {exc.strerror}", source=str(path)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", source=str(path)) from None
    return parse_sweep(raw, str(path))
