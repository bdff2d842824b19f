"""A search that survives a crash: the Optuna study in a storage under the run directory, the
target profiled once, each candidate's files kept, and resumption where it stopped.

Only one process works a run directory at a time (a lock file), so a trial still marked
RUNNING when a run starts belongs to a process that died: it is marked failed with
`interrupted`, and its parameters are queued again so that candidate is not lost.
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch
import torch_pruning as tp
from optuna.trial import TrialState

from edgetune.catalog import RUNTIMES, load, strategy_traits
from edgetune.config.architecture import architecture_of, checkpoint_of
from edgetune.config.experiment import ExperimentSpec
from edgetune.data.custom import load_factory_data
from edgetune.data.splits import load_dataset
from edgetune.errors import ConfigError, EdgetuneError
from edgetune.executors import open_executor
from edgetune.files import UnwritableError, atomic_write_text
from edgetune.hardware.predict import latency_budget, resolve_measured_widths, warm_start
from edgetune.metrics.objectives import Constraint, protocol_constraints, reward
from edgetune.metrics.record import Recorded
from edgetune.metrics.table import recorded_forms
from edgetune.search.base import SearchContext, Strategy, TrialOutcome, get_strategy
from edgetune.search.loop import drive_study
from edgetune.search.space import fixed_values, suggest
from edgetune.search.space.recipe import layer_features
from edgetune.study.final import run_final
from edgetune.study.planning.plan import Given, Plan, plan_study
from edgetune.study.planning.resolved import changed_since, resolved_experiment
from edgetune.study.preflight import Bound, check_bounds, check_metric_names, user_metric_names
from edgetune.study.records.results import StudyOutcome, counted, target_reached, write_trials_csv
from edgetune.study.storage.backends import (
    heartbeat,
    producer_seed,
    reclaim_interrupted,
    shared_storage,
    wait_or_done,
)
from edgetune.study.storage.protect import check_before_opening
from edgetune.study.trial.evaluator import Evaluator, load_references
from edgetune.study.trial.network import check_input_shape, load_companion, load_network
from edgetune.study.trial.profile import TargetProfile, measure_target
from edgetune.study.trial.recovery import check_recovery_images, with_recovery
from edgetune.study.trial.remeasure import remeasure_unreliable
from edgetune.study.trial.reporter import Reporter
from edgetune.study.trial.workbench import Workbench
from edgetune.tracking import Tracker, TrialRecord, open_trackers

optuna.logging.set_verbosity(optuna.logging.WARNING)

SKIP_LIMIT = 10  # skipped candidates per counted trial before a search gives up


def run_study(spec: ExperimentSpec, reporter: Reporter | None = None, given: Given | None = None) -> StudyOutcome:
    """`given`: a network and data handed over from Python in place of the file's (edgetune.tune)."""
    reporter = reporter or Reporter()
    plan = plan_study(spec, given)
    # The data, the network and the recipe at the sweep's bounds are checked before anything is
    # written: a mistake found here leaves no run directory or study behind.
    bench = _workbench(plan)
    references, _ = _checked_before_writing(plan, bench, ("most pruning",))
    with _run_lock(plan.run_dir):
        strategy = get_strategy(plan.sweep.method)
        if plan.storage == plan.paths.default_storage:
            check_before_opening(plan.paths, spec.name)
        storage = shared_storage(plan.storage, spec.heartbeat_seconds) if plan.shared else plan.storage
        study, seed = _open_study(plan, strategy, storage)
        # Only once the study is this experiment's: a refused run leaves the record of the last one.
        atomic_write_text(plan.paths.resolved_experiment, resolved_experiment(plan))
        bench = with_recovery(plan, study, bench, reporter)
        # Alone, a RUNNING trial is one this run directory's producer left behind; shared, it may
        # be another producer's, and heartbeats decide.
        reclaimed = [] if plan.shared else reclaim_interrupted(study)
        reporter.start(plan, counted(study), plan.limit, None)
        if unused := plan.sweep.unused():
            reporter.stage(f"{plan.sweep_source}: read and unused here (W&B's): {', '.join(unused)}")
        for note in plan.schedule.notes():
            reporter.stage(f"recipe: {note}")
        profile = measure_target(plan, bench, reporter)
        _check_user_metrics(plan, study, profile.baseline)
        plan = _with_measured_widths(plan, study, profile)
        constraints = plan.constraints + protocol_constraints(plan.sweep.protocol, profile.baseline)
        ctx = _search_context(plan, seed, bench, profile)
        study.sampler = strategy.sampler(ctx)  # the space and the layers are known only now
        reporter.start(plan, counted(study), plan.limit, profile.baseline)
        if profile.width_table is not None and plan.sweep.predictor.warm_start and not study.user_attrs.get(
                "warm_started"):
            _warm_start(plan, study, profile, constraints, seed)
        evaluator = Evaluator(plan, study, bench, profile, constraints, reporter, references)
        # A latency not trusted is timed again on resuming (so the sampler learns from it) and
        # when the search ends (so the pick may take it).
        remeasure_unreliable(plan, study, bench, profile, constraints, reporter)
        _drive(plan, study, strategy, ctx, evaluator, storage)
        remeasure_unreliable(plan, study, bench, profile, constraints, reporter)
        reporter.finish()
        write_trials_csv(StudyOutcome(plan, study, profile.baseline, reclaimed, constraints), plan.paths.trials_csv)
        bench.executor.close()
        final = run_final(plan, study, bench, constraints, profile.baseline, reporter)
        outcome = StudyOutcome(plan, study, profile.baseline, reclaimed, constraints, final)
        if final is not None:
            write_trials_csv(outcome, plan.paths.trials_csv)
        return outcome


