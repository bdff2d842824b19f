"""One candidate, for real: prune and thin a copy of the baseline, evaluate, fine-tune under
the recipe's schedule, evaluate again, export ONNX, check it, and time it on the runtime.

The unpruned baseline goes through the same function with an empty recipe, so the table
compares like with like.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from torch import nn

from edgetune.compress.base import CompressionRecord, state_hash
from edgetune.compress.recipe import apply_pruners
from edgetune.compress.structure import describe_structure
from edgetune.config.experiment import FinetuneSpec, finetune_identity
from edgetune.config.recipe import Schedule
from edgetune.executors.base import Stage
from edgetune.files import atomic_write_json
from edgetune.metrics.table import BEFORE_FT, TORCH
from edgetune.models.registry import save_checkpoint
from edgetune.runtimes.export import export_onnx
from edgetune.runtimes.profiler import ParityError
from edgetune.study.trial.finetune import finetune
from edgetune.study.trial.making import Making
from edgetune.study.trial.reject import Rejection, StopRule
from edgetune.study.trial.workbench import TrialSetup, Workbench
from edgetune.training.loop import EvalResult


@dataclass
class CandidateResult:
    metrics: dict[str, float]
    thinning: list[CompressionRecord] = field(default_factory=list)
    timing: dict[str, Any] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        blob = {"metrics": self.metrics, "timing": self.timing, "thinning": [asdict(r) for r in self.thinning]}
        atomic_write_json(path, blob, indent=2)


def _pruning_plan(schedule: Schedule, epochs: int) -> dict[int, list[str]]:
    """Epoch -> pruners acting then. A pruner whose epoch lies beyond the fine-tuning run acts
    at its last epoch (or at once with no fine-tuning), so every pruner shapes the candidate."""
    last = max(epochs - 1, 0)
    plan: dict[int, list[str]] = {}
    gradual = schedule.gradual_pruners() if epochs else []  # they ramp, then thin when fine-tuning ends
    for name in schedule.applied_pruners():
        if name not in gradual:
            plan.setdefault(min(schedule.pruner_epoch(name), last), []).append(name)
    return plan


class Ending(Enum):
    """How a trial ended before its last stage, one of four exclusive outcomes."""

    # Fine-tuning stopped by an epoch hook (collapse, or an Optuna pruner): Optuna's PRUNED
    # state, never a best trial.
    STOPPED_EARLY = "stopped early"
    # Its predicted latency rules it out: complete, with predicted figures, never measured.
    SKIPPED = "skipped"
    # The same network built, fine-tuned and measured as an earlier trial: answered from it.
    DUPLICATE = "duplicate"
    # Decided before fine-tuning (infeasible on resources, or held back at rung 0): complete,
    # with the figures measured so far.
    DECIDED = "decided"


class StopTrial(Exception):
    """Raised to end a trial before its last stage; `ending` says how (see Ending)."""

    def __init__(self, reason: str, ending: Ending = Ending.STOPPED_EARLY, result: CandidateResult | None = None,
                 duplicate_of: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.ending, self.result, self.duplicate_of = reason, ending, result, duplicate_of


@dataclass
class Hooks:
    """Where a study steps into a trial: resource constraints are checked on the pruned,
    exported network before any fine-tuning (its shape, hence its speed and size, is final);
    accuracy is reported after each epoch so that early stopping can act."""

    resource_violation: Callable[[dict[str, Any]], str | None] = lambda _: None
    after_epoch: Callable[[int, EvalResult], None] | None = None
    # From the kept widths, before anything is exported or timed: why the candidate's predicted
    # latency rules it out, with the prediction to record; None to measure it.
    predicted_violation: Callable[[list[CompressionRecord]], tuple[str, dict[str, Any]] | None] = lambda _: None
    # Given the candidate's key (candidate_key): the earlier trial (its number) that built the same
    # network, fine-tuned and measured the same way, to answer from instead of training and
    # timing it again; None to go on.
    duplicate_of: Callable[[str], int | None] = lambda _: None
    # The accuracy floor the final scoring may stop at (study/trial/reject.py); None to score every image.
    rejection: Rejection | None = None
    # Time a final shape before fine-tuning (a resource constraint may rule it out there); without
    # one it is timed after, from the file that is scored, converted to its precision once.
    time_first: bool = True
    # From the rung-0 figures (timed, scored after re-estimation): why fine-tuning would not pay
    # (study/trial/rungs.py); None to fine-tune.
    held_back: Callable[[dict[str, Any]], str | None] = lambda _: None

    def final_rule(self) -> StopRule | None:
        return self.rejection.stop if self.rejection is not None else None


def measure(model: nn.Module, bench: Workbench, setup: TrialSetup, onnx_path: Path, stage: Stage,
            score: bool = True, exported: bool = False) -> tuple[dict[str, Any], dict]:
    """Export (unless `exported` already), then measure on the target next to the reference
    (parity checked first)."""
    spec = setup.benchmark
    if not exported:
        stage("exporting ONNX")
        export_onnx(model, bench.example(spec.batch_size), onnx_path)
    done = bench.executor.measure(onnx_path, spec, bench.sample(), module=model, scoring=bench.scoring(spec, score),
                                  work_dir=onnx_path.parent, stage=stage)
    ref_ms = setup.reference_ms if setup.reference_ms is not None else done.timing.get("reference_ms")
    return adjusted(done.metrics, ref_ms), done.timing


def adjusted(metrics: dict[str, Any], ref_ms: float | None) -> dict[str, Any]:
    """`latency_adj_ms`: the ratio to the reference timed in the same rounds, in the reference's
    milliseconds measured at the study's start (a slow spell of the host does not move it)."""
    ratio = metrics.get("latency_ratio")
    metrics["latency_adj_ms"] = ratio * ref_ms if ratio is not None and ref_ms is not None else metrics["latency_ms"]
    return metrics


