"""The plan: everything validated before the first trial, so a bad file fails here, not an
hour in. It is frozen; what only the target can tell (measured widths) makes a new plan."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from edgetune.catalog import strategy_traits
from edgetune.config.architecture import (
    RECORDED,
    Architecture,
    DescribedCheckpoint,
    architecture_of,
    checkpoint_of,
)
from edgetune.config.experiment import (
    BenchmarkSpec,
    CalibrateSpec,
    DataSpec,
    ExperimentSpec,
    FinetuneSpec,
    ModelSpec,
    finetune_identity,
    recipe_of,
    sweep_of,
)
from edgetune.config.recipe import Schedule, load_schedule
from edgetune.config.sweep import EarlyStopSpec, SweepSpec
from edgetune.entrypoints import function_name, load_entry_point
from edgetune.errors import ConfigError
from edgetune.metrics.objectives import ACCURACY, Constraint, Objective, constraints_of, objectives_of
from edgetune.models.factory import ModelFactory
from edgetune.search.space import Target, check_ranges, resolve_all
from edgetune.search.space.mapping import candidate_values
from edgetune.search.space.parameters import grid_size
from edgetune.search.space.recipe import expand_per_layer
from edgetune.study.storage.rundir import RunDir

# Settings outside the schedule that a sweep may set by `section.field`.
SETTINGS = {"finetune": list(FinetuneSpec.model_fields), "benchmark": list(BenchmarkSpec.model_fields),
            "calibrate": list(CalibrateSpec.model_fields)}


CHECKPOINT_SUFFIXES = (".pt", ".pth")


@dataclass(frozen=True)
class Reference:
    """A network measured beside the search: a recipe applied to the baseline, or another
    checkpoint (`checkpoint` set) measured as it is."""

    name: str
    schedule: Schedule
    checkpoint: Path | None = None
    # Measured at this precision rather than the experiment's: another network in each precision
    # the search may deploy (the smaller sibling quantised is what a user would try first).
    precision: str | None = None
    # What a bare state dict does not record ({checkpoint, model, ...} in `enqueue`).
    architecture: Architecture = RECORDED
    # A network handed over from Python (`tune(references=[...])`) in place of a checkpoint.
    factory: ModelFactory | None = None

    @property
    def network(self) -> bool:
        """Another network measured as it is (a checkpoint or an object), not a recipe."""
        return self.checkpoint is not None or self.factory is not None


@dataclass(frozen=True, eq=False)
class Given:
    """What Python handed over (`edgetune.tune`) instead of an experiment file naming it: the
    network (as a factory that copies or builds it) and the data splits."""

    factory: ModelFactory | None = None
    data: Any = None  # edgetune.data.splits.DataSplits
    # The user's `evaluate` and `loss` as Python callables, in place of the file's entry points.
    metric: Callable[..., Any] | None = None
    loss: Callable[..., Any] | None = None
    # Networks measured beside the search, and the one that teaches, as Python objects: recorded
    # by name (ModelFactory.ref), never pickled.
    references: tuple[ModelFactory, ...] = ()
    teacher: ModelFactory | None = None

    def names(self) -> list[dict[str, Any]]:
        """The objects' names a study's fingerprint records, only when there are any (studies
        begun before they could be given keep their fingerprints)."""
        out: list[dict[str, Any]] = []
        if self.references:
            out.append({"references": [f.ref for f in self.references]})
        if self.teacher is not None:
            out.append({"teacher": self.teacher.ref})
        return out

    def identity(self) -> list[Any]:
        """What of it makes a study: the network's builder and the data's shapes and size."""
        data = self.data
        shape = None if data is None else [data.name, list(data.train.images.shape), len(data.val), data.num_classes]
        return [self.factory.ref if self.factory else None, shape]


@dataclass(frozen=True)
class Plan:
    spec: ExperimentSpec
    raw_schedule: dict[str, Any]
    schedule: Schedule
    sweep: SweepSpec
    sweep_source: str
    targets: dict[str, Target]
    objectives: list[Objective]
    constraints: list[Constraint]
    run_dir: Path
    storage: str
    references: list[Reference]
    limit: int
    given: Given = Given()

    @property
    def paths(self) -> RunDir:
        return RunDir(self.run_dir)

    @property
    def factory(self) -> ModelFactory | None:
        """The user's network builder, when the experiment names one (model.factory)."""
        if self.given.factory is not None:
            return self.given.factory
        model = self.spec.model
        return ModelFactory(model.factory, model.kwargs) if model.factory else None

    def factory_for(self, reference: str | None) -> ModelFactory | None:
        """The builder a trial's checkpoint needs: a reference's own (an object handed over, a
        `{checkpoint, factory}` entry; none for a network of the registry), else the study's."""
        ref = next((r for r in self.references if r.name == reference), None)
        if ref is None or not ref.network:  # a trial of the search, or a recipe on the study's network
            return self.factory
        if ref.factory is not None:
            return ref.factory
        told = ref.architecture
        return ModelFactory(told.factory, told.kwargs) if told.factory else None

    @property
    def metric(self) -> Callable[..., Any] | None:
        """The user's `evaluate` function: handed over from Python, or imported when a study needs it."""
        if self.given.metric is not None:
            return self.given.metric
        return load_entry_point(self.spec.evaluate, "evaluate") if self.spec.evaluate else None

    @property
    def loss(self) -> Callable[..., Any] | None:
        """The user's fine-tuning loss: handed over from Python, or imported when a study needs it."""
        if self.given.loss is not None:
            return self.given.loss
        return load_entry_point(self.spec.loss, "loss") if self.spec.loss else None

    def user_code(self, key: str) -> str | None:
        """How the study names the user's `evaluate` or `loss`: the file's entry point, or the
        Python object's name (function_name); None when there is none."""
        given = getattr(self.given, "metric" if key == "evaluate" else key)
        return f"python:{function_name(given)}" if given is not None else getattr(self.spec, key)

    @property
    def shared(self) -> bool:
        """A storage the user names may be shared with other producers (see storage.py)."""
        return self.spec.storage is not None

    @property
    def objective(self) -> str:
        return self.objectives[0].metric

    @property
    def direction(self) -> str:
        return self.objectives[0].goal

    @property
    def fingerprint(self) -> str:
        """What makes two runs the same study: the recipe, the sweep, the data and the model."""
        # The data and model sections hold paths: dumped as JSON, as the first studies did.
        parts = [(self.sweep, "python"), (self.spec.data, "json"), (self.spec.model, "json"),
                 (self.spec.finetune, "python"), (self.spec.benchmark, "python")]
        begun_from_python = self.given.factory is not None or self.given.data is not None
        given = [self.given.identity()] if begun_from_python else []
        for added in ("evaluate", "loss"):  # added later: only studies that name one include it
            if (named := self.user_code(added)) is not None:
                given.append({added: named})
        given += self.given.names()
        if self.spec.calibrate != CalibrateSpec():  # added later: the default leaves earlier fingerprints as they were
            given.append({"calibrate": self.spec.calibrate.model_dump()})
        blob = json.dumps([self.raw_schedule, *(_without_later_defaults(m, mode) for m, mode in parts), *given],
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def with_measured_widths(self, sweep: SweepSpec) -> Plan:
        """The plan once `widths: measured` parameters became categorical ones over the target's
        fast widths (a grid's size is known only then). The fingerprint stays the first plan's."""
        limit = min(self.limit, grid_size(sweep)) if strategy_traits(sweep.method).finite_space else self.limit
        return dataclasses.replace(self, sweep=sweep, limit=limit)

    def precisions(self) -> list[str]:
        """The experiment's precision and every other one a searched `precision` may take."""
        out = [self.spec.benchmark.precision]
        for name, target in self.targets.items():
            if target.section == "benchmark" and target.field == "precision":
                p = self.sweep.parameters[name]
                out += [v for v in (p.values or [p.value]) if v not in out]
        return out

    def needs_width_table(self) -> bool:
        """Measured rounding and measured width spaces need the profile; so does a predictor the
        sweep configures explicitly (to skip or warm-start on ratios without rounding)."""
        return (any(p.round_to == "measured" for p in self.schedule.pruners.values())
                or measured_widths(self.sweep) or "predictor" in self.sweep.model_fields_set)


# Settings added since the first studies were written: at their defaults they stay out of the
# fingerprint, so those studies still resume (tests/study/test_fingerprint.py pins the rest).
ADDED_LATER = {"sweep": ("reference_finetune", "apiVersion", "kind", "controller", "job", "image_uri",
                         "early_terminate"),
               "finetune": ("distill",), "data": ("factory", "kwargs", "item_keys"), "model": ("factory", "kwargs", "input_shape"),
               "benchmark": ("throughput_stable",)}
# Keys added inside a sweep's metric and each of its parameters (W&B's), None when not given.
ADDED_LATER_NESTED = {"metric": ("target", "impute", "impute_while_running"),
                      "parameters": ("probabilities", "mu", "sigma", "a", "b")}
_SECTIONS = {SweepSpec: "sweep", FinetuneSpec: "finetune", DataSpec: "data", ModelSpec: "model",
             BenchmarkSpec: "benchmark"}


def _without_later_defaults(model: BaseModel, mode: str) -> dict[str, Any]:
    dumped = finetune_identity(model, mode) if isinstance(model, FinetuneSpec) else model.model_dump(mode=mode)
    for name in ADDED_LATER.get(_SECTIONS.get(type(model), ""), ()):
        if dumped[name] == type(model).model_fields[name].get_default(call_default_factory=True):
            del dumped[name]
    if isinstance(model, SweepSpec):
        early = dumped.get("early_stop") or {}
        for later in ("reject_confidence", "promote", "promote_slack"):  # added later: left out at their defaults
            if later in early and early[later] == EarlyStopSpec.model_fields[later].default:
                early.pop(later)
        nodes = [("metric", dumped["metric"]), *(("parameters", p) for p in dumped["parameters"].values())]
        for section, node in nodes:
            for name in ADDED_LATER_NESTED[section]:
                if node.get(name) is None:
                    node.pop(name, None)
            if isinstance(node.get("q"), int):  # `q` was read as a float before W&B's int rounding
                node["q"] = float(node["q"])
    return dumped


def measured_widths(sweep: SweepSpec) -> bool:
    return any(p.widths == "measured" for p in sweep.parameters.values())


def plan_study(spec: ExperimentSpec, given: Given | None = None) -> Plan:
    given = given or Given()
    raw_schedule, schedule, recipe_source = recipe_of(spec)
    sweep, sweep_source = sweep_of(spec)
    if sweep.space == "per-layer":
        raw_schedule, schedule, sweep = expand_per_layer(raw_schedule, schedule, sweep, recipe_source)
    targets = resolve_all(sweep.parameters, schedule, SETTINGS, sweep_source)
    if any(t.instance is not None for t in targets.values()):
        check_ranges(raw_schedule, targets, sweep, sweep_source)
    check_settings(spec, targets, sweep, sweep_source)
    custom = spec.evaluate is not None or given.metric is not None
    objectives = objectives_of(sweep, sweep_source, custom)
    _check_search(spec, sweep, sweep_source, objectives, given)
    if spec.finetune.schedule == "cosine" and schedule.schedules_learning_rate():
        raise ConfigError(f"finetune.schedule: cosine steps the learning rate after every step, and the recipe "
                          f"({recipe_source}) steps it too (a policy names an lr_scheduler); set "
                          "finetune.schedule: auto or constant, or drop the recipe's lr_scheduler policies",
                          key="finetune.schedule")
    limit = sweep.trials or spec.trials
    if sweep.run_cap is not None:  # W&B's cap; the count itself when no trials are asked for
        asked = sweep.trials or ("trials" in spec.model_fields_set and spec.trials)
        limit = min(asked, sweep.run_cap) if asked else sweep.run_cap
    if strategy_traits(sweep.method).finite_space and not measured_widths(sweep):  # counted once measured
        limit = min(limit, grid_size(sweep))  # raises on a continuous parameter
    run_dir = spec.run_dir or Path.cwd() / "runs" / spec.name
    storage = spec.storage or RunDir(run_dir).default_storage
    plan = Plan(spec, raw_schedule, schedule, sweep, sweep_source, targets, objectives,
                constraints_of(sweep, sweep_source, custom), run_dir, storage, _references(spec, sweep, sweep_source, given),
                limit,
                given)
    if custom and spec.remote is not None and (
            reduced := [p for p in plan.precisions() if p != "fp32"]):
        raise ConfigError(f"evaluate scores the deployed artefact at {reduced[0]} with your function, which runs in "
                          "this process; a device worker cannot call it: benchmark at fp32 there, or here",
                          key="evaluate")
    return _in_each_precision(plan)


def _in_each_precision(plan: Plan) -> Plan:
    """Each checkpoint reference once more at every other precision the sweep searches, named
    `<checkpoint>@<precision>`."""
    others = plan.precisions()[1:]
    extra = [dataclasses.replace(ref, name=f"{ref.name}@{p}", precision=p)
             for ref in plan.references if ref.network for p in others]
    return dataclasses.replace(plan, references=[*plan.references, *extra]) if extra else plan


def check_settings(spec: ExperimentSpec, targets: dict[str, Target], sweep: SweepSpec, source: str) -> None:
    """Every value a searched setting (finetune, benchmark, calibrate) can take, validated by
    that section's schema now: a value it refuses would fail every trial that drew it."""
    for name, target in targets.items():
        if target.instance is not None or target.section not in SETTINGS:
            continue
        section = getattr(spec, target.section)
        for value in candidate_values(sweep.parameters[name]):
            update = value
            for part in reversed(target.field.split(".")):
                update = {part: update}
            try:
                type(section).model_validate(_merged(section.model_dump(), update))
            except ValidationError as exc:
                problem = exc.errors()[0]
                raise ConfigError(f"value {value!r} is not accepted by {target.section}.{target.field}: "
                                  f"{problem['msg']}", source=source, key=f"parameters.{name}") from None


def _merged(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _check_search(spec: ExperimentSpec, sweep: SweepSpec, source: str, objectives: list[Objective],
                  given: Given) -> None:
    if sweep.stopping != "none" and objectives[0].metric not in ACCURACY:
        raise ConfigError(
            f"early_stop '{sweep.stopping}' compares the objective during fine-tuning, but "
            f"'{objectives[0].metric}' does not change while fine-tuning; make top1 the objective or use "
            "early_stop: {method: none, collapse: true}", source=source,
            key="early_terminate" if sweep.early_terminate else "early_stop.method")
    if spec.model.checkpoint is None and spec.model.factory is None and given.factory is None:
        raise ConfigError("no checkpoint: give model.checkpoint in the experiment or --checkpoint (or model.factory, "
                          "your own network)", key="model.checkpoint")
    if len(objectives) > 1 and not strategy_traits(sweep.method).multi_objective:
        raise ConfigError(f"method '{sweep.method}' optimises one objective", source=source, key="method")


def _references(spec: ExperimentSpec, sweep: SweepSpec, source: str, given: Given) -> list[Reference]:
    """What to measure beside the search (`enqueue`): `baseline`, schedule files, checkpoints,
    and the networks handed over from Python."""
    references = []
    for i, ref in enumerate(sweep.enqueue):
        if ref == "baseline":
            references.append(Reference("baseline", Schedule()))
            continue
        named = checkpoint_of(ref) if isinstance(ref, DescribedCheckpoint) else Path(ref)
        path = named if named.is_absolute() else Path(spec.sweep).parent / named if isinstance(
            spec.sweep, Path) else Path.cwd() / named
        if not path.is_file():
            raise ConfigError(f"reference {path} does not exist; give 'baseline', a schedule file or a checkpoint "
                              f"({', '.join(CHECKPOINT_SUFFIXES)})", source=source, key=f"enqueue[{i}]")
        if isinstance(ref, DescribedCheckpoint):
            references.append(Reference(str(path), Schedule(), path, architecture=architecture_of(ref)))
        elif path.suffix in CHECKPOINT_SUFFIXES:
            references.append(Reference(str(path), Schedule(), path))
        else:
            references.append(Reference(str(path), load_schedule(path)))
    names = [f.ref for f in given.references]
    if len(set(names)) < len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise ConfigError(f"two references handed over from Python are both named {twice.removeprefix('python:')!r}: "
                          "name each with edgetune.named(network, 'name')", key="references")
    return references + [Reference(f.ref, Schedule(), factory=f) for f in given.references]