@contextmanager
def _run_lock(run_dir: Path) -> Iterator[None]:
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        fh = open(run_dir / ".lock", "w")  # noqa: SIM115 - held for the whole run, closed below
    except OSError as exc:
        raise EdgetuneError(f"cannot open the run directory's lock file {run_dir / '.lock'}: {exc.strerror or exc}"
                            + ("; a folder is in its place: remove it" if (run_dir / ".lock").is_dir() else "")) from None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EdgetuneError(f"another edgetune process is running in {run_dir}") from None
        yield


def _open_study(plan: Plan, strategy: Strategy, storage: Any) -> tuple[optuna.Study, int]:
    """Create the study or resume it (refusing one of a different experiment); the sampler's seed."""
    spec = plan.spec
    directions = [o.goal for o in plan.objectives]
    seed = producer_seed(spec.seed, plan.run_dir) if plan.shared else spec.seed
    study = optuna.create_study(
        storage=storage, study_name=spec.name, load_if_exists=True, directions=directions,
        sampler=strategy.sampler(SearchContext(plan.sweep, seed, directions, plan.sweep_source, plan.run_dir)),
        pruner=_pruner(plan))
    stored = study.user_attrs.get("fingerprint")
    if stored is None:
        study.set_user_attr("fingerprint", plan.fingerprint)
        study.set_user_attr("calibrate", plan.spec.calibrate.model_dump())
        study.set_user_attr("finetune_schedule", plan.spec.finetune.schedule)
        study.set_user_attr("objectives", [o.metric for o in plan.objectives])
        for ref in plan.references:
            for _ in range(plan.sweep.reference_repeats):
                study.enqueue_trial({}, user_attrs={"reference": ref.name})
    elif stored != plan.fingerprint:
        if not plan.shared and all(t.state == TrialState.WAITING for t in study.trials):
            # Created by a run that stopped on a mistake before any trial: nothing to lose, so
            # the corrected experiment starts it again rather than being refused as another.
            optuna.delete_study(study_name=spec.name, storage=storage)
            return _open_study(plan, strategy, storage)
        raise EdgetuneError(
            f"{plan.run_dir} holds study '{spec.name}' of a different experiment ({changed_since(plan)}); give a new "
            "--run-dir or --name to start another study, or the settings it was made with to resume it")
    if not plan.shared and study.trials:
        # A resumed run seeded as the first would replay its first draws: the random start-up
        # trials of TPE and Bayes would be run twice.
        seed = spec.seed + len(study.trials)
    return study, seed


