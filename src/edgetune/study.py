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
import logging
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
from edgetune.hardware.predict import (
    kept_widths,
    latency_budget,
    predicted_metrics,
    resolve_measured_widths,
    skip_margin,
    warm_start,
)
from edgetune.metrics import METRICS, add_ratios, compression_flags
from edgetune.models.registry import load_checkpoint
from edgetune.objectives import (
    ACCURACY,
    Constraint,
    Objective,
    constraints_of,
    objectives_of,
    pareto_front,
    protocol_constraints,
    reward,
    violations,
)
from edgetune.producers import heartbeat, producer_seed, retried_numbers, shared_storage, wait_or_done
from edgetune.profiler import open_reference, profile_artifact
from edgetune.recipe.schedule import Schedule, load_schedule
from edgetune.runtimes.base import get_runtime
from edgetune.search.base import SearchContext, TrialOutcome, get_strategy, is_feasible, record_constraints
from edgetune.search.loop import drive_study
from edgetune.search.space import expand_per_layer, layer_features
from edgetune.sweep import SweepSpec, Target, apply, check_ranges, fixed_values, resolve_all, suggest
from edgetune.sweep.space import grid_size
from edgetune.tracking import Tracker, TrialRecord, open_trackers
from edgetune.training import EvalResult
from edgetune.trial import CandidateResult, Hooks, StopTrial, Workbench, run_candidate
from edgetune.worker.remote import RemoteBench

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
    objectives: list[Objective]
    constraints: list[Constraint]
    run_dir: Path
    storage: str
    references: list[tuple[str, Schedule]]
    limit: int

    @property
    def objective(self) -> str:
        return self.objectives[0].metric

    @property
    def direction(self) -> str:
        return self.objectives[0].goal

    @property
    def fingerprint(self) -> str:
        """What makes two runs the same study: the recipe, the sweep, the data and the model."""
        blob = json.dumps([self.raw_schedule, self.sweep.model_dump(), self.spec.data.model_dump(mode="json"),
                           self.spec.model.model_dump(mode="json"), self.spec.finetune.model_dump(),
                           self.spec.benchmark.model_dump()],
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def plan_study(spec: ExperimentSpec) -> Plan:
    raw_schedule, schedule, recipe_source = recipe_of(spec)
    sweep, sweep_source = sweep_of(spec)
    if sweep.space == "per-layer":
        raw_schedule, schedule, sweep = expand_per_layer(raw_schedule, schedule, sweep, recipe_source)
    targets = resolve_all(sweep.parameters, schedule, SETTINGS, sweep_source)
    if any(t.instance is not None for t in targets.values()):
        check_ranges(raw_schedule, targets, sweep, sweep_source)
    objectives = objectives_of(sweep, sweep_source)
    constraints = constraints_of(sweep, sweep_source)
    if sweep.early_stop.method != "none" and objectives[0].metric not in ACCURACY:
        raise ConfigError(
            f"early_stop '{sweep.early_stop.method}' compares the objective during fine-tuning, but "
            f"'{objectives[0].metric}' does not change while fine-tuning; make top1 the objective or use "
            "early_stop: {method: none, collapse: true}", source=sweep_source, key="early_stop.method")
    if spec.model.checkpoint is None:
        raise ConfigError("no checkpoint: give model.checkpoint in the experiment or --checkpoint",
                          key="model.checkpoint")
    strategy = get_strategy(sweep.method)
    if len(objectives) > 1 and not strategy.multi_objective:
        raise ConfigError(f"method '{sweep.method}' optimises one objective", source=sweep_source, key="method")
    limit = sweep.trials or spec.trials
    if sweep.method == "grid" and not _measured_widths(sweep):  # those are counted once measured
        limit = min(limit, grid_size(sweep))  # raises on a continuous parameter
    references = []
    for i, ref in enumerate(sweep.enqueue):
        if ref == "baseline":
            references.append(("baseline", Schedule()))
            continue
        path = Path(ref) if Path(ref).is_absolute() else Path(spec.sweep).parent / ref if isinstance(
            spec.sweep, Path) else Path.cwd() / ref
        if not path.is_file():
            raise ConfigError(f"reference recipe {path} does not exist; give 'baseline' or a schedule file",
                              source=sweep_source, key=f"enqueue[{i}]")
        references.append((str(path), load_schedule(path)))
    run_dir = spec.run_dir or Path.cwd() / "runs" / spec.name
    storage = spec.storage or f"sqlite:///{run_dir / 'study.db'}"
    return Plan(spec, raw_schedule, schedule, sweep, sweep_source, targets, objectives, constraints, run_dir,
                storage, references, limit)


@contextmanager
def _run_lock(run_dir: Path) -> Iterator[None]:
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EdgetuneError(f"another edgetune process is running in {run_dir}") from None
        yield


def redact_url(url: str) -> str:
    """The URL with its password replaced: run directories get copied and shared."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def redact_secrets(resolved: dict[str, Any]) -> dict[str, Any]:
    if resolved.get("storage"):
        resolved["storage"] = redact_url(resolved["storage"])
    if resolved.get("remote"):
        resolved["remote"]["broker"] = redact_url(resolved["remote"]["broker"])
    return resolved


def _workbench(plan: Plan) -> Workbench:
    spec = plan.spec
    data = load_dataset(spec.data.name, spec.data.root, val_size=spec.data.val_size, split_seed=spec.data.split_seed)
    model, meta = load_checkpoint(spec.model.checkpoint, model_name=spec.model.name,  # type: ignore[arg-type]
                                  num_classes=data.num_classes, in_channels=data.in_channels)
    return Workbench(
        data=data,
        train=data.train.subset(spec.data.train_subset, seed=spec.seed),
        val=data.val.subset(spec.data.val_subset, seed=spec.seed),
        baseline=model.eval(),
        benchmark=spec.benchmark,
        calibration=data.normalize(data.train.subset(spec.benchmark.calibration_images, seed=spec.seed + 1).images)
        .numpy(),
        device=spec.device,
        seed=spec.seed,
        meta={k: meta[k] for k in ("model", "num_classes", "in_channels")},
        remote=None if spec.remote is None else RemoteBench(spec.remote.broker, spec.remote.queue, spec.remote.timeout),
    )


def _baseline(plan: Plan, bench: Workbench, stage: Callable[[str], None]) -> dict[str, Any]:
    """Measured once per run directory, on the same images and runtime as every trial; its ONNX
    file is the reference each candidate is timed against."""
    out = plan.run_dir / "baseline"
    onnx_path = out / "model.onnx"
    saved = out / "metrics.json"
    if not (saved.is_file() and onnx_path.is_file()):
        run_candidate(bench, Schedule(), FinetuneSpec(epochs=0), out, stage)
    if bench.remote is None:
        bench.reference = open_reference(onnx_path, bench.benchmark, bench.baseline, bench.calibration, out)
    bench.reference_onnx = onnx_path  # a device worker times candidates beside this file
    metrics = json.loads(saved.read_text())["metrics"]
    bench.reference_ms = metrics["latency_ms"]
    return metrics


def _reclaim_interrupted(study: optuna.Study) -> list[int]:
    reclaimed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(t._trial_id, "interrupted", True)
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        keep = {k: v for k, v in t.user_attrs.items() if k == "reference"}
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number, **keep})
        reclaimed.append(t.number)
    return reclaimed


SKIP_LIMIT = 10  # skipped candidates per counted trial before a search gives up


def _measured_widths(sweep: SweepSpec) -> bool:
    return any(p.widths == "measured" for p in sweep.parameters.values())


def counted(study: optuna.Study | list[optuna.trial.FrozenTrial]) -> int:
    """Search trials that count towards the target: finished, stopped early, or failed for a
    reason other than a kill (a killed trial's candidate is queued again and that copy counts).
    Reference trials come on top, and so do candidates skipped on their predicted latency (they
    cost a pruning and an evaluation, not a measurement)."""
    trials = study.get_trials(deepcopy=False) if isinstance(study, optuna.Study) else study
    retried = retried_numbers(trials)
    n = 0
    for t in trials:
        if t.user_attrs.get("reference") or t.user_attrs.get("skipped"):
            continue
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
                t.state == TrialState.FAIL and not t.user_attrs.get("interrupted") and t.number not in retried):
            n += 1
    return n


def feasible_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Completed search trials whose every constraint held (references apart)."""
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if is_feasible(t) and not t.user_attrs.get("reference")]


def best_trials(trials: list[optuna.trial.FrozenTrial], objectives: list[Objective]) -> list[optuna.trial.FrozenTrial]:
    """Single objective: the trials best first. Several: their Pareto front, by the first."""
    sign = 1.0 if objectives[0].goal == "minimize" else -1.0
    if len(objectives) > 1:
        trials = pareto_front([(t, list(t.values)) for t in trials], objectives)
    return sorted(trials, key=lambda t: sign * t.values[0])


@dataclass
class StudyOutcome:
    plan: Plan
    study: optuna.Study
    baseline: dict[str, Any]
    reclaimed: list[int]
    constraints: list[Constraint]

    def feasible(self) -> list[optuna.trial.FrozenTrial]:
        return feasible_trials(self.study)

    def best(self) -> list[optuna.trial.FrozenTrial]:
        return best_trials(self.feasible(), self.plan.objectives)

    def references(self) -> dict[str, dict[str, tuple[float, float, int]]]:
        """Each reference recipe's repeats summarised: metric -> (mean, std, n)."""
        import numpy as np

        groups: dict[str, list[optuna.trial.FrozenTrial]] = {}
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if t.user_attrs.get("reference"):
                groups.setdefault(t.user_attrs["reference"], []).append(t)
        out = {}
        for name, trials in groups.items():
            out[name] = {}
            for key in ("top1", "top1_before_ft", "latency_ms", "latency_ratio", "macs"):
                vals = [t.user_attrs[key] for t in trials if t.user_attrs.get(key) is not None]
                if vals:
                    out[name][key] = (float(np.mean(vals)), float(np.std(vals)), len(vals))
        return out


class Reporter:
    """Receives progress; the CLI draws it with rich, tests and libraries can ignore it."""

    def start(self, plan: Plan, done: int, total: int, baseline: dict[str, Any] | None) -> None: ...
    def stage(self, text: str) -> None: ...
    def trial_done(self, number: int, params: dict[str, Any], result: CandidateResult | None,
                   note: str | None, best: optuna.trial.FrozenTrial | None) -> None: ...
    def front(self, points: list[tuple[int, float, float]]) -> None:
        """The current accuracy/latency Pareto front: (trial, latency, top-1) by latency."""
    def finish(self) -> None: ...


def accuracy_latency_front(study: optuna.Study) -> list[tuple[int, float, float]]:
    """The feasible trials no other beats on both measured latency and top-1, fastest first."""
    import pandas as pd

    from edgetune.report.analysis import pareto_front

    rows = [{"trial": t.number, "latency": t.user_attrs.get("latency_adj_ms", t.user_attrs.get("latency_ms")),
             "top1": t.user_attrs.get("top1")} for t in feasible_trials(study) if not t.user_attrs.get("reference")]
    frame = pd.DataFrame(rows, columns=["trial", "latency", "top1"]).dropna()
    if frame.empty:
        return []
    front = pareto_front(frame, [Objective("latency", "minimize"), Objective("top1", "maximize")])
    return [(int(r.trial), float(r.latency), float(r.top1)) for r in front.itertuples()]


class _Evaluator:
    """Runs one trial of the study end to end and tells Optuna; what every strategy calls."""

    def __init__(self, plan: Plan, study: optuna.Study, bench: Workbench, baseline: dict[str, Any],
                 constraints: list[Constraint], reporter: Reporter) -> None:
        self.plan, self.study, self.bench, self.baseline = plan, study, bench, baseline
        self.constraints, self.reporter = constraints, reporter
        self.references = dict(plan.references)

    def _hooks(self, trial: optuna.Trial) -> Hooks:
        stop = self.plan.sweep.early_stop
        chance = 100.0 / self.bench.data.num_classes
        use_pruner = stop.method != "none" and len(self.plan.objectives) == 1

        def after_epoch(epoch: int, result: EvalResult) -> None:
            trial.set_user_attr(f"top1_epoch_{epoch + 1}", result.top1)
            if stop.collapse and epoch + 1 >= max(stop.warmup_epochs, 1) and result.top1 <= chance + stop.collapse_margin:
                raise StopTrial(f"collapsed: top-1 {result.top1:.2f} % after epoch {epoch + 1} "
                                f"(chance is {chance:.1f} %)")
            if use_pruner:
                trial.report(result.top1, epoch)
                if trial.should_prune():
                    raise StopTrial(f"stopped by the {stop.method} pruner after epoch {epoch + 1} "
                                    f"(top-1 {result.top1:.2f} %)")

        def resource_violation(metrics: dict[str, Any]) -> str | None:
            _, reasons = violations(self.constraints, add_ratios(metrics, self.baseline), resources_only=True)
            return "; ".join(reasons) or None

        return Hooks(resource_violation=resource_violation,
                     after_epoch=after_epoch if (stop.collapse or use_pruner) else None,
                     predicted_violation=self._predicted_violation)

    def _skip_margin(self) -> float:
        errors = [t.user_attrs["prediction_error"] for t in self.study.get_trials(deepcopy=False)
                  if t.user_attrs.get("prediction_error") is not None]
        return skip_margin(self.plan.sweep.predictor.skip_margin, errors)  # type: ignore[arg-type]

    def _predicted_violation(self, thinning: list) -> tuple[str, dict[str, Any]] | None:
        # The table of the trial's own precision (Workbench.use_precision); none was measured for
        # it, nothing is predicted.
        table = self.bench.width_table
        if self.plan.sweep.predictor.skip_margin is None or table is None:
            return None
        margin = self._skip_margin()
        budget = latency_budget(self.constraints, self.baseline)
        if budget is None:
            return None
        predicted = table.predict_ratio(kept_widths(thinning))
        if predicted is None or predicted <= budget * (1 + margin):
            return None
        reason = (f"predicted latency x{predicted:.3f} of the baseline is over the budget x{budget:.3f} by more than "
                  f"the {margin:.0%} margin")
        return reason, {"predicted_latency_ratio": predicted}

    def __call__(self, trial: optuna.Trial, params: dict[str, Any]) -> TrialOutcome:
        plan, spec = self.plan, self.plan.spec
        out = plan.run_dir / "trials" / f"{trial.number:04d}"
        reference = trial.user_attrs.get("reference")
        state, error, result = "COMPLETE", None, None
        try:
            if reference:
                schedule, over = self.references[reference], {}
                params = {}
            else:
                schedule, over = apply(plan.raw_schedule, plan.targets, params, plan.sweep_source)
            ft = FinetuneSpec.model_validate({**spec.finetune.model_dump(), **over.get("finetune", {})})
            self.bench.benchmark = BenchmarkSpec.model_validate({**spec.benchmark.model_dump(),
                                                                 **over.get("benchmark", {})})
            if self.bench.int8_format is not None and self.bench.benchmark.int8_format == "auto":
                self.bench.benchmark = self.bench.benchmark.model_copy(update={"int8_format": self.bench.int8_format})
            if self.bench.benchmark.precision == "int8" and self.bench.benchmark.runtime == "onnxruntime":
                trial.set_user_attr("int8_format", self.bench.benchmark.int8_format)
            self.bench.use_precision(self.bench.benchmark.precision)
            out.mkdir(parents=True, exist_ok=True)
            (out / "recipe.yaml").write_text(yaml.safe_dump(
                {"params": params, "reference": reference, "finetune": ft.model_dump(),
                 "benchmark": self.bench.benchmark.model_dump(),
                 "schedule": schedule.model_dump(by_alias=True, exclude_none=True)}, sort_keys=False))
            try:
                result = run_candidate(self.bench, schedule, ft, out, self.reporter.stage, self._hooks(trial))
            except StopTrial as stopped:
                result = stopped.result
                trial.set_user_attr("skipped" if stopped.skipped else "stopped", stopped.reason)
                if stopped.pruned:
                    state = "PRUNED"
        except Exception as exc:  # noqa: BLE001 - a broken candidate must not end the search
            error = f"{type(exc).__name__}: {exc}"
            trial.set_user_attr("error", error[:2000])
            self.study.tell(trial, state=TrialState.FAIL)
            self.reporter.trial_done(trial.number, params, None, error, self._best())
            return TrialOutcome(trial.number, params, "FAIL", feasible=False)
        metrics = result.metrics if result is not None else {}
        add_ratios(metrics, self.baseline)
        if self.bench.width_table is not None and result is not None and metrics.get("latency_ratio"):
            predicted = self.bench.width_table.predict_ratio(kept_widths(result.thinning))
            if predicted is not None:  # the predictor's record against the measurement, every trial
                metrics["predicted_latency_ratio"] = predicted
                metrics["prediction_error"] = predicted / metrics["latency_ratio"] - 1
        flags = compression_flags(metrics, self.baseline)
        if flags:
            trial.set_user_attr("flags", "; ".join(flags))
        for key, value in metrics.items():
            trial.set_user_attr(key, value)
        if result is not None:
            trial.set_user_attr("pruned_structures", sum(r.removed for r in result.thinning))
        skipped = trial.user_attrs.get("skipped")
        # A skipped candidate is judged on its prediction (named as such), so constrained samplers
        # learn where the budget breaks; its measured fields stay empty.
        scored = {**metrics, **predicted_metrics(metrics["predicted_latency_ratio"], self.baseline)} if skipped \
            else metrics
        cons, reasons = violations(self.constraints, scored)
        if skipped:
            reasons = [f"predicted {r}" for r in reasons]
        record_constraints(trial, [c.metric for c in self.constraints], cons)
        if state == "PRUNED":
            # Reports count only COMPLETE trials as feasible: a pruned one is never best.
            self.study.tell(trial, state=TrialState.PRUNED)
            self.reporter.trial_done(trial.number, params, result, trial.user_attrs.get("stopped"), self._best())
            return TrialOutcome(trial.number, params, "PRUNED", metrics=metrics, feasible=False)
        feasible = not reasons
        if reasons:
            trial.set_user_attr("infeasible", "; ".join(reasons))
        values = [scored.get(o.metric) for o in plan.objectives]
        if skipped and any(v is None for v in values):  # an objective the prediction cannot stand for
            self.study.tell(trial, state=TrialState.PRUNED)
            self.reporter.trial_done(trial.number, params, result, skipped, self._best())
            return TrialOutcome(trial.number, params, "PRUNED", metrics=metrics, feasible=False)
        if any(v is None or not math.isfinite(v) for v in values):
            trial.set_user_attr("error", f"objective values {values} are not all finite")
            self.study.tell(trial, state=TrialState.FAIL)
            self.reporter.trial_done(trial.number, params, None, "objective not finite", self._best())
            return TrialOutcome(trial.number, params, "FAIL", metrics=metrics, feasible=False)
        self.study.tell(trial, values if len(values) > 1 else values[0])
        notes = ([skipped] if skipped else [f"infeasible: {'; '.join(reasons)}"] if reasons else []) + flags
        self.reporter.trial_done(trial.number, params, result, "; ".join(notes) or None, self._best())
        self.reporter.front(accuracy_latency_front(self.study))
        return TrialOutcome(trial.number, params, "COMPLETE", values=values, metrics=metrics, feasible=feasible)

    def _best(self) -> optuna.trial.FrozenTrial | None:
        if len(self.plan.objectives) > 1:
            return None
        outcome = StudyOutcome(self.plan, self.study, self.baseline, [], self.constraints)
        best = outcome.best()
        return best[0] if best else None


def run_study(spec: ExperimentSpec, reporter: Reporter | None = None) -> StudyOutcome:
    reporter = reporter or Reporter()
    plan = plan_study(spec)
    with _run_lock(plan.run_dir):
        (plan.run_dir / "experiment.resolved.yaml").write_text(
            yaml.safe_dump(redact_secrets(spec.model_dump(mode="json")), sort_keys=False))
        strategy = get_strategy(plan.sweep.method)
        directions = [o.goal for o in plan.objectives]
        # A storage the user names may be shared with other producers (see producers.py).
        shared = spec.storage is not None
        storage = shared_storage(plan.storage, spec.heartbeat_seconds) if shared else plan.storage
        seed = producer_seed(spec.seed, plan.run_dir) if shared else spec.seed
        ctx = SearchContext(plan.sweep, seed, directions, plan.sweep_source, plan.run_dir)
        pruner = _pruner(plan)
        study = optuna.create_study(
            storage=storage, study_name=spec.name, load_if_exists=True, directions=directions,
            sampler=strategy.sampler(ctx), pruner=pruner,
        )
        stored = study.user_attrs.get("fingerprint")
        if stored is None:
            study.set_user_attr("fingerprint", plan.fingerprint)
            study.set_user_attr("objectives", [o.metric for o in plan.objectives])
            for name, _ in plan.references:
                for _ in range(plan.sweep.reference_repeats):
                    study.enqueue_trial({}, user_attrs={"reference": name})
        elif stored != plan.fingerprint:
            raise EdgetuneError(
                f"{plan.run_dir} holds study '{spec.name}' of a different experiment (recipe, sweep, data, "
                "model, fine-tuning or benchmark changed); give a new --run-dir or --name to start another study")
        # Alone, a RUNNING trial is one this run directory's producer left behind; shared, it may
        # be another producer's, and heartbeats decide.
        reclaimed = [] if shared else _reclaim_interrupted(study)
        if not shared and study.trials:
            # A resumed run seeded as the first would replay its first draws: the random start-up
            # trials of TPE and Bayes would be run twice.
            seed = ctx.seed = spec.seed + len(study.trials)
            study.sampler = strategy.sampler(ctx)
        torch.manual_seed(spec.seed)
        if spec.torch_threads:
            torch.set_num_threads(spec.torch_threads)
        if spec.remote is None:
            get_runtime(spec.benchmark.runtime)  # a missing extra fails before the baseline is measured
        bench = _workbench(plan)
        reporter.start(plan, counted(study), plan.limit, None)
        # The INT8 format first: an INT8 width profile is measured in it.
        if _may_use_int8(plan) and spec.benchmark.int8_format == "auto":
            _choose_int8_format(plan, bench, reporter)
        if _needs_width_table(plan):
            _measure_widths(plan, bench, reporter)
            chosen = resolve_measured_widths(plan.sweep, plan.targets, plan.schedule, bench.width_table,
                                             plan.sweep_source)
            # What each precision's profile is scaled by (INT8's unpruned time over FP32's, measured here).
            study.set_user_attr("width_profile_scales", {k: t.scale for k, t in bench.width_tables.items()})
            if chosen:
                study.set_user_attr("measured_widths", chosen)
                study.sampler = strategy.sampler(ctx)  # the space is known only now
                if plan.sweep.method == "grid":
                    plan.limit = min(plan.limit, grid_size(plan.sweep))
        baseline = _baseline(plan, bench, reporter.stage)
        constraints = plan.constraints + protocol_constraints(plan.sweep.protocol, baseline)
        reporter.start(plan, counted(study), plan.limit, baseline)
        if bench.width_table is not None and plan.sweep.predictor.warm_start and not study.user_attrs.get("warm_started"):
            _warm_start(plan, study, bench, constraints, baseline, seed)
        evaluator = _Evaluator(plan, study, bench, baseline, constraints, reporter)

        trackers = open_trackers(spec.tracking, spec.name, plan.run_dir)

        def evaluate(trial: optuna.Trial, params: dict[str, Any]) -> TrialOutcome:
            with heartbeat(storage, trial, spec.heartbeat_seconds):
                outcome = evaluator(trial, params)
            track(trackers, outcome, trial, plan.run_dir)
            return outcome

        if plan.sweep.method == "rl":
            fixed = set(fixed_values(plan.sweep))
            ctx.layers = layer_features(bench.baseline, bench.example(), plan.schedule, plan.sweep, plan.targets,
                                        fixed)
            ctx.baseline = baseline
            ctx.protocol_reward = lambda o: reward(plan.sweep.protocol, plan.objectives, o.metrics, baseline)
        # Queued trials first (references, retries of killed ones), before a strategy that
        # enqueues its own choices can be handed one of them.
        while study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            trial = study.ask()
            evaluate(trial, suggest(trial, plan.sweep) if not trial.user_attrs.get("reference") else {})
        if shared:
            drive_study(study, strategy, ctx, evaluate,
                        lambda: wait_or_done(study, counted, plan.limit, min(1.0, spec.heartbeat_seconds)))
        else:
            drive_study(study, strategy, ctx, evaluate,
                        lambda: counted(study) >= plan.limit or _skipped_too_often(study, plan))
        reporter.finish()
        outcome = StudyOutcome(plan, study, baseline, reclaimed, constraints)
        write_trials_csv(outcome, plan.run_dir / "trials.csv")
        return outcome


OTHER_PRECISION_STEP = 4
PROFILE_CALIBRATION = 32  # images to quantise a profiled width on: its speed, not its accuracy, is measured


def _precisions(plan: Plan) -> list[str]:
    """The experiment's precision and every other one a searched `precision` may take."""
    out = [plan.spec.benchmark.precision]
    for name, target in plan.targets.items():
        if target.section == "benchmark" and target.field == "precision":
            p = plan.sweep.parameters[name]
            out += [v for v in (p.values or [p.value]) if v not in out]
    return out


def _needs_width_table(plan: Plan) -> bool:
    """Measured rounding and measured width spaces need the profile; so does a predictor the
    sweep configures explicitly (to skip or warm-start on ratios without rounding)."""
    return (any(p.round_to == "measured" for p in plan.schedule.pruners.values()) or _measured_widths(plan.sweep)
            or "predictor" in plan.sweep.model_fields_set)


def _measure_widths(plan: Plan, bench: Workbench, reporter: Reporter) -> None:
    from edgetune.hardware.widths import width_table

    # Widths are measured where the candidates run; a device worker's target is not here.
    if plan.spec.remote is not None:
        raise ConfigError("measured widths (round_to: measured, widths: measured, predictor) are profiled on this "
                          "machine; with a device worker use round_to: 8 (or a multiple measured there)",
                          key="recipe.pruners.round_to")
    # Every filter/channel pruner's layers, so the predictor sees the whole candidate.
    pruned = [w for p_ in plan.schedule.pruners.values()
              if p_.method_and_scope()[0].startswith(("filters", "channels")) for w in p_.weights]
    for precision in _precisions(plan):
        spec = bench.benchmark.model_copy(update={"precision": precision})
        # Every width at the experiment's precision; another a sweep moves trials to is profiled
        # in steps of 4 (each width of an INT8 profile is a quantisation as well as a timing).
        step = 1 if precision == plan.spec.benchmark.precision else OTHER_PRECISION_STEP
        reporter.stage(f"width profile at {precision}")
        calibration = bench.calibration[:PROFILE_CALIBRATION] if bench.calibration is not None else None
        table = width_table(bench.baseline, bench.example(), bench.example(64).numpy(), spec, pruned,
                            progress=reporter.stage, calibration=calibration, step=step)
        if step != 1:
            table.scale = _precision_scale(plan, bench, spec, calibration)
        bench.width_tables[precision] = table
    bench.use_precision(plan.spec.benchmark.precision)


def _precision_scale(plan: Plan, bench: Workbench, spec: BenchmarkSpec, calibration: Any) -> float:
    """The unpruned network at `spec.precision` timed beside it at the experiment's precision."""
    from edgetune.export import export_onnx
    from edgetune.sensitivity.run import QUICK_BENCHMARK

    work = plan.run_dir / f"widths-{spec.precision}"
    work.mkdir(parents=True, exist_ok=True)
    onnx_path = work / "baseline.onnx"
    export_onnx(bench.baseline, bench.example(spec.batch_size), onnx_path)
    base_spec = BenchmarkSpec(**{**plan.spec.benchmark.model_dump(), **QUICK_BENCHMARK})
    reference = open_reference(onnx_path, base_spec, bench.baseline, bench.calibration, work / "reference")
    try:
        report = profile_artifact(onnx_path, BenchmarkSpec(**{**spec.model_dump(), **QUICK_BENCHMARK}),
                                  bench.example(64).numpy(), module=bench.baseline, calibration=calibration,
                                  reference=reference, work_dir=work)
    finally:
        reference.close()
    return float(report.metrics["latency_ratio"])


def _may_use_int8(plan: Plan) -> bool:
    return "int8" in _precisions(plan)


def _choose_int8_format(plan: Plan, bench: Workbench, reporter: Reporter) -> None:
    """Measure ONNX Runtime's INT8 formats on the baseline, here, once per target (cached), and
    quantise every candidate in the fastest within the accuracy tolerance."""
    from edgetune.benchspec import DEFAULT_INT8
    from edgetune.export import export_onnx
    from edgetune.hardware.formats import choose_int8_format, write_choice

    spec = plan.spec.benchmark
    if spec.runtime != "onnxruntime" or plan.spec.remote is not None:
        # OpenVINO has one INT8 path (NNCF); a device worker quantises on the device.
        bench.int8_format = DEFAULT_INT8 if spec.runtime == "onnxruntime" else None
        return
    work = plan.run_dir / "int8-formats"
    work.mkdir(parents=True, exist_ok=True)
    fp32 = work / "baseline.onnx"
    export_onnx(bench.baseline, bench.example(spec.batch_size), fp32)
    images = bench.data.normalize(bench.val.images).numpy()
    choice = choose_int8_format(fp32, spec, bench.calibration, images, bench.val.labels.numpy(), work,
                                progress=reporter.stage)
    write_choice(choice, plan.run_dir / "int8-formats.csv")
    bench.int8_format = choice.chosen
    bench.benchmark = bench.benchmark.model_copy(update={"int8_format": choice.chosen})
    reporter.stage(f"int8 format: {choice.chosen} ({choice.reason})")


def _warm_start(plan: Plan, study: optuna.Study, bench: Workbench, constraints: list[Constraint],
                baseline: dict[str, Any], seed: int) -> None:
    """Queue the predicted front's candidates before the sampler's own (once per study)."""
    opts = plan.sweep.predictor
    picks = warm_start(plan.sweep, plan.raw_schedule, plan.targets, bench.width_table, bench.staircases,
                       latency_budget(constraints, baseline), min(opts.warm_start, plan.limit), seed, opts.candidates)
    for c in picks:
        study.enqueue_trial(c.params, user_attrs={"warm_start": f"predicted x{c.predicted_ratio:.3f}, "
                                                                f"{c.kept:.0%} of channels kept"})
    study.set_user_attr("warm_started", len(picks))


def _skipped_too_often(study: optuna.Study, plan: Plan) -> bool:
    """A search whose sampler keeps proposing what the predictor rules out stops rather than
    spinning: skips are cheap, not free."""
    skipped = sum(1 for t in study.get_trials(deepcopy=False) if t.user_attrs.get("skipped"))
    return skipped >= SKIP_LIMIT * plan.limit


def track(trackers: list[Tracker], outcome: TrialOutcome, trial: optuna.Trial, run_dir: Path) -> None:
    """Tell each tracker; a tracker that fails (a W&B server away) is logged, not fatal: the
    study holds the trial whatever the tracker did."""
    if not trackers:
        return
    record = TrialRecord(outcome.number, outcome.state, dict(trial.params), dict(outcome.metrics or {}),
                         run_dir / "trials" / f"{outcome.number:04d}" / "model.onnx", trial.user_attrs.get("reference"))
    for tracker in trackers:
        try:
            tracker.log_trial(record)
        except Exception as exc:  # noqa: BLE001 - tracking is a copy; the study is the record
            logging.getLogger("edgetune").warning("tracker %s could not log trial %d: %s",
                                                  type(tracker).__name__, outcome.number, exc)


def _pruner(plan: Plan) -> optuna.pruners.BasePruner:
    stop = plan.sweep.early_stop
    if stop.method == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=max(stop.warmup_epochs - 1, 0))
    if stop.method == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(plan.spec.finetune.epochs, 1))
    return optuna.pruners.NopPruner()


