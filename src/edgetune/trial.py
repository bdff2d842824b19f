"""One candidate, for real: prune and thin a copy of the baseline, evaluate, fine-tune under
the recipe's schedule, evaluate again, export ONNX, check it, and time it on the runtime.

The unpruned baseline goes through the same function with an empty recipe, so the table
compares like with like.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgetune.compress.base import CompressionRecord
from edgetune.compress.structure import describe_structure
from edgetune.data.splits import DataSplits, ImageSplit
from edgetune.experiment import BenchmarkSpec, FinetuneSpec
from edgetune.export import export_onnx
from edgetune.models.registry import save_checkpoint
from edgetune.profiler import profile_artifact, verify_artifact
from edgetune.recipe.schedule import Schedule
from edgetune.recipe.thinning import apply_pruners
from edgetune.runtimes.base import Session
from edgetune.training import EvalResult, evaluate, train_epoch

Stage = Callable[[str], None]


@dataclass
class Workbench:
    """What every trial of a study shares: data, the baseline, the runtime and its reference."""

    data: DataSplits
    train: ImageSplit
    val: ImageSplit
    baseline: nn.Module
    benchmark: BenchmarkSpec
    device: str = "cpu"
    reference: Session | None = None
    reference_ms: float | None = None
    calibration: np.ndarray | None = None
    seed: int = 0
    meta: dict[str, Any] = field(default_factory=dict)  # the baseline checkpoint's: rebuilds a trial's model
    remote: Any = None  # a RemoteBench: benchmarks go to a device worker
    staircases: dict[str, list[int]] | None = None  # measured fast widths, for round_to: measured
    width_table: Any = None  # hardware.widths.WidthTable: predicts each candidate's latency
    reference_onnx: Path | None = None
    int8_format: str | None = None  # resolved from `auto` on this target (hardware/formats.py)
    width_tables: dict[str, Any] = field(default_factory=dict)  # precision -> WidthTable

    def use_precision(self, precision: str) -> None:
        """Round, predict and skip on the width profile measured at this precision (if any)."""
        if not self.width_tables:
            return
        self.width_table = self.width_tables.get(precision)
        self.staircases = self.width_table.staircases() if self.width_table is not None else None

    def example(self, batch: int = 1) -> torch.Tensor:
        return self.data.sample_input(batch)

    def batches(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n labelled training images for methods that sample data; the same images every trial,
        so candidates differ by their settings, not by their luck."""
        images = self.train.subset(min(n, len(self.train)), seed=self.seed + 2)
        return self.data.normalize(images.images), images.labels


@dataclass
class CandidateResult:
    metrics: dict[str, float]
    thinning: list[CompressionRecord] = field(default_factory=list)
    timing: dict[str, Any] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        blob = {"metrics": self.metrics, "timing": self.timing, "thinning": [asdict(r) for r in self.thinning]}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(blob, indent=2))
        tmp.replace(path)


def _pruning_plan(schedule: Schedule, epochs: int) -> dict[int, list[str]]:
    """Epoch -> pruners acting then. A pruner whose epoch lies beyond the fine-tuning run acts
    at its last epoch (or at once with no fine-tuning), so every pruner shapes the candidate."""
    last = max(epochs - 1, 0)
    plan: dict[int, list[str]] = {}
    for name in schedule.pruners:
        plan.setdefault(min(schedule.pruner_epoch(name), last), []).append(name)
    return plan


def _optimizer(model: nn.Module, ft: FinetuneSpec, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=ft.momentum, weight_decay=ft.weight_decay,
                           nesterov=ft.momentum > 0)