def _pruner(plan: Plan) -> optuna.pruners.BasePruner:
    stop = plan.sweep.early_stop
    if stop.method == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=max(stop.warmup_epochs - 1, 0))
    if plan.sweep.early_terminate is not None:
        low, high = plan.sweep.early_terminate.resources(plan.spec.finetune.epochs)
        return optuna.pruners.HyperbandPruner(min_resource=low, max_resource=high,
                                              reduction_factor=int(plan.sweep.early_terminate.eta))
    if stop.method == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(plan.spec.finetune.epochs, 1))
    return optuna.pruners.NopPruner()


@dataclass(frozen=True)
class DryRun:
    """What `edgetune run --dry-run` found: the plan, the unpruned network's size, and the recipe
    at the sweep's two bounds. Nothing was measured, trained or written."""

    plan: Plan
    macs: float
    parameters: float
    bounds: list[Bound]


def dry_run(spec: ExperimentSpec, given: Given | None = None) -> DryRun:
    """Validate the experiment, recipe and sweep against the network and the data, and apply the
    recipe at the least and the most pruning the sweep allows, without a study or a timing."""
    plan = plan_study(spec, given)
    bench = _workbench(plan, remote=False)  # no worker is asked anything
    try:
        _, bounds = _checked_before_writing(plan, bench, ("least pruning", "most pruning"))
        example = bench.example()
        macs, count = tp.utils.count_ops_and_params(bench.start, example_inputs=example)
    finally:
        bench.executor.close()
    return DryRun(plan, float(macs), float(count), bounds)


def _checked_before_writing(plan: Plan, bench: Workbench, bounds: tuple[str, ...]
                            ) -> tuple[dict[str, Any], list[Bound]]:
    """What the run and `--dry-run` both check before anything is written, so that what the dry
    run passes the run does not refuse: the recipe at the sweep's `bounds`, the enqueued
    references (loaded), the user's metric names; the references and the bounds."""
    applied = check_bounds(plan, bench, bounds)
    references = load_references(plan, bench)
    check_metric_names(plan, bench)
    return references, applied


def _workbench(plan: Plan, remote: bool = True) -> Workbench:
    """The data, the unpruned network and the executor, loaded once for every trial."""
    spec = plan.spec
    torch.manual_seed(spec.seed)
    if spec.torch_threads:
        torch.set_num_threads(spec.torch_threads)
    if spec.remote is None:  # a missing extra fails before the data and the baseline are loaded
        load(RUNTIMES, spec.benchmark.runtime, "runtime", "benchmark.runtime")
    if plan.given.data is not None:
        data = plan.given.data
    elif spec.data.factory is not None:
        data = load_factory_data(spec.data.factory, spec.data.kwargs, spec.data.item_keys)
    else:
        data = load_dataset(spec.data.name, spec.data.root, val_size=spec.data.val_size,
                            split_seed=spec.data.split_seed)
    check_input_shape(spec.model.input_shape, data)
    for key, asked, split in (("train_subset", spec.data.train_subset, data.train), ("val_subset",
                                                                                   spec.data.val_subset, data.val)):
        if asked is not None and asked > len(split):
            raise ConfigError(f"data.{key} is {asked}, and the data has {len(split)} {key.split('_')[0]} images: give "
                              f"at most {len(split)}, or leave it out to use them all", key=f"data.{key}")
    model, meta = load_network(spec.model.checkpoint, data, spec.model.name, plan.factory)
    calibration = data.train.subset(spec.benchmark.calibration_images, seed=spec.seed + 1).images
    bench = Workbench(
        data=data, train=data.train.subset(spec.data.train_subset, seed=spec.seed),
        val=data.val.subset(spec.data.val_subset, seed=spec.seed), start=model.eval(),
        executor=open_executor({"remote": spec.remote if remote else None}), calibration=data.normalize(calibration).numpy(), device=spec.device,
        seed=spec.seed, meta=meta, metric=plan.metric, loss=plan.loss,
        score_onnx=spec.score_with == "onnxruntime" or (spec.score_with == "auto" and spec.device == "cpu"))
    check_recovery_images(spec, len(bench.train))
    for key, distill in (("finetune.distill.teacher", spec.finetune.distill),
                         ("final.distill.teacher", spec.final.distill if spec.final else None)):
        if distill is not None and distill.teacher is not None and checkpoint_of(distill.teacher) not in bench.teachers:
            bench.teachers[checkpoint_of(distill.teacher)] = load_companion(
                checkpoint_of(distill.teacher), data, bench.network_label, "teacher", key, architecture_of(distill.teacher))[0]
    if plan.given.teacher is not None:
        taught = load_companion(plan.given.teacher, data, bench.network_label, "teacher", "teacher")[0]
        bench = dataclasses.replace(bench, given_teacher=taught)
    return bench


