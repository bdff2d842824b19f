"""Sensitivity analysis: each prunable layer (or coupled group) compressed alone at each ratio,
scored on validation images without fine-tuning, and the whole network timed on the target
runtime interleaved with the unpruned baseline. Distiller's `--sense filter|channel` measured
accuracy only; the latency column is what shows where pruning pays on this device.

Every (layer, ratio) point is a JSON file written atomically under `points/`; a process claims a
point with an flock on a lock file before measuring it, so several processes can share one
analysis; each waits for the points the others hold before it writes the table, so whichever
finishes last, every table is whole. A killed process's locks die with it, so the others (or the
next run) take its points over. Running the command again finishes what is missing.
"""

from __future__ import annotations

import copy
import fcntl
import functools
import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from edgetune.compress.base import CompressionContext, PrunerOptions, get_method
from edgetune.compress.groups import coupled_targets
from edgetune.compress.recalibrate import reestimate_norms, tracked_norms
from edgetune.config.architecture import Architecture
from edgetune.config.benchmark import (
    QUICK_BENCHMARK,  # noqa: F401 - the CLI's default timing
    BenchmarkSpec,
)
from edgetune.data.splits import load_dataset
from edgetune.errors import ConfigError, EdgetuneError
from edgetune.executors.base import LOCAL_TARGET, Executor
from edgetune.executors.local import LocalExecutor
from edgetune.files import atomic_write_bytes, atomic_write_json
from edgetune.models.registry import load_described
from edgetune.runtimes.export import export_onnx
from edgetune.training.loop import evaluate


@dataclass(frozen=True)
class SensitivityPlan:
    checkpoint: str
    model: str | None
    data: str
    method: str
    ratios: tuple[float, ...]
    val_subset: int
    layers: tuple[str, ...]  # patterns; empty: every layer the method can compress
    benchmark: dict[str, Any]
    # Training images each point's norm statistics are re-estimated on before it is scored; 0: off.
    batchnorm_images: int = 1024
    factory: str | None = None  # the user's builder (--model-factory), for a checkpoint of their own network

    def fingerprint(self) -> str:
        fields = asdict(self)
        for added in ("batchnorm_images", "factory"):  # added later: an analysis made before had none
            if not fields[added]:
                del fields[added]
        blob = json.dumps({**fields, "checkpoint_sha": _sha(Path(self.checkpoint))}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def parse_range(text: str) -> tuple[float, ...]:
    """`start:stop:step` (stop included when it falls on the grid) or a comma list."""
    try:
        if ":" in text:
            start, stop, step = (float(v) for v in text.split(":"))
            if step <= 0:
                raise ValueError
            n = round((stop - start) / step) + 1
            values = [round(start + i * step, 6) for i in range(n) if start + i * step <= stop + 1e-9]
        else:
            values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"--range {text!r} is not start:stop:step (0:0.95:0.05) or a list (0.2,0.5,0.8)",
                          key="range") from None
    bad = [v for v in values if not 0.0 <= v < 1.0]
    if bad or not values:
        raise ConfigError(f"--range {text!r}: ratios must lie in [0, 1), got {bad or 'none'}", key="range")
    return tuple(sorted(set(values)))


WAIT_SECONDS = 1.0


def _point_file(root: Path, layer: str, ratio: float) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", layer.removesuffix(".weight"))
    return root / "points" / f"{safe}@{ratio:.4f}.json"