class StopTrial(Exception):
    """Raised by an epoch hook to end a fine-tune early (collapse, or an Optuna pruner)."""

    def __init__(self, reason: str, pruned: bool = True, result: CandidateResult | None = None,
                 skipped: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.pruned, self.result, self.skipped = reason, pruned, result, skipped


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


def finetune(
    model: nn.Module, bench: Workbench, schedule: Schedule, ft: FinetuneSpec, plan: dict[int, list[str]],
    stage: Stage, thinning: list[CompressionRecord], after_epoch: Callable[[int, EvalResult], None] | None = None,
) -> tuple[float, float, EvalResult | None]:
    """Distiller's loop: pruners act at the start of their epoch, LR schedulers step at the end
    of each epoch their policy covers. Returns the wall time, the final learning rate, and the
    last epoch's validation result when epochs were evaluated."""
    if ft.epochs == 0:
        return 0.0, ft.learning_rate, None
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(bench.seed)
    model.to(bench.device)
    optimizer = _optimizer(model, ft, ft.learning_rate)
    schedulers = {n: s.build(optimizer) for n, s in schedule.lr_schedulers.items()}
    last: EvalResult | None = None
    for epoch in range(ft.epochs):
        if epoch > 0 and plan.get(epoch):
            stage(f"pruning at epoch {epoch}")
            model.cpu()
            thinning += apply_pruners(model, schedule, bench.example(), plan[epoch], bench.batches, bench.staircases)
            model.to(bench.device)
            # Thinning replaced the parameters: a fresh optimizer at the current learning rate.
            lr = optimizer.param_groups[0]["lr"]
            optimizer = _optimizer(model, ft, lr)
            for sched in schedulers.values():
                sched.optimizer = optimizer
        stage(f"fine-tuning epoch {epoch + 1}/{ft.epochs}")
        train_epoch(model, bench.data, optimizer, batch_size=ft.batch_size, generator=gen,
                    device=bench.device, split=bench.train, pad=2 if ft.augment else 0)
        for policy in schedule.policies:
            if policy.lr_scheduler is not None and policy.active(epoch):
                schedulers[policy.lr_scheduler.instance_name].step()
        if after_epoch is not None:
            last = evaluate(model, bench.data, bench.val, device=bench.device)
            after_epoch(epoch, last)
    model.cpu()
    return time.perf_counter() - t0, float(optimizer.param_groups[0]["lr"]), last


def _deployed_eval(bench: Workbench) -> tuple[np.ndarray | None, np.ndarray | None]:
    if bench.benchmark.precision == "fp32":
        return None, None
    return bench.data.normalize(bench.val.images).numpy(), bench.val.labels.numpy()


def measure(model: nn.Module, bench: Workbench, onnx_path: Path, stage: Stage,
            score: bool = True) -> tuple[dict[str, Any], dict]:
    """Export, then profile on the runtime next to the reference (parity checked first)."""
    spec = bench.benchmark
    stage("exporting ONNX")
    export_onnx(model, bench.example(spec.batch_size), onnx_path)
    images, labels = _deployed_eval(bench) if score else (None, None)
    if bench.remote is not None:
        metrics, timing = bench.remote.measure(onnx_path, spec, bench.example(64).numpy(), bench.reference_onnx,
                                               bench.calibration, images, labels)
        return _adjusted(metrics, bench.reference_ms), timing
    report = profile_artifact(
        onnx_path, spec, bench.example(64).numpy(), module=model, calibration=bench.calibration,
        eval_images=images, eval_labels=labels, reference=bench.reference, stage=stage,
    )
    ref_ms = bench.reference_ms if bench.reference_ms is not None else report.timing.get("reference_ms")
    return _adjusted(dict(report.metrics), ref_ms), {**report.timing, "description": report.description}


def _adjusted(metrics: dict[str, Any], ref_ms: float | None) -> dict[str, Any]:
    ratio = metrics.get("latency_ratio")
    metrics["latency_adj_ms"] = ratio * ref_ms if ratio is not None and ref_ms is not None else metrics["latency_ms"]
    return metrics


def run_candidate(
    bench: Workbench, schedule: Schedule, ft: FinetuneSpec, out_dir: Path, stage: Stage = lambda _: None,
    hooks: Hooks | None = None,
) -> CandidateResult:
    """Raises StopTrial (with the metrics so far in `result.metrics.json`) when a hook stops it."""
    hooks = hooks or Hooks()
    out_dir.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(bench.baseline).cpu()
    plan = _pruning_plan(schedule, ft.epochs)
    thinning: list[CompressionRecord] = []
    if plan.get(0):
        stage("pruning")
        thinning += apply_pruners(model, schedule, bench.example(), plan[0], bench.batches, bench.staircases)
    stage("evaluating after pruning")
    before = evaluate(model, bench.data, bench.val, device=bench.device)
    metrics: dict[str, Any] = {**before.as_dict(suffix="_before_ft")}
    onnx_path = out_dir / "model.onnx"
    shape_final = all(epoch == 0 for epoch in plan)  # no pruner acts later: speed is known now
    timing: dict[str, Any] = {}
    if shape_final and (ruled_out := hooks.predicted_violation(thinning)) is not None:
        reason, predicted = ruled_out
        metrics.update({**before.as_dict(), **predicted}, finetune_seconds=0.0, final_lr=ft.learning_rate)
        result = _finish(metrics, {}, thinning, timing, out_dir)
        raise StopTrial(f"skipped: {reason}", pruned=False, result=result, skipped=True)
    if shape_final:
        perf, timing = measure(model, bench, onnx_path, stage, score=ft.epochs == 0)
        metrics.update(perf)
        reason = hooks.resource_violation(perf)
        if reason is not None:
            metrics.update(before.as_dict(), finetune_seconds=0.0, final_lr=ft.learning_rate, infeasible=reason)
            result = _finish(metrics, perf, thinning, timing, out_dir)
            raise StopTrial(f"infeasible before fine-tuning: {reason}", pruned=False, result=result)
    try:
        ft_seconds, final_lr, last = finetune(model, bench, schedule, ft, plan, stage, thinning, hooks.after_epoch)
    except StopTrial as stop:
        model.cpu()
        stop.result = CandidateResult(metrics=metrics, thinning=thinning, timing=timing)
        stop.result.save(out_dir / "metrics.json")
        raise
    after = last or (evaluate(model, bench.data, bench.val, device=bench.device) if ft.epochs else before)
    model.cpu().eval()
    metrics.update(after.as_dict(), finetune_seconds=ft_seconds, final_lr=final_lr)
    if not shape_final:
        perf, timing = measure(model, bench, onnx_path, stage)
        metrics.update(perf)
    elif ft.epochs and bench.remote is not None and bench.benchmark.precision != "fp32":
        # The deployed model's accuracy needs the device's runtime: ask the worker again (the
        # new weights make a new request; the timing is the same shapes' again).
        perf, timing = measure(model, bench, onnx_path, stage)
        metrics.update(perf)
    elif ft.epochs:
        # Same shapes, new weights: export again, check parity, score the deployed model.
        stage("exporting the fine-tuned model")
        export_onnx(model, bench.example(bench.benchmark.batch_size), onnx_path)
        images, labels = _deployed_eval(bench)
        # With a device worker, fp32 parity is checked here on ONNX Runtime (the worker's runtime
        # may not be installed on this machine); the device already checked its own.
        spec = bench.benchmark if bench.remote is None else BenchmarkSpec(batch_size=bench.benchmark.batch_size)
        perf = verify_artifact(onnx_path, spec, bench.example(64).numpy(), module=model,
                               calibration=bench.calibration, eval_images=images, eval_labels=labels)
        metrics.update(perf)
    else:
        perf = metrics
    metrics["sparsity"] = zero_fraction(model)
    if bench.meta:
        save_trial_model(model, bench, out_dir / "model.pt")
    return _finish(metrics, perf, thinning, timing, out_dir)


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


def _finish(metrics: dict[str, Any], perf: dict[str, Any], thinning: list[CompressionRecord], timing: dict[str, Any],
            out_dir: Path) -> CandidateResult:
    if "deployed_top1" in perf and "top1" in metrics:
        # At int8 or fp16 the deployed network is what users get: its accuracy is the accuracy.
        metrics.update(top1_torch=metrics["top1"], top5_torch=metrics["top5"],
                       top1=perf["deployed_top1"], top5=perf["deployed_top5"])
    result = CandidateResult(metrics=metrics, thinning=thinning, timing=timing)
    result.save(out_dir / "metrics.json")
    return result