def _check_user_metrics(plan: Plan, study: optuna.Study, baseline: dict[str, Any]) -> None:
    """The sweep's metrics that are the user's `evaluate` function's must be among what it
    returned for the baseline; those it returns are kept beside the built-in ones."""
    theirs = user_metric_names(plan, baseline)
    if theirs is not None:
        study.set_user_attr("user_metrics", [*theirs, *(f for k in theirs for f in recorded_forms(k)[1:])])


def _with_measured_widths(plan: Plan, study: optuna.Study, profile: TargetProfile) -> Plan:
    """Record what the width profile decided, and the plan whose sweep holds the measured widths."""
    if not profile.width_tables:
        return plan
    # What each precision's profile is scaled by (INT8's unpruned time over FP32's, measured here).
    study.set_user_attr("width_profile_scales", {k: t.scale for k, t in profile.width_tables.items()})
    sweep, chosen = resolve_measured_widths(plan.sweep, plan.targets, plan.schedule, profile.width_table,
                                            plan.sweep_source)
    if not chosen:
        return plan
    study.set_user_attr("measured_widths", chosen)
    return plan.with_measured_widths(sweep)


def _search_context(plan: Plan, seed: int, bench: Workbench, profile: TargetProfile) -> SearchContext:
    directions = [o.goal for o in plan.objectives]
    if not strategy_traits(plan.sweep.method).layer_features:
        return SearchContext(plan.sweep, seed, directions, plan.sweep_source, plan.run_dir)
    baseline = profile.baseline
    layers = layer_features(bench.start, bench.example(), plan.schedule, plan.sweep, plan.targets,
                            set(fixed_values(plan.sweep)))
    return SearchContext(plan.sweep, seed, directions, plan.sweep_source, plan.run_dir, layers, baseline,
                         lambda o: reward(plan.sweep.protocol, plan.objectives, o.metrics, baseline))


def _warm_start(plan: Plan, study: optuna.Study, profile: TargetProfile, constraints: list[Constraint],
                seed: int) -> None:
    """Queue the predicted front's candidates before the sampler's own (once per study)."""
    opts, table = plan.sweep.predictor, profile.width_table
    picks = warm_start(plan.sweep, plan.raw_schedule, plan.targets, table,  # type: ignore[arg-type]
                       latency_budget(constraints, profile.baseline), min(opts.warm_start, plan.limit), seed)
    for c in picks:
        study.enqueue_trial(c.params, user_attrs={"warm_start": f"predicted x{c.predicted_ratio:.3f}, "
                                                                f"{c.kept:.0%} of channels kept"})
    study.set_user_attr("warm_started", len(picks))