def run_candidate(
    bench: Workbench, setup: TrialSetup, schedule: Schedule, ft: FinetuneSpec, out_dir: Path,
    stage: Stage = lambda _: None, hooks: Hooks | None = None,
) -> CandidateResult:
    """Raises StopTrial (with the metrics so far in `result.metrics.json`) when a hook stops it."""
    hooks = hooks or Hooks()
    out_dir.mkdir(parents=True, exist_ok=True)
    it = Making(bench, setup, ft, out_dir, stage)
    model = copy.deepcopy(bench.start).cpu()
    plan = _pruning_plan(schedule, ft.epochs)
    if plan.get(0):
        stage("pruning")
        it.thinning += apply_pruners(model, schedule, bench.example(), plan[0], bench.batches, setup.staircases)
    # No pruner acts later (nor thins when fine-tuning ends): the speed is known now.
    shape_final = all(epoch == 0 for epoch in plan) and not (ft.epochs and schedule.gradual_pruners())
    if shape_final:
        _stop_if_duplicate(model, setup, schedule, ft, hooks,
                           bench.calibrate.model_dump() if bench.calibrate is not None else None)
    recovered = _recover(model, bench, stage) if plan.get(0) else {}
    onnx_path = out_dir / "model.onnx"
    ruled_out = hooks.predicted_violation(it.thinning) if shape_final else None
    # The file the runtime times scores the images too (exported once, used twice); not for a
    # candidate its predicted latency skips, which is never exported.
    exported = shape_final and bench.score_onnx and ruled_out is None
    if exported:
        stage("exporting ONNX")
        export_onnx(model, bench.example(setup.benchmark.batch_size), onnx_path)
    stage("evaluating after pruning")
    before = bench.score(model, onnx_path if exported else None, hooks.final_rule() if not ft.epochs else None)
    it.metrics.update({**recovered, **before.as_dict(suffix=BEFORE_FT)})
    _note_rejection(it.metrics, before, hooks)
    timed_first = shape_final and (hooks.time_first or not ft.epochs)
    if timed_first:
        timed_first = _measure_before_finetuning(model, it, hooks, before, ruled_out)
    try:
        ft_seconds, final_lr, last = finetune(model, it, schedule, plan, hooks.after_epoch, hooks.final_rule())
    except StopTrial as stop:
        model.cpu()
        stop.result = CandidateResult(metrics=it.metrics, thinning=it.thinning, timing=it.timing)
        stop.result.save(out_dir / "metrics.json")
        raise
    after = last or (bench.evaluate(model, hooks.final_rule()) if ft.epochs else before)
    model.cpu().eval()
    it.metrics.update(after.as_dict(), finetune_seconds=ft_seconds, final_lr=final_lr, rung=1 if ft.epochs else 0)
    _note_rejection(it.metrics, after, hooks)
    return _deployed(model, it, timed_first)