def trials_frame(study: optuna.Study, baseline: dict[str, Any], objectives: list[Objective]):
    """One row per trial (the baseline first): state, objective values, `param.*`, metrics,
    feasibility and Pareto membership. What trials.csv holds and what reports analyse."""
    import pandas as pd

    best = {t.number for t in best_trials(feasible_trials(study), objectives)} if len(objectives) > 1 else set()
    rows = [{"trial": "baseline", "state": "BASELINE", **baseline}]
    for t in study.get_trials(deepcopy=False):
        metrics = {k: v for k, v in t.user_attrs.items() if k in METRICS or k.startswith(("throughput_b", "top1_epoch"))
                   or k in ("pruned_structures", "error", "stopped", "skipped", "warm_start", "infeasible", "reference",
                            "flags")}
        values = {f"value_{o.metric}": v for o, v in zip(objectives, t.values or [], strict=False)}
        rows.append({"trial": t.number, "state": t.state.name, **values,
                     **{f"param.{k}": v for k, v in t.params.items()}, **metrics,
                     "feasible": t.state == TrialState.COMPLETE and is_feasible(t),
                     "pareto": t.number in best,
                     "interrupted": bool(t.user_attrs.get("interrupted", False))})
    return pd.DataFrame(rows)


def write_trials_csv(outcome: StudyOutcome, path: Path) -> None:
    frame = trials_frame(outcome.study, outcome.baseline, outcome.plan.objectives)
    tmp = path.with_suffix(".tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)