def _drive(plan: Plan, study: optuna.Study, strategy: Strategy, ctx: SearchContext, evaluator: Evaluator,
           storage: Any) -> None:
    """Queued trials first (references, retries of killed ones, the warm start), before a strategy
    that enqueues its own choices can be handed one of them; then the strategy until the target."""
    spec = plan.spec
    trackers = open_trackers(spec.tracking, spec.name, plan.run_dir)

    def evaluate(trial: optuna.Trial, params: dict[str, Any]) -> TrialOutcome:
        _keep_what_is_done(plan, study, evaluator.profile.baseline)
        with heartbeat(storage, trial, spec.heartbeat_seconds):
            outcome = evaluator(trial, params)
        track(trackers, outcome, trial, plan)
        return outcome

    while study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        trial = study.ask()
        evaluate(trial, suggest(trial, plan.sweep) if not Recorded.of(trial).reference else {})
    if plan.shared:
        done = lambda: wait_or_done(study, counted, plan.limit, min(1.0, spec.heartbeat_seconds))
    else:
        done = lambda: counted(study) >= plan.limit or _skipped_too_often(study, plan)
    drive_study(study, strategy, ctx, evaluate, lambda: done() or _reached(plan, study))


def _keep_what_is_done(plan: Plan, study: optuna.Study, baseline: dict[str, Any]) -> None:
    """Before each trial, everything finished so far: trials.csv rewritten (atomically), and a
    copy of the study database taken with sqlite3's online backup, which a damaged database
    can be replaced by (edgetune report says so)."""
    write_trials_csv(StudyOutcome(plan, study, baseline, [], []), plan.paths.trials_csv)
    if plan.storage != plan.paths.default_storage or not plan.paths.database.is_file():
        return
    tmp = plan.paths.database_backup.with_suffix(".bak.tmp")
    try:
        with closing(sqlite3.connect(plan.paths.database)) as source, closing(sqlite3.connect(tmp)) as copy:
            source.backup(copy)
        os.replace(tmp, plan.paths.database_backup)
    except (OSError, sqlite3.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise UnwritableError(f"cannot write the database's copy {plan.paths.database_backup}: {reason}"
                              + ("; a folder is in its place: move it away" if plan.paths.database_backup.is_dir()
                                 else "")) from None


def _reached(plan: Plan, study: optuna.Study) -> bool:
    """W&B's `metric.target`: no new trial once a feasible one reached it (said once, kept)."""
    metric = plan.sweep.metric
    names = [o.metric.lower() for o in plan.sweep.objective_list()]
    objective = plan.objectives[names.index(metric.name.lower())] if metric.name.lower() in names else None
    if objective is None or metric.target is None:
        return False
    number = target_reached(study, objective.metric, objective.goal, metric.target)
    if number is not None and not study.user_attrs.get("target_reached"):
        study.set_user_attr("target_reached", number)
        logging.getLogger(__name__).warning("trial %d reached the sweep's target (%s %s %g): no new trials",
                                            number, objective.metric, "<=" if objective.goal == "minimize" else ">=",
                                            metric.target)
    return number is not None


def _skipped_too_often(study: optuna.Study, plan: Plan) -> bool:
    """A search whose sampler keeps proposing what the predictor rules out stops rather than
    spinning: skips are cheap, not free."""
    skipped = sum(1 for t in study.get_trials(deepcopy=False) if Recorded.of(t).skipped)
    return skipped >= SKIP_LIMIT * plan.limit


def track(trackers: list[Tracker], outcome: TrialOutcome, trial: optuna.Trial, plan: Plan) -> None:
    """Tell each tracker; a tracker that fails (a W&B server away) is logged, not fatal: the
    study holds the trial whatever the tracker did."""
    if not trackers:
        return
    record = TrialRecord(outcome.number, outcome.state.name, dict(trial.params), dict(outcome.metrics or {}),
                         plan.paths.onnx(outcome.number), Recorded.of(trial).reference)
    for tracker in trackers:
        try:
            tracker.log_trial(record)
        except Exception as exc:  # noqa: BLE001 - tracking is a copy; the study is the record
            logging.getLogger("edgetune").warning("tracker %s could not log trial %d: %s",
                                                  type(tracker).__name__, outcome.number, exc)
