"""The benchmark behind `edgetune bench` and every trial: convert to the precision, open on the
runtime, check the output against the reference, then measure everything a deployment
engineer asks about. Values a machine cannot provide are None, never estimates.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgetune.config.benchmark import BenchmarkSpec
from edgetune.entrypoints import user_metrics
from edgetune.errors import EdgetuneError
from edgetune.runtimes.base import Artifact, LayerTime, Session, SessionOptions, get_runtime
from edgetune.runtimes.meters import measure_energy, rss_bytes
from edgetune.runtimes.onnx_stats import onnx_params_and_macs
from edgetune.runtimes.timing import Timing, throughput, time_runs, time_trusted


class ParityError(EdgetuneError):
    """The deployed artefact computes something else than the model it came from."""


@dataclass(frozen=True)
class Scoring:
    """Held-out images to score the deployed artefact on (its int8 or fp16 accuracy is its own),
    calibration images to quantise it with, and the batch it is scored in (a file exported with a
    fixed batch of 1 is scored one image at a time)."""

    calibration: np.ndarray | None = None
    images: np.ndarray | None = None
    labels: np.ndarray | None = None
    # The user's `evaluate` function, called on the deployed artefact's outputs: code of this
    # process, so only an executor on this machine can (a device worker is refused it at planning).
    metric: Any = None
    batch: int = 250


NO_SCORING = Scoring()

# Largest |difference| accepted, relative to max(1, largest |logit|), per precision.
TOLERANCE = {"fp32": 1e-3, "fp16": 3e-2, "bf16": 8e-2}
INT8_MIN_AGREEMENT = 0.9


@dataclass
class BenchReport:
    metrics: dict[str, Any]
    layers: list[LayerTime] = field(default_factory=list)
    description: str = ""
    deployed: Path | None = None
    timing: dict[str, Any] = field(default_factory=dict)

    def layer_table(self) -> list[dict[str, Any]]:
        total = sum(layer.ms for layer in self.layers) or 1.0
        rows = sorted(self.layers, key=lambda layer: -layer.ms)
        return [{"layer": r.name, "op_type": r.op_type, "ms": r.ms, "share": r.ms / total} for r in rows]

    def op_table(self) -> list[dict[str, Any]]:
        by_op: dict[str, float] = defaultdict(float)
        for layer in self.layers:
            by_op[layer.op_type] += layer.ms
        total = sum(by_op.values()) or 1.0
        return [{"op_type": k, "ms": v, "share": v / total} for k, v in sorted(by_op.items(), key=lambda kv: -kv[1])]


def check_parity(outputs: np.ndarray, expected: np.ndarray, precision: str, what: str) -> dict[str, float]:
    diff = float(np.abs(outputs - expected).max())
    agreement = float((outputs.argmax(1) == expected.argmax(1)).mean())
    scale = max(1.0, float(np.abs(expected).max()))
    if precision == "int8":
        # Quantisation moves logits by design; what must hold is the decision.
        if agreement < INT8_MIN_AGREEMENT:
            raise ParityError(f"{what}: int8 output agrees with the fp32 reference on {agreement:.0%} of images "
                              f"(need {INT8_MIN_AGREEMENT:.0%}); max |difference| {diff:.3g}")
    elif diff > TOLERANCE[precision] * scale:
        raise ParityError(f"{what}: output differs from the reference by {diff:.3g} "
                          f"(tolerance {TOLERANCE[precision] * scale:.3g} for {precision})")
    return {"max_abs_diff": diff, "argmax_agreement": agreement}


def _expected(module: Any, onnx_path: Path, x: np.ndarray) -> np.ndarray:
    """PyTorch's output when the module is at hand, else ONNX Runtime fp32 on the source file."""
    if module is not None:
        import torch

        module.eval()
        with torch.no_grad():
            return module(torch.from_numpy(x)).float().numpy()
    session = get_runtime("onnxruntime").open(Artifact(onnx_path), SessionOptions())
    try:
        return session.run(x)
    finally:
        session.close()


def _convert(onnx_path: Path, spec: BenchmarkSpec, calibration: np.ndarray | None, work_dir: Path | None) -> Path:
    """The file the target runs: `onnx_path` converted to the spec's precision (and format)."""
    return get_runtime(spec.runtime).convert(onnx_path, spec.precision, work_dir or onnx_path.parent, calibration,
                                             spec.int8_format)


def _open(deployed: Path, spec: BenchmarkSpec, module: Any = None) -> Session:
    options = SessionOptions(device=spec.device, threads=spec.threads, precision=spec.precision, hint=spec.hint)
    return get_runtime(spec.runtime).open(Artifact(deployed, module), options)


def _parity(session: Session, deployed: Path, onnx_path: Path, spec: BenchmarkSpec, sample: np.ndarray,
            module: Any) -> dict[str, float]:
    """The deployed artefact's output on up to 64 of `sample` against the network it came from."""
    check = _batch(sample, min(len(sample), 64))
    return check_parity(session.run(check), _expected(module, onnx_path, check), spec.precision,
                        f"{deployed} on {session.description}")


