"""The W&B sweep file as a strict pydantic schema, read without a W&B account.

The seed drove its search with W&B sweeps; users keep those files, so edgetune reads them
as they are (`program` and W&B's bookkeeping keys are accepted and ignored) and runs the
search on Optuna locally.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from edgetune.catalog import SEARCH_STRATEGIES
from edgetune.config.base import Strict, validate
from edgetune.files import read_yaml

Distribution = Literal[
    "constant", "categorical", "uniform", "int_uniform", "q_uniform", "log_uniform_values",
]
DISTRIBUTIONS: tuple[str, ...] = Distribution.__args__  # type: ignore[attr-defined]


# The search methods the registry serves, so the schema cannot accept one it cannot run.
Method = Literal[tuple(SEARCH_STRATEGIES)]  # type: ignore[valid-type]


class MetricSpec(Strict):
    name: str
    goal: Literal["minimize", "maximize"] = "minimize"


class ParameterSpec(Strict):
    """One searched parameter; W&B infers the distribution when it is not named."""

    value: Any = None
    values: list[Any] | None = Field(default=None, min_length=1)
    # int | float keeps YAML's `35` apart from `35.0`: W&B infers int_uniform only from ints.
    min: int | float | None = None
    max: int | float | None = None
    q: float | None = Field(default=None, gt=0)
    distribution: Distribution | None = None
    # On a pruner's `width`: the widths the device's measured staircase says run fast (between
    # `min` and `max` when given), filled in when the study starts (edgetune profile-widths).
    widths: Literal["measured"] | None = None

    @model_validator(mode="after")
    def _infer_and_check(self) -> ParameterSpec:
        if self.widths is not None:
            if self.values is not None or self.value is not None or self.distribution not in (None, "categorical"):
                raise ValueError("`widths: measured` makes the values; give `min`/`max` to bound them, not "
                                 "`values`, `value` or a distribution")
            return self
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


class ObjectiveSpec(Strict):
    metric: str
    goal: Literal["minimize", "maximize"] = "minimize"


class ConstraintSpec(Strict):
    """A hard limit: a trial outside it is infeasible, recorded with the reason, never best."""

    metric: str
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounded(self) -> ConstraintSpec:
        if self.min is None and self.max is None:
            raise ValueError("a constraint needs `min`, `max` or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"`min` ({self.min}) is above `max` ({self.max})")
        return self


class PredictorSpec(Strict):
    """Acting on the latency the width profile predicts before a candidate is built."""

    # Skip the export, timing and fine-tuning of a candidate predicted to break a latency
    # constraint's `max` by more than this fraction. `auto`: 10 % until five measured trials
    # carry the predictor's error, then 1.5x the largest error seen (at least 2 %). null:
    # measure every candidate.
    skip_margin: float | Literal["auto"] | None = Field("auto")
    # Start the search with this many candidates from the predicted front (fastest predicted
    # latency against least pruning), within the latency constraint when there is one.
    warm_start: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _margin(self) -> PredictorSpec:
        if isinstance(self.skip_margin, float | int) and self.skip_margin < 0:
            raise ValueError(f"skip_margin must be 'auto', null or a fraction >= 0, got {self.skip_margin}")
        return self
    # Random candidates the warm start predicts to find that front.
    candidates: int = Field(2000, ge=10, le=1_000_000)


class EarlyStopSpec(Strict):
    method: Literal["median", "hyperband", "none"] = "none"
    # Stop a fine-tune whose accuracy sits at chance (100 / classes, plus this margin): the first
    # seed saw such networks never recover.
    collapse: bool = True
    collapse_margin: float = Field(2.0, ge=0)
    warmup_epochs: int = Field(2, ge=0)  # epochs before collapse or a pruner may stop a run


class ProtocolSpec(Strict):
    """The second seed's protocols. accuracy-guaranteed: minimise resources while top-1 stays
    within `max_accuracy_drop` of the baseline; resource-constrained: maximise top-1 within
    the constraints' budget."""

    name: Literal["accuracy-guaranteed", "resource-constrained"]
    max_accuracy_drop: float = Field(1.0, ge=0)
    # Reward weights of the fractional improvements (accuracy-guaranteed, RL).
    weights: dict[Literal["latency", "size", "macs"], float] = Field(
        default_factory=lambda: {"latency": 1.0, "size": 0.0, "macs": 0.0})


class PerLayerSpec(Strict):
    min: float = Field(0.0, ge=0, lt=1)
    max: float = Field(0.8, ge=0, lt=1)


