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

from edgetune.data.splits import DataSplits, ImageSplit
from edgetune.experiment import BenchmarkSpec, FinetuneSpec
from edgetune.export import export_onnx, profile
from edgetune.recipe.schedule import Schedule
from edgetune.recipe.thinning import ThinningRecord, apply_pruners
from edgetune.runtimes.base import Infer, Runtime
from edgetune.runtimes.timing import throughput, time_interleaved
from edgetune.training import evaluate, train_epoch

Stage = Callable[[str], None]


@dataclass
class Workbench:
    """What every trial of a study shares: data, the baseline, the runtime and its reference."""

    data: DataSplits
    train: ImageSplit
    val: ImageSplit
    baseline: nn.Module
    runtime: Runtime
    benchmark: BenchmarkSpec
    device: str = "cpu"
    reference: Infer | None = None
    reference_ms: float | None = None
    seed: int = 0

    def example(self, batch: int = 1) -> torch.Tensor:
        return self.data.sample_input(batch)


@dataclass
class CandidateResult:
    metrics: dict[str, float]
    thinning: list[ThinningRecord] = field(default_factory=list)
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


def finetune(
    model: nn.Module, bench: Workbench, schedule: Schedule, ft: FinetuneSpec, plan: dict[int, list[str]],
    stage: Stage, thinning: list[ThinningRecord],
) -> tuple[float, float]:
    """Distiller's loop: pruners act at the start of their epoch, LR schedulers step at the end
    of each epoch their policy covers. Returns the wall time spent and the final learning rate."""
    if ft.epochs == 0:
        return 0.0, ft.learning_rate
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(bench.seed)
    model.to(bench.device)
    optimizer = _optimizer(model, ft, ft.learning_rate)
    schedulers = {n: s.build(optimizer) for n, s in schedule.lr_schedulers.items()}
    for epoch in range(ft.epochs):
        if epoch > 0 and plan.get(epoch):
            stage(f"pruning at epoch {epoch}")
            model.cpu()
            thinning += apply_pruners(model, schedule, bench.example(), plan[epoch])
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
    model.cpu()
    return time.perf_counter() - t0, float(optimizer.param_groups[0]["lr"])


def measure(model: nn.Module, bench: Workbench, onnx_path: Path, stage: Stage) -> tuple[dict[str, float], dict]:
    """Export, check against PyTorch, then time on the runtime next to the reference."""
    spec = bench.benchmark
    stage("exporting ONNX")
    example = bench.example(spec.batch_size)
    export_onnx(model, example, onnx_path)
    infer = bench.runtime.load(onnx_path, threads=spec.threads)
    x = example.numpy()
    prof = profile(model, bench.example(1), onnx_path, infer(bench.example(1).numpy()))
    stage("benchmarking")
    reference = None
    if spec.interleave_reference:
        # The baseline is timed against a second session of itself: its ratio shows the noise floor.
        reference = bench.reference or bench.runtime.load(onnx_path, threads=spec.threads)
    timing = time_interleaved(
        infer, x, reference, warmup=spec.warmup, runs_per_round=spec.runs_per_round,
        min_rounds=spec.min_rounds, max_rounds=spec.max_rounds, max_seconds=spec.max_seconds,
    )
    batch = np.ascontiguousarray(np.resize(x, (spec.throughput_batch, *x.shape[1:])))
    ips = throughput(infer, batch, min_seconds=spec.throughput_seconds)
    ratio = timing.latency_ratio if timing.latency_ratio is not None else float("nan")
    ref_ms = bench.reference_ms if bench.reference_ms is not None else timing.reference_ms
    metrics = {
        "latency_ms": timing.latency_ms,
        "latency_mean_ms": timing.latency_mean_ms,
        "latency_p90_ms": timing.latency_p90_ms,
        "latency_p99_ms": timing.latency_p99_ms,
        "latency_ratio": ratio,
        "latency_adj_ms": ratio * ref_ms if ref_ms is not None else timing.latency_ms,
        "throughput": ips,
        "batch_latency_ms": 1e3 * spec.throughput_batch / ips,
        "params": prof.params,
        "macs": prof.macs,
        "onnx_bytes": prof.onnx_bytes,
    }
    return metrics, {**timing.as_dict(), "max_abs_diff": prof.max_abs_diff}


def run_candidate(
    bench: Workbench, schedule: Schedule, ft: FinetuneSpec, out_dir: Path, stage: Stage = lambda _: None,
) -> CandidateResult:
    out_dir.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(bench.baseline).cpu()
    plan = _pruning_plan(schedule, ft.epochs)
    thinning: list[ThinningRecord] = []
    if plan.get(0):
        stage("pruning")
        thinning += apply_pruners(model, schedule, bench.example(), plan[0])
    stage("evaluating after pruning")
    before = evaluate(model, bench.data, bench.val, device=bench.device)
    ft_seconds, final_lr = finetune(model, bench, schedule, ft, plan, stage, thinning)
    after = evaluate(model, bench.data, bench.val, device=bench.device) if ft.epochs else before
    model.cpu().eval()
    perf, timing = measure(model, bench, out_dir / "model.onnx", stage)
    metrics = {**after.as_dict(), **before.as_dict(suffix="_before_ft"), **perf, "finetune_seconds": ft_seconds,
               "final_lr": final_lr}
    result = CandidateResult(metrics=metrics, thinning=thinning, timing=timing)
    result.save(out_dir / "metrics.json")
    return result