def _model_bytes(path: Path) -> int:
    size = path.stat().st_size
    weights = path.with_suffix(".bin")
    return size + (weights.stat().st_size if path.suffix == ".xml" and weights.is_file() else 0)


def accuracy(session: Session, images: np.ndarray, labels: np.ndarray, batch: int = 250,
             metric: Any = None) -> dict[str, float]:
    """Top-1/top-5 (%) of the deployed artefact itself, so int8 accuracy is int8's; with
    `metric` (the user's `evaluate` function), its metrics on the artefact's outputs too."""
    hit1 = hit5 = 0
    outputs = []
    for i in range(0, len(labels), batch):
        logits = session.run(np.ascontiguousarray(images[i:i + batch]))
        if metric is not None:
            outputs.append(logits)
        flat = np.moveaxis(logits, 1, -1).reshape(-1, logits.shape[1])  # per image, or per pixel of a mask
        top = np.argsort(-flat, axis=1)[:, :5]
        y = labels[i:i + batch].reshape(-1, 1)
        hit1 += int((top[:, :1] == y).sum())
        hit5 += int((top == y).any(axis=1).sum())
    positions = labels.size
    scores = {"top1": 100.0 * hit1 / positions, "top5": 100.0 * hit5 / positions}
    if metric is not None:
        import torch

        scores.update(user_metrics(metric, torch.from_numpy(np.concatenate(outputs)).float(), torch.from_numpy(labels)))
    return scores


def deployed_predictions(onnx_path: Path, spec: BenchmarkSpec, images: np.ndarray, *, module: Any = None,
                         calibration: np.ndarray | None = None, work_dir: Path | None = None,
                         batch: int = 250) -> np.ndarray:
    """The class the deployed artefact (converted to `spec.precision`, parity checked against
    `module`) gives each image: per-image answers, which paired comparisons need."""
    deployed = _convert(onnx_path, spec, calibration, work_dir)
    session = _open(deployed, spec, module)
    try:
        _parity(session, deployed, onnx_path, spec, images, module)
        answers = [np.argmax(session.run(np.ascontiguousarray(images[i:i + batch])), axis=1)
                   for i in range(0, len(images), batch)]
        return np.concatenate(answers)
    finally:
        session.close()


def profile_artifact(onnx_path: Path, spec: BenchmarkSpec, sample: np.ndarray, *, module: Any = None,
                     scoring: Scoring = NO_SCORING, reference: Session | None = None, work_dir: Path | None = None,
                     stage: Any = lambda _: None) -> BenchReport:
    """`sample`: real, normalised images (at least one); batches are cut or tiled from it. The
    file is converted (quantised on `scoring.calibration`), checked against `module` (or its own
    FP32 output), timed beside `reference` and scored on `scoring`'s images."""
    stage(_preparing(spec))
    deployed = _convert(onnx_path, spec, scoring.calibration, work_dir)
    rss0 = rss_bytes()
    session = _open(deployed, spec, module)
    try:
        parity = _parity(session, deployed, onnx_path, spec, sample, module)
        stage("benchmarking")
        x = _batch(sample, spec.batch_size)
        timing, unreliable, metrics = _latency(session, x, spec, reference)
        metrics.update(parity)
        if unreliable:
            metrics["latency_unreliable"] = unreliable
        metrics.update(_under_load(session, sample, spec, timing.latency_ms, rss0))
        metrics.update(_size(module, x, onnx_path, deployed, spec, timing.latency_ms))
        metrics.update(_deployed_scores(session, scoring, stage))
        layers: list[LayerTime] = []
        if spec.per_layer:
            stage("profiling layers")
            layers = session.layer_times(x, spec.layer_runs)
            metrics["layers_sum_ms"] = sum(layer.ms for layer in layers)
        return BenchReport(metrics, layers, session.description, deployed, timing.as_dict())
    finally:
        session.close()


def _batch(sample: np.ndarray, n: int) -> np.ndarray:
    return np.ascontiguousarray(np.resize(sample, (n, *sample.shape[1:])).astype(np.float32))


def _preparing(spec: BenchmarkSpec) -> str:
    """The progress text of converting (and, at fp32, only opening) the artefact and its parity check."""
    return f"converting to {spec.precision}" if spec.precision != "fp32" else "checking the exported model"


def _deployed_scores(session: Session, scoring: Scoring, stage: Any = lambda _: None) -> dict[str, float]:
    """`deployed_top1`, `deployed_top5` and the user's metrics, from the artefact's own outputs."""
    if scoring.images is None or scoring.labels is None:
        return {}
    stage("scoring the deployed model")
    return {f"deployed_{k}": v for k, v in accuracy(session, scoring.images, scoring.labels, batch=scoring.batch,
                                                    metric=scoring.metric).items()}