def _deployed(model: nn.Module, it: Making, timed_first: bool) -> CandidateResult:
    """The candidate as it stands measured as deployed, its files written."""
    perf = _final_measurement(model, it, timed_first)
    it.metrics["sparsity"] = zero_fraction(model)
    if it.bench.meta:
        save_trial_model(model, it.bench, it.out_dir / "model.pt")
    return _finish(it, perf)


def _recover(model: nn.Module, bench: Workbench, stage: Stage) -> dict[str, Any]:
    """Norm statistics re-estimated for the pruned shape before it is scored or trained; its
    top-1 with the stale statistics kept beside, so a user sees what re-estimation recovered."""
    if not bench.recovers(model):
        return {}
    out: dict[str, Any] = {}
    if bench.calibrate.score_as_pruned:  # type: ignore[union-attr]
        stage("scoring as pruned")
        out["top1_as_pruned"] = bench.evaluate(model).top1
    stage("recovering before training: " + ", ".join(
        n for n, on in (("least squares", bench.calibrate.reconstruct), ("norm statistics", True)) if on))  # type: ignore[union-attr]
    return {**out, **bench.recover(model)}


def _note_rejection(metrics: dict[str, Any], result: EvalResult, hooks: Hooks) -> None:
    """Say so when the scoring stopped at the accuracy floor: its figures are of fewer images."""
    rule = hooks.rejection
    if rule is not None and result.n < rule.total:
        correct = round(result.top1 * result.n / 100)
        key = "accepted_early" if rule.accepted(correct, result.n) else "rejected_early"
        metrics.update({key: rule.reason(correct, result.n), "top1_images": result.n})


def candidate_key(model: nn.Module, setup: TrialSetup, schedule: Schedule, ft: FinetuneSpec,
                  recovery: dict[str, Any] | None = None) -> str:
    """What makes two candidates the same: the pruned network itself (its weights, so the same
    widths from other ratios or rounding match), how it is recovered (`calibrate:`, left out when
    nothing is, as in the studies before recovery), fine-tuned and measured."""
    h = state_hash(model)
    settings = [finetune_identity(ft), setup.benchmark.model_dump(), schedule.model_dump(exclude={"pruners"}),
                *([recovery] if recovery is not None else [])]
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return h.hexdigest()[:24]


def _stop_if_duplicate(model: nn.Module, setup: TrialSetup, schedule: Schedule, ft: FinetuneSpec,
                       hooks: Hooks, recovery: dict[str, Any] | None) -> None:
    earlier = hooks.duplicate_of(candidate_key(model, setup, schedule, ft, recovery))
    if earlier is not None:
        raise StopTrial(f"duplicate of trial {earlier}", Ending.DUPLICATE, duplicate_of=earlier)