def _claim(path: Path) -> int | None:
    """Lock `path`'s point for this process, or None when another live process holds it.

    An flock, not a pid file: the kernel drops it when its holder dies, so a killed process's
    points are free at once and no two processes can both decide a lock is stale.
    """
    lock = path.with_suffix(".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


@dataclass
class _Bench:
    """What every point of one analysis shares: the data, the network, its groups, the executor."""

    data: Any
    val: Any
    model: nn.Module
    example: torch.Tensor
    batches: Callable[[int], tuple[torch.Tensor, torch.Tensor]]
    method: Any
    groups: dict[str, list[str]]
    spec: BenchmarkSpec
    executor: Executor
    batchnorm_images: int = 0

    @functools.cached_property
    def sample(self) -> np.ndarray:
        """The parity and timing images, the same for every point."""
        return self.data.sample_input(64).numpy()

    def measure(self, layer: str, ratio: float, path: Path) -> dict[str, Any]:
        """One point: the layer's group pruned alone, scored without fine-tuning, timed."""
        pruned = copy.deepcopy(self.model)
        ctx = CompressionContext(self.example, self.batches)
        records = self.method.apply(pruned, "sensitivity", [layer], ratio, ctx, PrunerOptions()) if ratio > 0 else []
        stale = {}
        if ratio > 0 and self.batchnorm_images and tracked_norms(pruned):  # scored as a search's screen scores it
            stale = {"top1_as_pruned": evaluate(pruned, self.data, self.val).top1}
            reestimate_norms(pruned, self.batches(self.batchnorm_images)[0])
        acc = evaluate(pruned, self.data, self.val)
        work = path.with_suffix("")
        work.mkdir(exist_ok=True)
        onnx_path = work / "model.onnx"
        export_onnx(pruned, self.example, onnx_path)
        metrics = self.executor.measure(onnx_path, self.spec, self.sample, module=pruned,
                                        work_dir=work).metrics
        onnx_path.unlink(missing_ok=True)
        work.rmdir()
        return {"layer": layer, "members": self.groups[layer], "ratio": ratio,
                "removed": sum(r.removed for r in records if r.skipped is None),
                "before": sum(r.before for r in records if r.skipped is None),
                "top1": acc.top1, "top5": acc.top5, **stale, **{k: metrics.get(k) for k in (
                    "latency_ms", "latency_ratio", "macs", "params", "model_bytes")}}


def _bench(plan: SensitivityPlan, data_root: Path | None, seed: int, executor: Executor) -> _Bench:
    torch.manual_seed(seed)
    data = load_dataset(plan.data, data_root)
    model, _ = load_described(plan.checkpoint, Architecture(plan.model, plan.factory), num_classes=data.num_classes,
                              in_channels=data.in_channels)
    model.eval()
    example = data.sample_input(1)
    train = data.train.subset(min(max(2048, plan.batchnorm_images), len(data.train)), seed=seed + 2)

    def batches(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return data.normalize(train.images[:n]), train.labels[:n]

    method = get_method(plan.method)
    groups = coupled_targets(method, model, CompressionContext(example, batches))
    if plan.layers:
        groups = {k: v for k, v in groups.items()
                  if any(fnmatch(m.removesuffix(".weight"), p) or fnmatch(m, p) for m in v for p in plan.layers)}
        if not groups:
            raise ConfigError(f"--layers {', '.join(plan.layers)} matches no layer {plan.method} can compress",
                              key="layers")
    return _Bench(data, data.val.subset(plan.val_subset, seed=seed), model, example, batches, method, groups,
                  BenchmarkSpec(**plan.benchmark), executor, plan.batchnorm_images)


def run_sensitivity(plan: SensitivityPlan, out_dir: Path, data_root: Path | None = None, seed: int = 0,
                    progress: Callable[[int, int, str], None] = lambda done, total, what: None,
                    executor: Executor | None = None) -> pd.DataFrame:
    """Every point of `plan` not yet in `out_dir`, timed on `executor` (this machine when None):
    a point measured on one target is never mixed with another's."""
    out_dir.mkdir(parents=True, exist_ok=True)
    meta_path = out_dir / "sensitivity.json"
    fingerprint = plan.fingerprint()
    executor = executor if executor is not None else LocalExecutor()
    if meta_path.is_file():
        stored = json.loads(meta_path.read_text())
        if stored.get("fingerprint") != fingerprint:
            raise EdgetuneError(f"{out_dir} holds a sensitivity analysis of other settings (checkpoint, data, method, "
                                "ratios, layers, benchmark or --batchnorm-images differ; one made before norm "
                                "statistics were re-estimated resumes with --batchnorm-images 0); give another --out")
        if stored.get("target", LOCAL_TARGET) != executor.target:
            raise EdgetuneError(f"{out_dir} holds points timed on {stored.get('target', LOCAL_TARGET)}, not on "
                                f"{executor.target}; give another --out")
    with executor:
        bench = _bench(plan, data_root, seed, executor)
        base_dir = out_dir / "baseline"
        base_onnx = base_dir / "model.onnx"
        if not base_onnx.is_file():
            export_onnx(bench.model, bench.example, base_onnx)
        atomic_write_json(meta_path, {"fingerprint": fingerprint, "plan": asdict(plan), "groups": bench.groups,
                                      "target": executor.target})
        executor.open_reference(base_onnx, bench.spec, bench.model, None, base_dir)
        if not (base_dir / "metrics.json").is_file():
            metrics = executor.measure(base_onnx, bench.spec, bench.sample, module=bench.model,
                                       work_dir=base_dir).metrics
            acc = evaluate(bench.model, bench.data, bench.val)
            atomic_write_json(base_dir / "metrics.json", {**metrics, "top1": acc.top1, "top5": acc.top5})
        _measure_points(out_dir, [(layer, r) for layer in bench.groups for r in plan.ratios], bench, progress)
    return collect(out_dir)


def _measure_points(out_dir: Path, points: list[tuple[str, float]], bench: _Bench,
                    progress: Callable[[int, int, str], None]) -> None:
    """Every point not yet on disk, claimed one at a time; then wait for those others hold."""
    def finished() -> int:  # by any process sharing `out_dir`
        return sum(_point_file(out_dir, *point).is_file() for point in points)

    remaining = points
    while remaining:
        held_elsewhere = []
        for layer, ratio in remaining:
            path = _point_file(out_dir, layer, ratio)
            if path.is_file():
                continue
            lock = _claim(path)
            if lock is None:
                held_elsewhere.append((layer, ratio))
                continue
            try:
                if path.is_file():  # finished by another process between the check and the claim
                    continue
                progress(finished(), len(points), f"{layer.removesuffix('.weight')} at {ratio:.2f}")
                atomic_write_json(path, bench.measure(layer, ratio, path))
                with open(out_dir / "measured.log", "a") as log:  # who measured what: one line per point
                    log.write(f"{os.getpid()} {layer} {ratio:.4f}\n")
            finally:  # the file goes too; a process that opened it first re-checks the point after locking
                path.with_suffix(".lock").unlink(missing_ok=True)
                os.close(lock)
        remaining = held_elsewhere
        if remaining:  # others are measuring these; a killed process's points are free next round
            progress(finished(), len(points), "waiting for another process's points")
            time.sleep(WAIT_SECONDS)
    progress(len(points), len(points), "done")


def collect(out_dir: Path) -> pd.DataFrame:
    """Every measured point with the baseline's figures beside it; written as sensitivity.csv."""
    base = json.loads((out_dir / "baseline" / "metrics.json").read_text())
    rows = [json.loads(p.read_text()) for p in sorted((out_dir / "points").glob("*.json"))]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["members"] = frame["members"].map(len)
    frame["layer"] = frame["layer"].str.removesuffix(".weight")
    frame["top1_drop"] = base["top1"] - frame["top1"]
    frame["macs_ratio"] = frame["macs"] / base["macs"]
    frame["latency_saved_ms"] = base["latency_ms"] * (1 - frame["latency_ratio"])
    frame = frame.sort_values(["layer", "ratio"]).reset_index(drop=True)
    # A temporary name per process: processes finishing together never interleave rows.
    atomic_write_bytes(out_dir / "sensitivity.csv", frame.to_csv(index=False).encode())
    return frame
