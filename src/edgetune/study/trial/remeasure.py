"""A latency taken on a busy host is kept but not trusted (runtimes/timing.py): it is measured
again from the trial's own exported file when a study resumes and when its search ends, so a
candidate that only looked slow (or fast) in a noisy spell gets a fair figure and may be picked.

A finished Optuna trial cannot change, so the new measurement is a new trial with the same
parameters, files and accuracy, `remeasure_of` naming the old one. The old one stays in the
record as it was measured (never feasible); the new one is told to the sampler like any other,
and does not count towards the study's target: no candidate was built for it.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from edgetune.config.benchmark import BenchmarkSpec
from edgetune.files import atomic_write_json
from edgetune.metrics.objectives import Constraint, violations
from edgetune.metrics.record import Recorded
from edgetune.metrics.table import add_ratios, compression_flags
from edgetune.search.base import constraint_values
from edgetune.study.planning.plan import Plan
from edgetune.study.records.results import recorded_metrics
from edgetune.study.storage.protect import set_aside
from edgetune.study.trial.candidate import adjusted
from edgetune.study.trial.profile import TargetProfile
from edgetune.study.trial.reporter import Reporter
from edgetune.study.trial.workbench import Workbench

# What a fresh measurement decides again; everything else (accuracy, sizes, the candidate) stays.
REJUDGED = ("latency_unreliable", "infeasible", "flags")


def to_remeasure(study: optuna.Study) -> list[FrozenTrial]:
    """Completed trials whose latency was not trusted and that no later trial measured again (a
    repeat answered from another trial is settled when that one is)."""
    trials = study.get_trials(deepcopy=False)
    done = {Recorded.of(t).remeasure_of for t in trials}
    return [t for t in trials if t.state == TrialState.COMPLETE and Recorded.of(t).latency_unreliable
            and t.number not in done and Recorded.of(t).duplicate_of is None]


def remeasure_unreliable(plan: Plan, study: optuna.Study, bench: Workbench, profile: TargetProfile,
                         constraints: list[Constraint], reporter: Reporter) -> list[int]:
    """Measure each untrusted trial again; the new trials' numbers."""
    added = []
    for old in to_remeasure(study):
        source = plan.paths.trial(old.number)
        if not (source / "model.onnx").is_file():  # another producer's trial, or its files removed
            reporter.stage(f"trial {old.number}: latency not trusted, and its model.onnx is not here to time again")
            continue
        reporter.stage(f"timing trial {old.number} again: {Recorded.of(old).latency_unreliable}")
        with tempfile.TemporaryDirectory(prefix="remeasure-", dir=source) as work:
            metrics = _measured_again(old, source, Path(work), plan, bench, profile)
        number = _add_trial(study, old, metrics, plan, constraints, profile.baseline)
        if number is None:
            continue
        target = plan.paths.trial(number)
        set_aside(target)
        shutil.copytree(source, target)
        saved = json.loads((source / "metrics.json").read_text()) if (source / "metrics.json").is_file() else {}
        atomic_write_json(target / "metrics.json", {**saved, "metrics": metrics, "remeasure_of": old.number}, indent=2)
        still = metrics.get("latency_unreliable")
        reporter.stage(f"trial {old.number} timed again as trial {number}: latency ratio "
                       f"{Recorded.of(old).latency_ratio or float('nan'):.3f} -> {metrics['latency_ratio']:.3f}"
                       + (f", still not trusted ({still})" if still else ", trusted"))
        added.append(number)
    return added


def _measured_again(old: FrozenTrial, source: Path, work: Path, plan: Plan, bench: Workbench,
                    profile: TargetProfile) -> dict[str, Any]:
    """The old trial's metrics with the timing taken again (its accuracy, deployed or not, is the
    same file's: not scored again)."""
    recipe = yaml.safe_load((source / "recipe.yaml").read_text()) or {}
    setup = profile.setup(BenchmarkSpec.model_validate(recipe.get("benchmark") or plan.spec.benchmark.model_dump()))
    done = bench.executor.measure(source / "model.onnx", setup.benchmark, bench.sample(),
                                  scoring=bench.scoring(setup.benchmark, score=False), work_dir=work)
    timed = {k: v for k, v in adjusted(done.metrics, setup.reference_ms).items() if not k.startswith("deployed_")}
    metrics = {k: v for k, v in recorded_metrics(old.user_attrs).items() if k not in REJUDGED}
    metrics.update(timed)
    add_ratios(metrics, profile.baseline)
    if metrics.get("predicted_latency_ratio") and metrics.get("latency_ratio"):
        metrics["prediction_error"] = metrics["predicted_latency_ratio"] / metrics["latency_ratio"] - 1
    return metrics


def _add_trial(study: optuna.Study, old: FrozenTrial, metrics: dict[str, Any], plan: Plan,
               constraints: list[Constraint], baseline: dict[str, Any]) -> int | None:
    """The measurement as a completed trial, judged as the evaluator judges one."""
    held, reasons = violations(constraints, metrics)
    values = [metrics.get(o.metric) for o in plan.objectives]
    if any(v is None or not math.isfinite(v) for v in values):
        return None
    attrs = {k: v for k, v in old.user_attrs.items() if k not in REJUDGED}
    attrs.update(metrics, remeasure_of=old.number)
    if reasons:
        attrs["infeasible"] = "; ".join(reasons)
    if flags := compression_flags(metrics, baseline):
        attrs["flags"] = "; ".join(flags)
    study.add_trial(optuna.trial.create_trial(
        params=old.params, distributions=old.distributions, values=values, user_attrs=attrs,
        constraints=constraint_values([c.metric for c in constraints], held)))
    return max(t.number for t in study.get_trials(deepcopy=False) if Recorded.of(t).remeasure_of == old.number)
