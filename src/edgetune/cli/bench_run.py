"""`edgetune bench`: the profiler on one file, with its inputs gathered from the flags."""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from edgetune.config.architecture import RECORDED, Architecture
from edgetune.config.benchmark import BenchmarkSpec, benchmark_from_flags
from edgetune.errors import ConfigError, EdgetuneError
from edgetune.files import check_writable
from edgetune.runtimes.onnx_stats import OnnxInput, onnx_input, random_images
from edgetune.runtimes.profiler import BenchReport, Scoring, profile_artifact

UNITS = {
    "latency_ms": "ms", "latency_mean_ms": "ms", "latency_std_ms": "ms", "latency_p90_ms": "ms",
    "latency_p99_ms": "ms", "latency_min_ms": "ms", "total_latency_ms": "ms", "batch_latency_ms": "ms",
    "load_seconds": "s", "compile_seconds": "s", "session_memory_mb": "MiB", "energy_mj": "mJ/batch",
    "power_w": "W", "achieved_gflops": "GFLOP/s", "model_bytes": "B", "onnx_bytes": "B", "throughput": "img/s",
    "engine_throughput": "img/s", "deployed_top1": "%", "deployed_top5": "%", "repeat_spread": "",
}


def _check_batches(path: Path, found: OnnxInput, batches: list[int]) -> None:
    """A model exported with a fixed batch (torch.onnx.export's default) runs at that batch only."""
    fixed = found.fixed_batch
    if fixed is not None and any(b != fixed for b in batches):
        raise ConfigError(f"{path}: {found.describe()}: the batch is fixed at {fixed}, so --batch "
                          f"{', '.join(str(b) for b in batches if b != fixed)} cannot run; export with a dynamic batch "
                          f"(torch.onnx.export(..., dynamic_axes={{'{found.name}': {{0: 'batch'}}}})) or use --batch "
                          f"{fixed}", key="--batch")


def _dataset(name: str, root: Path | None):
    from edgetune.data import load_dataset

    return load_dataset(name, root)


def run_bench(
    *, model: Path, runtime: str, device: str, batches: list[int], precision: str, calibration: str | None,
    data: str | None, data_root: Path | None, split: str, checkpoint: Path | None, threads: int, hint: str,
    repeats: int, per_layer: bool, top: int, csv_path: Path | None, json_path: Path | None, console: Console,
    described: Architecture = RECORDED,
) -> BenchReport:
    if split not in ("val", "test"):
        raise ConfigError(f"--split must be 'val' or 'test', not '{split}'")
    if bad := [b for b in batches if b < 1]:
        raise ConfigError(f"--batch {bad[0]}: a batch holds at least one image", key="--batch")
    spec = benchmark_from_flags(runtime=runtime, device=device, precision=precision, hint=hint, threads=threads,
                                batch_size=batches[0], throughput_batches=batches, repeats=repeats, per_layer=per_layer)
    if not model.is_file():
        raise EdgetuneError(f"{model}: no such file")
    check_writable("--json", json_path)
    check_writable("--csv", csv_path)
    with tempfile.TemporaryDirectory(prefix="edgetune-bench-") as tmp:  # removed on every exit path
        work = Path(tmp)
        module, onnx_path, found, sample, scoring = _inputs(model, checkpoint, data, calibration, data_root, split,
                                                            spec, work, described)
        _check_batches(model, found, batches)
        calib, eval_images, eval_labels = scoring
        if found.fixed_batch is not None:
            sample = sample[:found.fixed_batch] if len(sample) >= found.fixed_batch else sample
            if eval_images is not None and found.fixed_batch != 1:
                eval_images = eval_labels = None
                console.print(f"deployed accuracy not scored: {found.describe()}, a fixed batch")
        with console.status("benchmarking") as status:
            scored = Scoring(calib, eval_images, eval_labels, batch=found.fixed_batch or 250)
            report = profile_artifact(onnx_path, spec, sample, module=module, scoring=scored, work_dir=work,
                                      stage=lambda text: status.update(text))
        _print(report, console, top)
        _write(report, model, spec, json_path, csv_path if per_layer else None, per_layer, console)
    return report


