"""One trial, end to end: the sampler's parameters become a recipe, the recipe a candidate, the
candidate a measurement, and the measurement a verdict told to Optuna exactly once."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from dataclasses import dataclass, field
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState

from edgetune.catalog import runtime_traits
from edgetune.compress.base import CompressionRecord
from edgetune.config.experiment import BenchmarkSpec, CalibrateSpec, FinetuneSpec
from edgetune.config.recipe import Schedule
from edgetune.errors import ConfigError, RunDirError
from edgetune.hardware.predict import kept_widths, latency_budget, predicted_metrics, skip_margin
from edgetune.metrics.objectives import Constraint, violations
from edgetune.metrics.record import Recorded
from edgetune.metrics.table import add_ratios, compression_flags
from edgetune.search.base import TrialOutcome, record_constraints
from edgetune.search.space import apply
from edgetune.study.planning.plan import Plan
from edgetune.study.records.results import (
    accuracy_latency_front,
    best_trials,
    feasible_trials,
    recorded_metrics,
)
from edgetune.study.storage.protect import set_aside
from edgetune.study.trial.candidate import (
    CandidateResult,
    Ending,
    Hooks,
    StopTrial,
    TrialSetup,
    Workbench,
    run_candidate,
)
from edgetune.study.trial.clock import StageClock
from edgetune.study.trial.network import load_companion
from edgetune.study.trial.profile import TargetProfile
from edgetune.study.trial.reject import rejection
from edgetune.study.trial.reporter import Reporter
from edgetune.study.trial.rungs import Rung0
from edgetune.training.loop import EvalResult

# Settings naming the user's code: when it breaks its contract in a trial, it would in every trial.
USER_CODE = ("loss", "evaluate")


def load_references(plan: Plan, bench: Workbench) -> dict[str, tuple[Any, dict[str, Any]]]:
    """Every enqueued checkpoint's network, loaded and checked against the data before anything
    is written: an unreadable or mismatched one is refused before the run directory is touched."""
    return {ref.name: load_companion(ref.factory or ref.checkpoint, bench.data, bench.network_label,  # type: ignore[arg-type]
                                     "reference", "references" if ref.factory else "enqueue", ref.architecture)
            for ref in plan.references if ref.network}


def reference_bench(bench: Workbench, loaded: tuple[Any, dict[str, Any]]) -> Workbench:
    """The workbench with another checkpoint's network as the start (the unpruned
    network still teaches it, when it is fine-tuned with distillation)."""
    model, meta = loaded
    return dataclasses.replace(bench, start=model, meta=meta, unpruned=bench.start)


def merged(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """`base` with `update` written in, nested sections merged rather than replaced."""
    out = dict(base)
    for key, value in update.items():
        out[key] = merged(out[key] or {}, value) if isinstance(value, dict) and key in out else value
    return out


@dataclass
class Verdict:
    """How a trial ends: its state, the objective values to tell, and what the reporter shows."""

    state: TrialState  # COMPLETE, PRUNED or FAIL
    result: CandidateResult | None = None
    values: list[float] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    feasible: bool = False
    note: str | None = None


class Evaluator:
    """What every strategy calls with a trial and its parameters."""

    def __init__(self, plan: Plan, study: optuna.Study, bench: Workbench, profile: TargetProfile,
                 constraints: list[Constraint], reporter: Reporter,
                 loaded: dict[str, tuple[Any, dict[str, Any]]]) -> None:
        self.plan, self.study, self.bench, self.profile = plan, study, bench, profile
        self.constraints, self.reporter = constraints, reporter
        self.references = {ref.name: ref for ref in plan.references}
        # Another checkpoint's network, loaded and checked against the data before the run began
        # (load_references).
        self.benches = {name: reference_bench(bench, model) for name, model in loaded.items()}

    def __call__(self, trial: optuna.Trial, params: dict[str, Any]) -> TrialOutcome:
        reference = Recorded.of(trial).reference
        if reference:
            params = {}
        try:
            result, setup, state = self._run(trial, params, reference)
        except Exception as exc:  # a broken candidate must not end the search, a broken user function must
            error = f"{type(exc).__name__}: {exc}"
            trial.set_user_attr("error", error[:2000])
            verdict = Verdict(TrialState.FAIL, note=error)
            unwritable = self._unwritable(trial.number, exc)
            if unwritable is not None:  # every trial would lose its files: stop, naming the path
                self._tell(trial, params, verdict)
                raise unwritable from exc
            if isinstance(exc, ConfigError) and exc.key in USER_CODE:  # every candidate would break on it
                self._tell(trial, params, verdict)
                raise
        else:
            verdict = self._judge(trial, result, setup, state)
        return self._tell(trial, params, verdict)

    def _run(self, trial: optuna.Trial, params: dict[str, Any], reference: str | None
             ) -> tuple[CandidateResult | None, TrialSetup, TrialState]:
        """Build and measure the candidate; (its result, its target, COMPLETE or PRUNED)."""
        spec = self.plan.spec
        if reference:
            ref = self.references[reference]
            schedule, over = ref.schedule, {"benchmark": {"precision": ref.precision}} if ref.precision else {}
        else:
            schedule, over = apply(self.plan.raw_schedule, self.plan.targets, params, self.plan.sweep_source)
        ft = FinetuneSpec.model_validate(merged(spec.finetune.model_dump(), over.get("finetune", {})))
        bench = self.benches.get(reference or "", self.bench)
        if bench is not self.bench and not self.plan.sweep.reference_finetune:
            ft = ft.model_copy(update={"epochs": 0})  # another network, measured as it was trained
        if over.get("calibrate") and bench.calibrate is not None:  # a searched recovery setting
            bench = dataclasses.replace(bench, calibrate=CalibrateSpec.model_validate(
                merged(bench.calibrate.model_dump(), over["calibrate"])))
        setup = self.profile.setup(BenchmarkSpec.model_validate({**spec.benchmark.model_dump(),
                                                                 **over.get("benchmark", {})}))
        trial.set_user_attr("precision", setup.benchmark.precision)
        if setup.benchmark.precision == "int8" and runtime_traits(setup.benchmark.runtime).int8_formats:
            trial.set_user_attr("int8_format", setup.benchmark.int8_format)
        out = self.plan.paths.trial(trial.number)
        aside = set_aside(out)
        if aside is not None:
            self.reporter.stage(f"{out} was on disk already (the study's database is older than its folders): "
                                f"kept as {aside.name}")
        # Written under a new name and renamed into place: a folder named after a trial holds all
        # of one trial's files, never a mixture with another's.
        work = out.with_name(out.name + ".partial")
        shutil.rmtree(work, ignore_errors=True)
        try:
            self._save_recipe(work, params, reference, ft, setup, schedule)
            clock = StageClock(self.reporter.stage)
            try:
                result = run_candidate(bench, setup, schedule, ft, work, clock, self._hooks(trial, setup))
                state = TrialState.COMPLETE
            except StopTrial as stopped:
                if stopped.ending is Ending.DUPLICATE:
                    trial.set_user_attr("duplicate_of", stopped.duplicate_of)
                    result, state = self._answer_from(stopped.duplicate_of), TrialState.COMPLETE
                else:
                    trial.set_user_attr("skipped" if stopped.ending is Ending.SKIPPED else "stopped", stopped.reason)
                    result = stopped.result
                    state = TrialState.PRUNED if stopped.ending is Ending.STOPPED_EARLY else TrialState.COMPLETE
            if result is not None:  # every trial's folder holds its figures, and where its time went
                result.metrics.update(clock.metrics())
                result.save(work / "metrics.json")
        finally:
            if work.is_dir():
                work.rename(out)
        return result, setup, state

    def _unwritable(self, number: int, exc: BaseException) -> RunDirError | None:
        """The error that stops the run when `exc` says the run directory cannot hold files."""
        if isinstance(exc, RunDirError):
            return exc
        filename = getattr(exc, "filename", None) if isinstance(exc, OSError) else None
        if filename is None or not str(filename).startswith(str(self.plan.run_dir)):
            return None
        return RunDirError(f"trial {number}'s files cannot be written to {filename} ({exc.strerror}); the run "
                           f"stops so that no trial is recorded without them: make {self.plan.run_dir} writable "
                           "(a folder where `trials` is) and run again to resume")

    def _answer_from(self, number: int) -> CandidateResult:
        """An earlier trial's result, for the same candidate asked again: from its files when it
        ran here, else (another producer's trial, on a shared storage) from what the study holds."""
        path = self.plan.paths.trial(number) / "metrics.json"
        if path.is_file():
            saved = json.loads(path.read_text())
            return CandidateResult(metrics=dict(saved["metrics"]), timing=saved.get("timing", {}),
                                   thinning=[CompressionRecord(**r) for r in saved["thinning"]])
        earlier = next(t for t in self.study.get_trials(deepcopy=False) if t.number == number)
        return CandidateResult(metrics=recorded_metrics(earlier.user_attrs, also=("pruned_structures",)),
                               timing={"answered_from": number})

    def _duplicate_of(self, trial: optuna.Trial, key: str) -> int | None:
        """Record the candidate's key; the earlier trial with the same one, if any (never for a
        reference recipe's repeats, which measure how much its figures vary, nor one skipped on
        its prediction: it holds no measurement to answer from, and skipping again is cheap)."""
        trial.set_user_attr("candidate_key", key)
        if Recorded.of(trial).reference:
            return None
        trials = [(t.number, Recorded.of(t)) for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
        for number, t in trials:
            if t.candidate_key == key and t.duplicate_of is None and not t.skipped and t.remeasure_of is None:
                # Its latest timing: a latency timed again replaces one not trusted.
                again = [n for n, r in trials if r.remeasure_of is not None and r.candidate_key == key]
                return max(again, default=number)
        return None

    @staticmethod
    def _save_recipe(out: Any, params: dict[str, Any], reference: str | None, ft: FinetuneSpec, setup: TrialSetup,
                     schedule: Schedule) -> None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "recipe.yaml").write_text(yaml.safe_dump(
            {"params": params, "reference": reference, "finetune": ft.model_dump(mode="json"),
             "benchmark": setup.benchmark.model_dump(),
             "schedule": schedule.model_dump(by_alias=True, exclude_none=True)}, sort_keys=False))

    def _record(self, trial: optuna.Trial, result: CandidateResult | None, setup: TrialSetup
                ) -> tuple[dict[str, Any], list[str]]:
        """The trial's metrics (with baseline ratios and the predictor's record) as user attributes."""
        baseline = self.profile.baseline
        metrics = result.metrics if result is not None else {}
        add_ratios(metrics, baseline)
        table = setup.width_table
        if table is not None and result is not None and metrics.get("latency_ratio"):
            predicted = table.predict_ratio(kept_widths(result.thinning))
            if predicted is not None:  # the predictor's record against the measurement, every trial
                metrics["predicted_latency_ratio"] = predicted
                metrics["prediction_error"] = predicted / metrics["latency_ratio"] - 1
        flags = compression_flags(metrics, baseline)
        if flags:
            trial.set_user_attr("flags", "; ".join(flags))
        for key, value in metrics.items():
            trial.set_user_attr(key, value)
        if result is not None and (result.thinning or Recorded.of(trial).duplicate_of is None):
            trial.set_user_attr("pruned_structures", sum(r.removed for r in result.thinning))
        return metrics, flags

    def _judge(self, trial: optuna.Trial, result: CandidateResult | None, setup: TrialSetup, state: TrialState) -> Verdict:
        metrics, flags = self._record(trial, result, setup)
        recorded = Recorded.of(trial)
        skipped = recorded.skipped
        # A skipped candidate is judged on its prediction (named as such), so constrained samplers
        # learn where the budget breaks; its measured fields stay empty.
        scored = ({**metrics, **predicted_metrics(metrics["predicted_latency_ratio"], self.profile.baseline)}
                  if skipped else metrics)
        held, reasons = violations(self.constraints, scored)
        if skipped:
            reasons = [f"predicted {r}" for r in reasons]
        record_constraints(trial, [c.metric for c in self.constraints], held)
        if state is TrialState.PRUNED:  # reports count only COMPLETE trials as feasible: a pruned one is never best
            return Verdict(TrialState.PRUNED, result, metrics=metrics, note=recorded.stopped)
        if reasons:
            trial.set_user_attr("infeasible", "; ".join(reasons))
        values = [scored.get(o.metric) for o in self.plan.objectives]
        if skipped and any(v is None for v in values):  # an objective the prediction cannot stand for
            return Verdict(TrialState.PRUNED, result, metrics=metrics, note=skipped)
        if any(v is None or not math.isfinite(v) for v in values):
            trial.set_user_attr("error", f"objective values {values} are not all finite")
            return Verdict(TrialState.FAIL, metrics=metrics, note="objective not finite")
        notes = ([skipped] if skipped else [f"infeasible: {'; '.join(reasons)}"] if reasons else []) + flags
        notes += [metrics[k] for k in ("rejected_early", "accepted_early") if metrics.get(k)]
        if metrics.get("latency_unreliable"):
            notes.append(f"latency unreliable, kept but never picked: {metrics['latency_unreliable']}")
        if recorded.duplicate_of is not None:
            notes.insert(0, f"duplicate of trial {recorded.duplicate_of}: answered from it")
        return Verdict(TrialState.COMPLETE, result, values, metrics, not reasons, "; ".join(notes) or None)

    def _tell(self, trial: optuna.Trial, params: dict[str, Any], verdict: Verdict) -> TrialOutcome:
        if verdict.state is TrialState.COMPLETE:
            self.study.tell(trial, verdict.values if len(verdict.values) > 1 else verdict.values[0])  # type: ignore
        else:
            self.study.tell(trial, state=verdict.state)
        self.reporter.trial_done(trial.number, params, verdict.result, verdict.note, self._best(),
                                 counts=Recorded.of(trial).counts)
        if verdict.state is TrialState.COMPLETE:
            self.reporter.front(accuracy_latency_front(self.study))
        return TrialOutcome(trial.number, params, verdict.state, values=verdict.values, metrics=verdict.metrics,
                            feasible=verdict.feasible)

    def _best(self) -> optuna.trial.FrozenTrial | None:
        if len(self.plan.objectives) > 1:
            return None
        best = best_trials(feasible_trials(self.study), self.plan.objectives)
        return best[0] if best else None

    def _hooks(self, trial: optuna.Trial, setup: TrialSetup) -> Hooks:
        """Where the study steps into the candidate: resource constraints before fine-tuning, the
        predictor before export, collapse detection and Optuna's pruner after each epoch."""
        stop = self.plan.sweep.early_stop
        chance = 100.0 / self.bench.data.num_classes
        use_pruner = self.plan.sweep.stopping != "none" and len(self.plan.objectives) == 1

        def after_epoch(epoch: int, result: EvalResult) -> None:
            trial.set_user_attr(f"top1_epoch_{epoch + 1}", result.top1)
            if stop.collapse and epoch + 1 >= max(stop.warmup_epochs, 1) and result.top1 <= chance + stop.collapse_margin:
                raise StopTrial(f"collapsed: top-1 {result.top1:.2f} % after epoch {epoch + 1} "
                                f"(chance is {chance:.1f} %)")
            if use_pruner:
                trial.report(result.top1, epoch)
                if trial.should_prune():
                    raise StopTrial(f"stopped by the {self.plan.sweep.stopping} pruner after epoch {epoch + 1} "
                                    f"(top-1 {result.top1:.2f} %)")

        def resource_violation(metrics: dict[str, Any]) -> str | None:
            _, reasons = violations(self.constraints, add_ratios(metrics, self.profile.baseline), resources_only=True)
            return "; ".join(reasons) or None

        # The fp32 top-1 stands for the deployed one only at fp32; a user's metric wants every image.
        is_reference = Recorded.of(trial).reference is not None
        rejects = setup.benchmark.precision == "fp32" and self.bench.metric is None and not is_reference
        rung0 = Rung0(self.study, self.constraints, setup.benchmark.precision, stop.promote_slack)
        # Top-1 is rung 0's score: a study judged by the user's own metric trains every candidate.
        promoting = (stop.promote == "front" and not is_reference and self.bench.metric is None
                     and not self.bench.begun_before_recovery and rung0.may_hold_back())
        return Hooks(resource_violation=resource_violation,
                     after_epoch=after_epoch if (stop.collapse or use_pruner) else None,
                     predicted_violation=lambda thinning: self._predicted_violation(setup, thinning),
                     duplicate_of=lambda key: self._duplicate_of(trial, key),
                     rejection=rejection(self.constraints, len(self.bench.val), stop.reject_confidence,
                                         accepts=all(o.metric != "top1" for o in self.plan.objectives))
                     if rejects else None,
                     time_first=(any(c.on_resources for c in self.constraints) or self.plan.spec.remote is not None
                                 or promoting),
                     held_back=rung0.held_back if promoting else lambda _: None)

    def _predicted_violation(self, setup: TrialSetup, thinning: list) -> tuple[str, dict[str, Any]] | None:
        """Why the width profile of the trial's precision rules the candidate out, if it does."""
        table = setup.width_table
        if self.plan.sweep.predictor.skip_margin is None or table is None:
            return None
        budget = latency_budget(self.constraints, self.profile.baseline)
        if budget is None:
            return None
        errors = [e for t in self.study.get_trials(deepcopy=False)
                  if (e := Recorded.of(t).value("prediction_error")) is not None]
        margin = skip_margin(self.plan.sweep.predictor.skip_margin, errors)  # type: ignore[arg-type]
        predicted = table.predict_ratio(kept_widths(thinning))
        if predicted is None or predicted <= budget * (1 + margin):
            return None
        reason = (f"predicted latency x{predicted:.3f} of the baseline is over the budget x{budget:.3f} by more than "
                  f"the {margin:.0%} margin")
        return reason, {"predicted_latency_ratio": predicted}