def _latency(session: Session, x: np.ndarray, spec: BenchmarkSpec, reference: Session | None
             ) -> tuple[Timing, str | None, dict[str, Any]]:
    """Batch `x` timed in rounds interleaved with the reference (the same metric names as
    always); without a given reference (the baseline), a second binding of the same model, whose
    ratio then measures the noise floor of the ratio itself."""
    call = session.bind(x)
    ref_call = None
    if spec.interleave_reference:
        ref_call = reference.bind(x) if reference is not None else session.bind(x)
    timing, unreliable = time_trusted(
        call, ref_call, repeats=spec.repeats, max_spread=spec.max_spread, remeasure=spec.remeasure,
        warmup=spec.warmup, runs_per_round=spec.runs_per_round, min_rounds=spec.min_rounds,
        max_rounds=spec.max_rounds, max_seconds=spec.max_seconds,
    )
    total_ms = float(np.median(time_runs(lambda: session.run(x), max(spec.runs_per_round, 20))))
    return timing, unreliable, {
        "latency_ms": timing.latency_ms, "latency_mean_ms": timing.latency_mean_ms,
        "latency_std_ms": timing.latency_std_ms, "latency_p90_ms": timing.latency_p90_ms,
        "latency_p99_ms": timing.latency_p99_ms, "latency_min_ms": timing.latency_min_ms, "runs": timing.runs,
        "latency_ratio": timing.latency_ratio, "repeat_spread": timing.repeat_spread,
        "total_latency_ms": total_ms,
        "load_seconds": session.load_seconds, "compile_seconds": session.compile_seconds,
    }


def _under_load(session: Session, sample: np.ndarray, spec: BenchmarkSpec, latency_ms: float,
                rss0: int | None) -> dict[str, Any]:
    """Throughput at each asked batch, the engine's own, energy and the session's memory."""
    metrics: dict[str, Any] = {}
    for b in spec.throughput_batches:
        metrics[f"throughput_b{b}"] = throughput(session.bind(_batch(sample, b)), b, min_seconds=spec.throughput_seconds,
                                                   stable=spec.throughput_stable)
    first = spec.throughput_batches[0] if spec.throughput_batches else spec.batch_size
    metrics["throughput"] = metrics.get(f"throughput_b{first}") or 1e3 * spec.batch_size / latency_ms
    metrics["batch_latency_ms"] = 1e3 * first / metrics["throughput"]
    metrics["engine_throughput"] = (session.throughput(_batch(sample, 1), spec.throughput_seconds)
                                    if spec.engine_throughput else None)
    energy = measure_energy(session.bind(_batch(sample, spec.batch_size)), spec.device, spec.energy_seconds) \
        if spec.energy_seconds else None
    metrics["energy_mj"] = None if energy is None else 1e3 * energy[0]
    metrics["power_w"] = None if energy is None else energy[1]
    rss1 = rss_bytes()
    metrics["session_memory_mb"] = None if rss0 is None or rss1 is None else (rss1 - rss0) / 2**20
    return metrics


def _size(module: Any, x: np.ndarray, onnx_path: Path, deployed: Path, spec: BenchmarkSpec,
          latency_ms: float) -> dict[str, Any]:
    """MACs and parameters (from the network object where there is one, else from the file at
    the shape it is timed at), the files' bytes and the arithmetic rate achieved."""
    if module is not None:
        import torch
        import torch_pruning as tp

        macs, params = tp.utils.count_ops_and_params(module, example_inputs=torch.from_numpy(x[:1]))
    else:
        params, macs = onnx_params_and_macs(onnx_path, tuple(x.shape[1:]))
    return {"params": int(params), "macs": int(macs), "flops": 2 * int(macs), "model_bytes": _model_bytes(deployed),
            "onnx_bytes": onnx_path.stat().st_size,
            "achieved_gflops": 2 * macs * spec.batch_size / (latency_ms * 1e-3) / 1e9}


def verify_artifact(onnx_path: Path, spec: BenchmarkSpec, sample: np.ndarray, *, module: Any = None,
                    scoring: Scoring = NO_SCORING, work_dir: Path | None = None,
                    stage: Any = lambda _: None) -> dict[str, Any]:
    """Parity and deployed accuracy without timing: for the fine-tuned weights of a network
    whose (shape-determined) speed was measured before fine-tuning."""
    stage(_preparing(spec))
    deployed = _convert(onnx_path, spec, scoring.calibration, work_dir)
    session = _open(deployed, spec, module)
    try:
        out = _parity(session, deployed, onnx_path, spec, sample, module)
        out.update(_deployed_scores(session, scoring, stage))
        out["model_bytes"] = _model_bytes(deployed)
        return out
    finally:
        session.close()


def open_reference(onnx_path: Path, spec: BenchmarkSpec, module: Any = None, calibration: np.ndarray | None = None,
                   work_dir: Path | None = None) -> Session:
    """The baseline opened the way candidates are, to be timed alongside each of them."""
    return _open(_convert(onnx_path, spec, calibration, work_dir), spec, module)


__all__ = ["NO_SCORING", "BenchReport", "ParityError", "Scoring", "accuracy", "check_parity", "open_reference", "profile_artifact",
           "verify_artifact"]