def _write(report: BenchReport, model: Path, spec: BenchmarkSpec, json_path: Path | None, csv_path: Path | None,
           per_layer: bool, console: Console) -> None:
    """Every metric as JSON, and the per-layer table as CSV."""
    if json_path is not None:
        blob = {"model": str(model), "runtime": report.description, "settings": spec.model_dump(),
                "metrics": report.metrics, "timing": report.timing,
                "layers": report.layer_table(), "op_types": report.op_table()}
        json_path.write_text(json.dumps(blob, indent=2, default=str))
        console.print(f"metrics: {json_path}")
    if per_layer:
        target = csv_path or (json_path.with_suffix(".layers.csv") if json_path else Path("layers.csv"))
        with open(target, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["layer", "op_type", "ms", "share"])
            writer.writeheader()
            writer.writerows(report.layer_table())
        console.print(f"per-layer times: {target}")


def _value(key: str, value: Any) -> str:
    if value is None:
        return "unavailable"
    if isinstance(value, float):
        text = f"{value:.4g}"
    else:
        text = str(value)
    unit = UNITS.get(key, "img/s" if key.startswith("throughput_b") else "")
    return f"{text} {unit}".strip()


def _print(report: BenchReport, console: Console, top: int) -> None:
    table = Table(title=report.description)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in report.metrics.items():
        table.add_row(key, _value(key, value))
    console.print(table)
    if report.layers:
        layers = Table(title=f"top {top} layers (sum {report.metrics['layers_sum_ms']:.3f} ms, "
                             f"end-to-end median {report.metrics['latency_ms']:.3f} ms)")
        for col in ("layer", "op type", "ms", "share"):
            layers.add_column(col, justify="left" if col in ("layer", "op type") else "right")
        for row in report.layer_table()[:top]:
            layers.add_row(row["layer"], row["op_type"], f"{row['ms']:.4f}", f"{row['share']:.1%}")
        console.print(layers)
        ops = Table(title="by operator type")
        for col in ("op type", "ms", "share"):
            ops.add_column(col, justify="left" if col == "op type" else "right")
        for row in report.op_table():
            ops.add_row(row["op_type"], f"{row['ms']:.4f}", f"{row['share']:.1%}")
        console.print(ops)


def _inputs(model: Path, checkpoint: Path | None, data: str | None, calibration: str | None, data_root: Path | None,
            split: str, spec: BenchmarkSpec, work: Path, described: Architecture = RECORDED
            ) -> tuple[Any, Path, OnnxInput, np.ndarray, tuple]:
    """The PyTorch module (parity against PyTorch, or the torch runtime), the ONNX file (a
    checkpoint exported first) and its input, the parity sample, and (calibration, images, labels)."""
    module = None
    source = checkpoint if checkpoint is not None else (model if model.suffix in (".pt", ".pth") else None)
    if source is not None:
        from edgetune.models.registry import load_described

        module, _ = load_described(source, described)
        module.eval()
    onnx_path = model
    splits = _dataset(data, data_root) if data else None
    calib_splits = _dataset(calibration, data_root) if calibration else splits
    if model.suffix in (".pt", ".pth"):
        import torch

        from edgetune.runtimes.export import export_onnx

        shape = (module.conv1.in_channels, 28, 28) if splits is None else (splits.in_channels, *splits.image_size)
        onnx_path = work / f"{model.stem}.onnx"
        export_onnx(module, torch.zeros(1, *shape), onnx_path)
    found = onnx_input(onnx_path)
    # Real images where a dataset is named (parity on real inputs); a fixed random batch otherwise.
    if splits is not None or calib_splits is not None:
        s = splits or calib_splits
        sample = s.normalize(s.val.images[:64]).numpy()
    else:
        sample = random_images(found, model)
    calib = None
    if spec.precision == "int8":
        if calib_splits is None:
            raise ConfigError("--precision int8 needs --calibration DATASET (or --data) for calibration images")
        calib = calib_splits.normalize(calib_splits.train.subset(spec.calibration_images, seed=1).images).numpy()
    eval_images = eval_labels = None
    if splits is not None:
        part = getattr(splits, split)
        eval_images, eval_labels = splits.normalize(part.images).numpy(), part.labels.numpy()
    return module, onnx_path, found, sample, (calib, eval_images, eval_labels)

