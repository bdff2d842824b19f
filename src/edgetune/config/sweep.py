"""The W&B sweep file as a strict pydantic schema, read without a W&B account.

The seed drove its search with W&B sweeps; users keep those files, so edgetune reads them
as they are (`program` and W&B's bookkeeping keys are accepted and ignored) and runs the
search on Optuna locally.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from edgetune.catalog import SEARCH_STRATEGIES, names_where, strategy_traits
from edgetune.config.architecture import DescribedCheckpoint
from edgetune.config.base import Strict, validate
from edgetune.errors import closest
from edgetune.files import read_yaml

Distribution = Literal[
    "constant", "categorical", "categorical_w_probabilities", "uniform", "int_uniform", "q_uniform",
    "log_uniform", "log_uniform_values", "q_log_uniform", "q_log_uniform_values", "inv_log_uniform",
    "inv_log_uniform_values", "normal", "q_normal", "log_normal", "q_log_normal", "beta", "q_beta",
]
DISTRIBUTIONS: tuple[str, ...] = Distribution.__args__  # type: ignore[attr-defined]
# W&B's schema (wandb/sweeps, config/schema.json) allows each distribution these keys and no
# others; a key it would reject is refused here, not ignored.
BOUNDED = ("uniform", "int_uniform", "q_uniform", "log_uniform", "log_uniform_values", "q_log_uniform",
           "q_log_uniform_values", "inv_log_uniform", "inv_log_uniform_values")
POSITIVE_BOUNDS = ("log_uniform_values", "q_log_uniform_values", "inv_log_uniform_values")
NORMAL = ("normal", "q_normal", "log_normal", "q_log_normal")
BETA = ("beta", "q_beta")
QUANTISED = ("q_uniform", "q_log_uniform", "q_log_uniform_values", "q_normal", "q_log_normal", "q_beta")
KEYS: dict[str, tuple[str, ...]] = {
    "constant": ("value",), "categorical": ("values",), "categorical_w_probabilities": ("values", "probabilities"),
    **{d: ("min", "max", *(("q",) if d in QUANTISED else ())) for d in BOUNDED},
    **{d: ("mu", "sigma", *(("q",) if d in QUANTISED else ())) for d in NORMAL},
    **{d: ("a", "b", *(("q",) if d in QUANTISED else ())) for d in BETA},
}


def _registered_strategy(name: str) -> str:
    """The schema accepts exactly the search methods the registry serves (read when a file is
    checked, so one registered at run time counts)."""
    if name not in SEARCH_STRATEGIES:
        raise ValueError(f"unknown search method '{name}'; did you mean {', '.join(closest(name, SEARCH_STRATEGIES))}? "
                         f"available: {', '.join(SEARCH_STRATEGIES)}")
    return name


Method = Annotated[str, AfterValidator(_registered_strategy)]


class MetricSpec(Strict):
    name: str
    goal: Literal["minimize", "maximize"] = "minimize"
    # W&B: no new trials once a trial reaches this value (by `goal`).
    target: float | None = None
    # W&B: the value the Bayesian model is given for a failed run. edgetune's samplers never
    # learn from a failed candidate and rank an infeasible one below every feasible one: W&B's
    # default `worst`; `best` or `latest` would make a crash look good, and are refused.
    impute: Literal["worst"] | None = None
    impute_while_running: Literal["false"] | bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _impute_said_plainly(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("impute") in ("best", "latest"):
            raise ValueError(f"impute: {data['impute']!r} gives a failed candidate a value it did not earn; edgetune's "
                             "samplers leave failures out and rank infeasible trials last (W&B's 'worst')")
        if isinstance(data, dict) and data.get("impute_while_running") not in (None, False, "false"):
            raise ValueError("impute_while_running: edgetune's samplers see a trial once it has finished; "
                             "only 'false' applies")
        return data


class ParameterSpec(Strict):
    """One searched parameter, with W&B's distributions and their semantics (docs/compatibility.md);
    W&B infers the distribution when it is not named."""

    value: Any = None
    values: list[Any] | None = Field(default=None, min_length=1)
    probabilities: list[float] | None = Field(default=None, min_length=1)
    # int | float keeps YAML's `35` apart from `35.0`: W&B infers int_uniform only from ints.
    min: int | float | None = None
    max: int | float | None = None
    q: int | float | None = Field(default=None, gt=0)
    mu: float | None = None
    sigma: float | None = Field(default=None, ge=0)
    a: float | None = Field(default=None, ge=0)
    b: float | None = Field(default=None, ge=0)
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
            self.distribution = self._inferred()
        dist = self.distribution
        given = sorted(k for k in self.model_fields_set if k not in ("distribution", "widths"))
        extra = [k for k in given if k not in KEYS[dist]]
        if extra:
            raise ValueError(f"distribution '{dist}' takes {', '.join(KEYS[dist])}, not {', '.join(extra)} "
                             "(W&B's schema refuses the same)")
        if dist == "constant" and "value" not in self.model_fields_set:
            raise ValueError("distribution 'constant' needs `value`")
        if dist.startswith("categorical") and not self.values:
            raise ValueError(f"distribution '{dist}' needs `values`")
        if dist == "categorical_w_probabilities":
            self._check_probabilities()
        if dist in BOUNDED:
            self._check_bounds(dist)
        return self

    def _inferred(self) -> Distribution:
        if "value" in self.model_fields_set:
            return "constant"
        if self.values is not None:
            return "categorical_w_probabilities" if self.probabilities is not None else "categorical"
        if self.min is not None and self.max is not None:
            return "int_uniform" if _is_int(self.min) and _is_int(self.max) else "uniform"
        raise ValueError("give `value`, `values`, or `min` and `max` (or name a distribution)")

    def _check_probabilities(self) -> None:
        p = self.probabilities or []
        if len(p) != len(self.values or []):
            raise ValueError(f"`probabilities` has {len(p)} entries for {len(self.values or [])} `values`")
        if any(x < 0 for x in p) or abs(sum(p) - 1.0) > 1e-6:
            raise ValueError(f"`probabilities` must be at least 0 and add up to 1, got {p} (sum {sum(p):g})")

    def _check_bounds(self, dist: str) -> None:
        if self.min is None or self.max is None:
            raise ValueError(f"distribution '{dist}' needs `min` and `max`")
        if self.min > self.max:
            raise ValueError(f"`min` ({self.min}) is above `max` ({self.max})")
        if dist in POSITIVE_BOUNDS and self.min <= 0:
            raise ValueError(f"{dist} needs `min` > 0 (its bounds are values; {dist.removesuffix('_values')} takes "
                             f"natural-log bounds), got {self.min}")
        if dist == "int_uniform" and not all(float(x).is_integer() for x in (self.min, self.max)):
            raise ValueError("int_uniform needs whole-number `min` and `max`")


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
    # Stop scoring a candidate once its top-1 cannot reach a top-1 constraint's `min` at this
    # confidence (study/trial/reject.py); null scores every validation image.
    reject_confidence: float | None = Field(0.999, gt=0.5, lt=1)
    # Rung 0 before the fine-tuning rung (study/trial/rungs.py): `front` trains a candidate only when no
    # fine-tuned, feasible candidate at least as fast scored as well after re-estimating norm
    # statistics, and (with an accuracy floor) when it is within `promote_slack` points of the
    # lowest such score that reached the floor; `all` trains every candidate.
    promote: Literal["front", "all"] = "front"
    promote_slack: float = Field(2.0, ge=0)


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


class HyperbandSpec(Strict):
    """W&B's `early_terminate`, run as Optuna's HyperbandPruner over fine-tuning epochs (W&B
    counts logged iterations; a trial here logs its accuracy once an epoch)."""

    type: Literal["hyperband"]
    min_iter: int | None = Field(None, ge=1)
    max_iter: int | None = Field(None, ge=1)
    s: float | None = Field(None, gt=0)
    eta: float = Field(3.0, gt=1)
    strict: bool = True

    @model_validator(mode="after")
    def _bracketed(self) -> HyperbandSpec:
        if self.min_iter is None and (self.max_iter is None or self.s is None):
            raise ValueError("hyperband needs `min_iter`, or `max_iter` and `s` (as W&B's schema does)")
        if not float(self.eta).is_integer():
            raise ValueError(f"eta {self.eta}: Optuna's HyperbandPruner keeps the top 1/eta with a whole eta; give 2, 3, ...")
        return self

    def resources(self, epochs: int) -> tuple[int, int]:
        """(min_resource, max_resource) in epochs: `max_iter` over `eta`**`s` when no `min_iter`."""
        top = self.max_iter or max(epochs, 1)
        low = self.min_iter if self.min_iter is not None else math.ceil(top / self.eta ** float(self.s or 0))
        return max(1, min(low, top)), top


# W&B's keys that describe where a sweep runs, not what it searches: accepted, named as unused.
UNUSED_WANDB_KEYS = ("program", "command", "name", "description", "project", "entity", "apiVersion", "kind",
                     "controller", "job", "image_uri")


class SweepSpec(Strict):
    # Read from W&B files and named as unused: edgetune runs its own pipeline locally.
    program: str | None = None
    command: list[Any] | None = None
    name: str | None = None
    description: str | None = None
    project: str | None = None
    entity: str | None = None
    apiVersion: str | None = None  # W&B's spelling
    kind: Literal["sweep"] | None = None
    controller: dict[str, Any] | None = None
    job: str | None = None
    image_uri: str | None = None

    method: Method = "bayes"
    metric: MetricSpec = Field(default_factory=lambda: MetricSpec(name="latency_ms"))
    # Nested W&B parameters ({parameters: {...}} under a name) arrive as dotted names.
    parameters: dict[str, ParameterSpec] = Field(default_factory=dict)
    run_cap: int | None = Field(default=None, gt=0)  # the most trials, as in W&B
    early_terminate: HyperbandSpec | None = None

    # edgetune's extensions of the W&B format.
    objectives: list[ObjectiveSpec] | None = Field(default=None, min_length=1)
    constraints: list[ConstraintSpec] = Field(default_factory=list)
    protocol: ProtocolSpec | None = None
    early_stop: EarlyStopSpec = Field(default_factory=EarlyStopSpec)
    predictor: PredictorSpec = Field(default_factory=PredictorSpec)
    # Measured beside the search like any trial: `baseline` (the unpruned network), a schedule
    # file (a hand-tuned recipe), or a checkpoint (.pt, e.g. the smaller sibling of the family,
    # measured as it is unless `reference_finetune`).
    # A bare state dict as {checkpoint, model, num_classes, in_channels} or {checkpoint, factory}.
    enqueue: list[str | DescribedCheckpoint] = Field(default_factory=list)
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
        if isinstance(data, dict) and isinstance(data.get("parameters"), dict):
            data = {**data, "parameters": _flattened(data["parameters"])}
        return data

    @property
    def stopping(self) -> str:
        """The fine-tune stopper in force: W&B's `early_terminate` is Hyperband."""
        return "hyperband" if self.early_terminate is not None else self.early_stop.method

    def unused(self) -> list[str]:
        """The W&B keys this file sets that edgetune reads but has no use for, and why not."""
        out = [k for k in UNUSED_WANDB_KEYS if k in self.model_fields_set]
        if self.early_terminate is not None and "strict" in self.early_terminate.model_fields_set:
            out.append("early_terminate.strict (Optuna's Hyperband has no lenient mode)")
        return out

    @model_validator(mode="after")
    def _consistent(self) -> SweepSpec:
        if self.objectives is not None and "metric" in self.model_fields_set:
            names = [o.metric.lower() for o in self.objectives]
            if self.metric.name.lower() not in names:
                raise ValueError(f"`metric` ({self.metric.name}) is not among `objectives` ({', '.join(names)}); "
                                 "give one of them, or drop `metric`")
        many = len(self.objective_list()) > 1
        if many and not strategy_traits(self.method).multi_objective:
            raise ValueError(f"method '{self.method}' optimises one objective; use "
                             f"{', '.join(names_where(SEARCH_STRATEGIES, multi_objective=True, finite_space=False))} for several")
        if many and self.early_stop.method != "none":
            raise ValueError(f"early_stop '{self.early_stop.method}' needs a single objective (Optuna's pruners "
                             "compare one curve); use collapse detection alone with several objectives")
        if self.early_terminate is not None and (self.early_stop.method != "none" or many):
            raise ValueError("early_terminate (W&B's hyperband) and early_stop both stop fine-tunes early, and need a "
                             "single objective: give one of them")
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


def _flattened(parameters: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """W&B's nested parameters as dotted names (`finetune: {parameters: {epochs: ...}}` is
    `finetune.epochs`), which the mapping resolves like any dotted path."""
    out: dict[str, Any] = {}
    for name, value in parameters.items():
        if isinstance(value, dict) and set(value) == {"parameters"} and isinstance(value["parameters"], dict):
            out.update(_flattened(value["parameters"], f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = value
    return out


def parse_sweep(raw: Any, source: str = "<sweep>") -> SweepSpec:
    return validate(SweepSpec, raw, source, "a sweep")


def load_sweep(path: str | Path) -> SweepSpec:
    return parse_sweep(read_yaml(path, "sweep"), str(path))