class RLSpec(Strict):
    """DDPG as in AMC and the second seed: actor 400-300, critic 400-300, lr 1e-4 / 1e-3."""

    warmup_episodes: int = Field(10, ge=1)
    actor_lr: float = Field(1e-4, gt=0)
    critic_lr: float = Field(1e-3, gt=0)
    hidden: list[int] = Field(default_factory=lambda: [400, 300])
    noise_sigma: float = Field(0.5, ge=0)
    noise_decay: float = Field(0.95, gt=0, le=1)
    batch_size: int = Field(64, gt=0)
    tau: float = Field(0.01, gt=0, le=1)
    # Gradient steps after each episode: a trial costs seconds to hours, an update microseconds.
    updates_per_episode: int = Field(50, gt=0)


class SweepSpec(Strict):
    # Read from W&B files and ignored: edgetune runs its own pipeline locally.
    program: str | None = None
    command: list[Any] | None = None
    name: str | None = None
    description: str | None = None
    project: str | None = None
    entity: str | None = None

    method: Method = "bayes"
    metric: MetricSpec = Field(default_factory=lambda: MetricSpec(name="latency_ms"))
    parameters: dict[str, ParameterSpec] = Field(default_factory=dict)
    run_cap: int | None = Field(default=None, gt=0)

    # edgetune's extensions of the W&B format.
    objectives: list[ObjectiveSpec] | None = Field(default=None, min_length=1)
    constraints: list[ConstraintSpec] = Field(default_factory=list)
    protocol: ProtocolSpec | None = None
    early_stop: EarlyStopSpec = Field(default_factory=EarlyStopSpec)
    predictor: PredictorSpec = Field(default_factory=PredictorSpec)
    # Measured beside the search like any trial: `baseline` (the unpruned network), a schedule
    # file (a hand-tuned recipe), or a checkpoint (.pt, e.g. the smaller sibling of the family,
    # measured as it is unless `reference_finetune`).
    enqueue: list[str] = Field(default_factory=list)
    reference_finetune: bool = False
    reference_repeats: int = Field(1, gt=0)
    space: Literal["grouped", "per-layer"] = "grouped"
    per_layer: PerLayerSpec = Field(default_factory=PerLayerSpec)
    rl: RLSpec = Field(default_factory=RLSpec)
    trials: int | None = Field(default=None, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _protocol_shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("protocol"), str):
            data = {**data, "protocol": {"name": data["protocol"]}}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> SweepSpec:
        if self.objectives is not None and "metric" in self.model_fields_set:
            names = [o.metric.lower() for o in self.objectives]
            if self.metric.name.lower() not in names:
                raise ValueError(f"`metric` ({self.metric.name}) is not among `objectives` ({', '.join(names)}); "
                                 "give one of them, or drop `metric`")
        many = len(self.objective_list()) > 1
        if many and self.method == "cmaes":
            raise ValueError("method 'cmaes' optimises one objective; use nsga2, tpe or bayes for several")
        if many and self.early_stop.method != "none":
            raise ValueError(f"early_stop '{self.early_stop.method}' needs a single objective (Optuna's pruners "
                             "compare one curve); use collapse detection alone with several objectives")
        if self.method == "rl" and many:
            raise ValueError("method 'rl' optimises the protocol's reward, one number; give one objective")
        if self.protocol is not None and self.protocol.name == "resource-constrained" and not any(
                c.max is not None and c.metric.lower() not in ("top1", "top5", "accuracy") for c in self.constraints):
            raise ValueError("protocol 'resource-constrained' needs a budget: a constraint with `max` on a "
                                 "resource metric, e.g. {metric: latency_ms, max: 1.2}")
        return self

    def objective_list(self) -> list[ObjectiveSpec]:
        if self.objectives is not None:
            return self.objectives
        if self.protocol is not None and "metric" not in self.model_fields_set:
            if self.protocol.name == "resource-constrained":
                return [ObjectiveSpec(metric="top1", goal="maximize")]
            return [ObjectiveSpec(metric="latency", goal="minimize")]
        return [ObjectiveSpec(metric=self.metric.name, goal=self.metric.goal)]


def parse_sweep(raw: Any, source: str = "<sweep>") -> SweepSpec:
    return validate(SweepSpec, raw, source, "a sweep")


def load_sweep(path: str | Path) -> SweepSpec:
    return parse_sweep(read_yaml(path, "sweep"), str(path))
