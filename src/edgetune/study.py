"""A search that survives a crash: Optuna study in a storage under the run directory, the
baseline measured once, each candidate's files kept, and resumption where it stopped.

Only one process works a run directory at a time (a lock file), so a trial still marked
RUNNING when a run starts belongs to a process that died: it is marked failed with
`interrupted`, and its parameters are queued again so that candidate is not lost.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch
import yaml
from optuna.trial import TrialState

from edgetune.data.splits import load_dataset
from edgetune.errors import ConfigError, EdgetuneError
from edgetune.experiment import BenchmarkSpec, ExperimentSpec, FinetuneSpec, recipe_of, sweep_of
from edgetune.metrics import METRICS, resolve_metric
from edgetune.models.registry import load_checkpoint
from edgetune.profiler import open_reference
from edgetune.recipe.schedule import Schedule
from edgetune.runtimes.base import get_runtime
from edgetune.sweep import SweepSpec, Target, apply, check_ranges, make_sampler, resolve_all, suggest
from edgetune.sweep.space import grid_size
from edgetune.trial import CandidateResult, Workbench, run_candidate

optuna.logging.set_verbosity(optuna.logging.WARNING)

# Settings outside the schedule that a sweep may set by `section.field`.
SETTINGS = {"finetune": list(FinetuneSpec.model_fields), "benchmark": list(BenchmarkSpec.model_fields)}


@dataclass
class Plan:
    """Everything validated before the first trial: a bad file fails here, not an hour in."""

    spec: ExperimentSpec
    raw_schedule: dict[str, Any]
    schedule: Schedule
    sweep: SweepSpec
    sweep_source: str
    targets: dict[str, Target]
    objective: str
    direction: str
    run_dir: Path
    storage: str

    @property
    def fingerprint(self) -> str:
        """What makes two runs the same study: the recipe, the sweep, the data and the model."""
        blob = json.dumps([self.raw_schedule, self.sweep.model_dump(), self.spec.data.model_dump(mode="json"),
                           self.spec.model.model_dump(mode="json"), self.spec.finetune.model_dump(),
                           self.spec.benchmark.model_dump()],
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def plan_study(spec: ExperimentSpec) -> Plan:
    raw_schedule, schedule, _ = recipe_of(spec)
    sweep, sweep_source = sweep_of(spec)
    targets = resolve_all(sweep.parameters, schedule, SETTINGS, sweep_source)
    if any(t.instance is not None for t in targets.values()):
        check_ranges(raw_schedule, targets, sweep, sweep_source)
    objective = resolve_metric(sweep.metric.name, sweep_source)
    if spec.model.checkpoint is None:
        raise ConfigError("no checkpoint: give model.checkpoint in the experiment or --checkpoint",
                          key="model.checkpoint")
    if sweep.method == "grid":
        grid_size(sweep)  # raises on a continuous parameter
    run_dir = spec.run_dir or Path.cwd() / "runs" / spec.name
    storage = spec.storage or f"sqlite:///{run_dir / 'study.db'}"
    return Plan(spec, raw_schedule, schedule, sweep, sweep_source, targets, objective, sweep.metric.goal,
                run_dir, storage)


@contextmanager
def _run_lock(run_dir: Path) -> Iterator[None]:
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EdgetuneError(f"another edgetune process is running in {run_dir}") from None
        yield


def _workbench(plan: Plan) -> tuple[Workbench, dict[str, Any]]:
    spec = plan.spec
    data = load_dataset(spec.data.name, spec.data.root, val_size=spec.data.val_size, split_seed=spec.data.split_seed)
    model, meta = load_checkpoint(spec.model.checkpoint, model_name=spec.model.name,  # type: ignore[arg-type]
                                  num_classes=data.num_classes, in_channels=data.in_channels)
    bench = Workbench(
        data=data,
        train=data.train.subset(spec.data.train_subset, seed=spec.seed),
        val=data.val.subset(spec.data.val_subset, seed=spec.seed),
        baseline=model.eval(),
        benchmark=spec.benchmark,
        calibration=data.normalize(data.train.subset(spec.benchmark.calibration_images, seed=spec.seed + 1).images)
        .numpy(),
        device=spec.device,
        seed=spec.seed,
    )
    return bench, meta


def _baseline(plan: Plan, bench: Workbench, stage: Callable[[str], None]) -> dict[str, float]:
    """Measured once per run directory, on the same images and runtime as every trial; its ONNX
    file is the reference each candidate is timed against."""
    out = plan.run_dir / "baseline"
    onnx_path = out / "model.onnx"
    saved = out / "metrics.json"
    if not (saved.is_file() and onnx_path.is_file()):
        run_candidate(bench, Schedule(), FinetuneSpec(epochs=0), out, stage)
    bench.reference = open_reference(onnx_path, bench.benchmark, bench.baseline, bench.calibration, out)
    metrics = json.loads(saved.read_text())["metrics"]
    bench.reference_ms = metrics["latency_ms"]
    return metrics


def _reclaim_interrupted(study: optuna.Study) -> list[int]:
    reclaimed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(t._trial_id, "interrupted", True)
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
        reclaimed.append(t.number)
    return reclaimed


def counted(study: optuna.Study) -> int:
    """Trials that count towards the target: finished ones, and failures that were not kills."""
    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.state == TrialState.COMPLETE or (t.state == TrialState.FAIL and not t.user_attrs.get("interrupted")))


@dataclass
class StudyOutcome:
    plan: Plan
    study: optuna.Study
    baseline: dict[str, float]
    reclaimed: list[int]


class Reporter:
    """Receives progress; the CLI draws it with rich, tests and libraries can ignore it."""

    def start(self, plan: Plan, done: int, total: int, baseline: dict[str, float] | None) -> None: ...
    def stage(self, text: str) -> None: ...
    def trial_done(self, number: int, params: dict[str, Any], result: CandidateResult | None,
                   error: str | None, best: optuna.trial.FrozenTrial | None) -> None: ...
    def finish(self) -> None: ...


def run_study(spec: ExperimentSpec, reporter: Reporter | None = None) -> StudyOutcome:
    reporter = reporter or Reporter()
    plan = plan_study(spec)
    with _run_lock(plan.run_dir):
        (plan.run_dir / "experiment.resolved.yaml").write_text(
            yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
        study = optuna.create_study(
            storage=plan.storage, study_name=spec.name, load_if_exists=True, direction=plan.direction,
            sampler=make_sampler(plan.sweep, spec.seed, plan.sweep_source),
        )
        stored = study.user_attrs.get("fingerprint")
        if stored is None:
            study.set_user_attr("fingerprint", plan.fingerprint)
            study.set_user_attr("objective", plan.objective)
        elif stored != plan.fingerprint:
            raise EdgetuneError(
                f"{plan.run_dir} holds study '{spec.name}' of a different experiment (recipe, sweep, data, "
                "model or fine-tuning changed); give a new --run-dir or --name to start another study")
        reclaimed = _reclaim_interrupted(study)
        torch.manual_seed(spec.seed)
        bench, _ = _workbench(plan)
        get_runtime(spec.benchmark.runtime)  # a missing extra fails before the baseline is measured
        reporter.start(plan, counted(study), spec.trials, None)
        baseline = _baseline(plan, bench, reporter.stage)
        reporter.start(plan, counted(study), spec.trials, baseline)
        limit = spec.trials
        if plan.sweep.method == "grid":
            limit = min(limit, grid_size(plan.sweep))
        while counted(study) < limit:
            trial = study.ask()
            params = suggest(trial, plan.sweep)
            out = plan.run_dir / "trials" / f"{trial.number:04d}"
            try:
                schedule, over = apply(plan.raw_schedule, plan.targets, params, plan.sweep_source)
                ft = FinetuneSpec.model_validate({**spec.finetune.model_dump(), **over.get("finetune", {})})
                bench.benchmark = BenchmarkSpec.model_validate({**spec.benchmark.model_dump(), **over.get("benchmark", {})})
                out.mkdir(parents=True, exist_ok=True)
                (out / "recipe.yaml").write_text(yaml.safe_dump(
                    {"params": params, "finetune": ft.model_dump(), "benchmark": bench.benchmark.model_dump(),
                     "schedule": schedule.model_dump(by_alias=True,
                     exclude_none=True)}, sort_keys=False))
                result = run_candidate(bench, schedule, ft, out, reporter.stage)
            except Exception as exc:  # noqa: BLE001 - a broken candidate must not end the search
                msg = f"{type(exc).__name__}: {exc}"
                trial.set_user_attr("error", msg[:2000])
                study.tell(trial, state=TrialState.FAIL)
                reporter.trial_done(trial.number, params, None, msg, _best(study))
                continue
            for key, value in result.metrics.items():
                trial.set_user_attr(key, value)
            trial.set_user_attr("pruned_structures", sum(r.removed for r in result.thinning))
            value = result.metrics[plan.objective]
            if not math.isfinite(value):
                trial.set_user_attr("error", f"objective {plan.objective} is {value}")
                study.tell(trial, state=TrialState.FAIL)
            else:
                study.tell(trial, value)
            reporter.trial_done(trial.number, params, result, None, _best(study))
        reporter.finish()
        write_trials_csv(study, baseline, plan.run_dir / "trials.csv")
        return StudyOutcome(plan, study, baseline, reclaimed)


def _best(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:
        return None


def write_trials_csv(study: optuna.Study, baseline: dict[str, float], path: Path) -> None:
    import pandas as pd

    rows = [{"trial": "baseline", "state": "BASELINE", **baseline}]
    for t in study.get_trials(deepcopy=False):
        metrics = {k: v for k, v in t.user_attrs.items() if k in METRICS or k.startswith("throughput_b")
                   or k in ("pruned_structures", "error")}
        rows.append({"trial": t.number, "state": t.state.name, "value": t.value,
                     **{f"param.{k}": v for k, v in t.params.items()}, **metrics,
                     "interrupted": bool(t.user_attrs.get("interrupted", False))})
    frame = pd.DataFrame(rows)
    tmp = path.with_suffix(".tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)
