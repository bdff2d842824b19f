"""What a study holds, counted and ranked one way for everyone: the runner's stopping rule, the
results table, `trials.csv`, reports and `edgetune export` all read it here."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import yaml
from optuna.trial import FrozenTrial, TrialState

from edgetune.errors import EdgetuneError
from edgetune.files import atomic_write_bytes
from edgetune.metrics.objectives import Constraint, Objective, pareto_front
from edgetune.metrics.record import Recorded
from edgetune.metrics.table import METRICS
from edgetune.models.factory import ModelFactory
from edgetune.search.base import is_feasible
from edgetune.study.planning.plan import Plan
from edgetune.study.records.held import FinalOutcome, with_final
from edgetune.study.storage.backends import load_study, retried_numbers
from edgetune.study.storage.protect import database_problem, recovery
from edgetune.study.storage.rundir import RunDir

# Recorded beside the metrics in trials.csv: why a trial ended as it did.
NOTES = ("pruned_structures", "error", "stopped", "skipped", "warm_start", "infeasible", "reference", "flags",
         "duplicate_of", "latency_unreliable", "remeasure_of", "rejected_early", "accepted_early", "top1_images", "precision", "timed_after")


def counted(study: optuna.Study | list[FrozenTrial]) -> int:
    """Search trials that count towards the target: finished, stopped early, or failed for a
    reason other than a kill (a killed trial's candidate is queued again and that copy counts).
    Reference trials come on top, and so do candidates skipped on their predicted latency (they
    cost a pruning and an evaluation, not a measurement). A repeat of an earlier candidate counts:
    the sampler chose it (a grid's points are its own), though it cost no training. A latency
    timed again (`remeasure_of`) is the same candidate's: it does not count."""
    trials = study.get_trials(deepcopy=False) if isinstance(study, optuna.Study) else study
    retried = retried_numbers(trials)
    n = 0
    for t in trials:
        record = Recorded.of(t)
        if not record.counts:
            continue
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
                t.state == TrialState.FAIL and not record.interrupted and t.number not in retried):
            n += 1
    return n


def feasible_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Completed search trials whose every constraint held (references and repeats of an
    earlier candidate apart)."""
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if is_feasible(t) and not Recorded.of(t).reference and Recorded.of(t).duplicate_of is None]


def target_reached(study: optuna.Study, metric: str, goal: str, target: float | None) -> int | None:
    """W&B's `metric.target`: the first feasible trial whose metric reached it (by `goal`)."""
    if target is None:
        return None
    for t in feasible_trials(study):
        value = Recorded.of(t).value(metric)
        if value is not None and (value <= target if goal == "minimize" else value >= target):
            return t.number
    return None


def best_trials(trials: list[FrozenTrial], objectives: list[Objective]) -> list[FrozenTrial]:
    """Single objective: the trials best first. Several: their Pareto front, by the first."""
    sign = 1.0 if objectives[0].goal == "minimize" else -1.0
    if len(objectives) > 1:
        trials = pareto_front([(t, list(t.values)) for t in trials], objectives)
    return sorted(trials, key=lambda t: sign * t.values[0])


def study_objectives(study: optuna.Study) -> list[Objective]:
    """The objectives a stored study recorded (their directions when it recorded no names)."""
    names = study.user_attrs.get("objectives") or [""] * len(study.directions)
    return [Objective(m, d.name.lower()) for m, d in zip(names, study.directions, strict=False)]


def best_trial_number(study: optuna.Study) -> int:
    """The single best feasible trial, or an error that says why there is none."""
    goals = study_objectives(study)
    ranked = best_trials(feasible_trials(study), goals)
    if not ranked:
        raise EdgetuneError("no feasible completed trial yet: nothing to call best")
    if len(goals) > 1:
        front = sorted(t.number for t in ranked)
        raise EdgetuneError(f"this study has {len(goals)} objectives and no single best; "
                            f"give --trial with one of its Pareto front: {', '.join(map(str, front))}")
    return ranked[0].number


def accuracy_latency_front(study: optuna.Study, keep: Any = None) -> list[tuple[int, float, float]]:
    """The feasible trials (those `keep` accepts) no other beats on both measured latency and
    top-1, fastest first."""
    points = []
    for t in feasible_trials(study):
        if keep is not None and not keep(t):
            continue
        latency, top1 = Recorded.of(t).latency_ms, Recorded.of(t).top1
        if latency is not None and top1 is not None:
            points.append(((t.number, float(latency), float(top1)), [float(latency), float(top1)]))
    front = pareto_front(points, [Objective("latency", "minimize"), Objective("top1", "maximize")])
    return sorted(front, key=lambda p: (p[1], -p[2]))


@dataclass
class StudyOutcome:
    plan: Plan
    study: optuna.Study
    baseline: dict[str, Any]
    reclaimed: list[int]
    constraints: list[Constraint]
    final: FinalOutcome | None = None

    def feasible(self) -> list[FrozenTrial]:
        return feasible_trials(self.study)

    def best(self) -> list[FrozenTrial]:
        return best_trials(self.feasible(), self.plan.objectives)

    def references(self) -> dict[str, dict[str, tuple[float, float, int]]]:
        """Each reference recipe's repeats summarised: metric -> (mean, std, n)."""
        groups: dict[str, list[FrozenTrial]] = {}
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if (name := Recorded.of(t).reference) is not None:
                groups.setdefault(name, []).append(t)
        out = {}
        for name, trials in groups.items():
            out[name] = {}
            for key in ("top1", "top1_before_ft", "latency_ms", "latency_ratio", "latency_adj_ms", "macs", "params",
                        "throughput"):
                vals = [v for t in trials if (v := Recorded.of(t).value(key)) is not None]
                if vals:
                    out[name][key] = (float(np.mean(vals)), float(np.std(vals)), len(vals))
        return out


def recorded_metrics(attrs: dict[str, Any], also: tuple[str, ...] = ()) -> dict[str, Any]:
    """The metrics among a trial's user attributes, and the keys in `also`, in their order (the
    rest are bookkeeping)."""
    return {k: v for k, v in attrs.items()
            if k in METRICS or k.startswith(("throughput_b", "top1_epoch", "seconds_")) or k in also
            or k == "overhead_share"}


def trials_frame(study: optuna.Study, baseline: dict[str, Any], objectives: list[Objective]) -> pd.DataFrame:
    """One row per trial (the baseline first): state, objective values, `param.*`, metrics,
    feasibility, Pareto membership and `rank` (1 is the study's best feasible trial, by
    `best_trials`: the rule the headline and the runner's best line read). What trials.csv holds
    and what reports analyse."""
    ranked = {t.number: i + 1 for i, t in enumerate(best_trials(feasible_trials(study), objectives))}
    best = set(ranked) if len(objectives) > 1 else set()
    rows = [{"trial": "baseline", "state": "BASELINE", **baseline}]
    also = (*NOTES, *study.user_attrs.get("user_metrics", []))  # the user's `evaluate` metrics too
    for t in study.get_trials(deepcopy=False):
        metrics = recorded_metrics(t.user_attrs, also=also)
        values = {f"value_{o.metric}": v for o, v in zip(objectives, t.values or [], strict=False)}
        rows.append({"trial": t.number, "state": t.state.name, **values,
                     **{f"param.{k}": v for k, v in {**t.params, **Recorded.of(t).applied_params}.items()}, **metrics,
                     "feasible": t.state == TrialState.COMPLETE and is_feasible(t),
                     "pareto": t.number in best, "rank": ranked.get(t.number),
                     "interrupted": Recorded.of(t).interrupted})
    frame = pd.DataFrame(rows)
    for column in ("duplicate_of", "remeasure_of", "rank", "rung", "norms_reestimated", "layers_refitted"):  # counts
        if column in frame:
            frame[column] = frame[column].astype("Int64")
    return frame


def write_trials_csv(outcome: StudyOutcome, path: Path) -> None:
    frame = with_final(trials_frame(outcome.study, outcome.baseline, outcome.plan.objectives),
                       outcome.plan.paths.final)
    atomic_write_bytes(path, frame.to_csv(index=False).encode())


def run_factory(run_dir: Path) -> ModelFactory | None:
    """The user's network builder the run's experiment named (its trials' checkpoints need it)."""
    resolved = RunDir(run_dir).resolved_experiment
    model = (yaml.safe_load(resolved.read_text()) or {}).get("model") or {} if resolved.is_file() else {}
    return ModelFactory(model["factory"], model.get("kwargs") or {}) if model.get("factory") else None


def open_study(run_dir: Path, storage: str | None = None) -> optuna.Study:
    """The study a run directory records (its resolved experiment names the storage)."""
    paths = RunDir(run_dir)
    if not paths.resolved_experiment.is_file():
        raise EdgetuneError(f"{run_dir} holds no edgetune study (no experiment.resolved.yaml); give the run directory "
                            "that `edgetune run` wrote")
    spec = yaml.safe_load(paths.resolved_experiment.read_text())
    storage = storage or spec.get("storage") or paths.default_storage
    if ":***@" in storage:
        raise EdgetuneError(f"{run_dir} records its study in {storage}, whose password is not kept; give --storage")
    if storage == paths.default_storage and not paths.database.is_file():  # reading never creates one
        raise EdgetuneError(f"{paths.database} is missing: the study of {run_dir} is gone"
                            + _recovery(paths))
    problem = database_problem(paths.database) if storage == paths.default_storage else None
    if problem is not None:  # opened by Optuna, an empty file would get a schema written into it
        raise EdgetuneError(f"{paths.database} {problem}: the study of {run_dir} cannot be read" + _recovery(paths))
    try:
        return load_study(spec["name"], storage)
    except KeyError:  # Optuna's "Record does not exist": a database without this study
        raise EdgetuneError(f"{storage} holds no study named {spec['name']!r}" + _recovery(paths)) from None
    except Exception as exc:
        if type(exc).__module__.startswith("sqlalchemy") or isinstance(exc, sqlite3.DatabaseError):
            raise EdgetuneError(f"{paths.database if storage == paths.default_storage else storage} cannot be read as "
                                f"a study ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})"
                                + _recovery(paths)) from None
        raise


def _recovery(paths: RunDir) -> str:
    return "; " + recovery(paths)