def _measure_before_finetuning(model: nn.Module, it: Making, hooks: Hooks, before: EvalResult,
                               ruled_out: tuple[str, dict[str, Any]] | None) -> bool:
    """With the shape final, its speed is known before fine-tuning: measure it into `it`, unless
    StopTrial rules it out first, on a predicted latency over budget (`ruled_out`: nothing
    exported or timed), a measured resource constraint broken, or rung 0 holding it back from
    fine-tuning. False: not timed yet (parity before fine-tuning). When the study scores from
    the exported file, that file is already written."""
    ft, metrics = it.ft, it.metrics
    if ruled_out is not None:
        reason, predicted = ruled_out
        metrics.update({**before.as_dict(), **predicted}, finetune_seconds=0.0, final_lr=ft.learning_rate)
        raise StopTrial(f"skipped: {reason}", Ending.SKIPPED, result=_finish(it, {}))
    try:
        perf, it.timing = measure(model, it.bench, it.setup, it.out_dir / "model.onnx", it.stage,
                                  score=ft.epochs == 0, exported=it.bench.score_onnx)
    except ParityError as exc:
        if not ft.epochs:
            raise
        # Untrained, its reduced-precision form may not decide as it does yet: fine-tuning will
        # move the weights, and the network deployed is checked and timed after it.
        it.stage("timing after fine-tuning instead: its reduced-precision form failed parity before it")
        metrics["timed_after"] = str(exc)[:300]
        return False
    metrics.update(perf)
    reason = hooks.resource_violation(perf)
    if reason is not None:
        metrics.update(before.as_dict(), finetune_seconds=0.0, final_lr=ft.learning_rate, infeasible=reason)
        raise StopTrial(f"infeasible before fine-tuning: {reason}", Ending.DECIDED, result=_finish(it, perf))
    held = hooks.held_back(metrics) if ft.epochs else None
    if held is not None:  # rung 0 is its last: its figures are its own, deployed as it is
        metrics.update(before.as_dict(), finetune_seconds=0.0, final_lr=ft.learning_rate, rung=0)
        raise StopTrial(f"not fine-tuned: {held}", Ending.DECIDED, result=_deployed(model, it, True))
    return True


def _final_measurement(model: nn.Module, it: Making, timed_first: bool) -> dict[str, Any]:
    """After fine-tuning: a shape not timed yet (it changed during fine-tuning, or nothing needed
    its speed sooner) is measured now; one timed before is exported again with its new weights,
    its parity checked and its deployed accuracy scored."""
    onnx_path = it.out_dir / "model.onnx"
    if not timed_first:
        perf, it.timing = measure(model, it.bench, it.setup, onnx_path, it.stage)
        it.metrics.update(perf)
        return perf
    if not it.ft.epochs:
        return it.metrics
    spec = it.setup.benchmark
    it.stage("exporting the fine-tuned model")
    export_onnx(model, it.bench.example(spec.batch_size), onnx_path)
    perf = it.bench.executor.verify(onnx_path, spec, it.bench.sample(), module=model,
                                    scoring=it.bench.scoring(spec), stage=it.stage)
    if "latency_ratio" in perf:  # a device worker measured it again to score the deployed model
        adjusted(perf, it.setup.reference_ms)
    it.metrics.update(perf)
    return perf


def zero_fraction(model: nn.Module) -> float:
    """Share of convolution and linear weights that are exactly zero (unstructured pruning)."""
    weights = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    total = sum(w.numel() for w in weights)
    return float(sum(int((w == 0).sum()) for w in weights) / total) if total else 0.0


def save_trial_model(model: nn.Module, bench: Workbench, path: Path, recipe: dict[str, Any] | None = None) -> None:
    """Weights plus the compressed structure: `load_checkpoint` rebuilds it with no recipe."""
    meta = {**bench.meta, "structure": describe_structure(model)}
    if recipe is not None:
        meta["recipe"] = recipe
    save_checkpoint(path, model, meta)


def _finish(it: Making, perf: dict[str, Any]) -> CandidateResult:
    metrics = it.metrics
    if "deployed_top1" in perf and "top1" in metrics:
        # At int8 or fp16 the deployed network is what users get: its figures are the figures
        # (top-1, top-5 and the user's own metrics), PyTorch's kept beside them as `<name>_torch`.
        for key in [k.removeprefix("deployed_") for k in perf if k.startswith("deployed_")]:
            if key in metrics:
                metrics.update({key + TORCH: metrics[key], key: perf[f"deployed_{key}"]})
    result = CandidateResult(metrics=metrics, thinning=it.thinning, timing=it.timing)
    result.save(it.out_dir / "metrics.json")
    return result
