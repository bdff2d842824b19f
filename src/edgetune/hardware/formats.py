"""Which INT8 format runs fastest on this target, at an accuracy the user accepts.

ONNX Runtime quantises a graph in several formats, and their speed depends on the CPU's
instructions: on our 2-core VM the QDQ graph with uint8 activations ran at 0.36x FP32 while the
same graph with int8 activations ran 1.4x *slower*, and the operator-oriented int8 graph 6.8x
slower (benchmarks/bench_int8_formats.py). Another CPU (VNNI, ARM dot-product) can order them
differently, so a study measures each format once on its own target, on the baseline network,
and every candidate is quantised in the winner. The table is cached beside the width profiles.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgetune.config.benchmark import INT8_FORMATS, BenchmarkSpec
from edgetune.files import atomic_write_json, cache_root
from edgetune.profiler import accuracy
from edgetune.quantize import format_args, ort_int8
from edgetune.runtimes import get_runtime, time_interleaved
from edgetune.runtimes.base import Artifact, SessionOptions


@dataclass(frozen=True)
class FormatResult:
    format: str
    latency_ms: float
    latency_ratio: float  # to the FP32 network, timed interleaved with it
    top1: float


@dataclass(frozen=True)
class FormatChoice:
    chosen: str
    reason: str
    fp32_top1: float
    results: tuple[FormatResult, ...]


TIE = 0.02  # formats this close in speed are tied (timing noise): the earlier in INT8_FORMATS wins


def pick(results: list[FormatResult], fp32_top1: float, tolerance: float) -> tuple[str, str]:
    """The fastest format within `tolerance` top-1 points of FP32; if none is, the most accurate."""
    eligible = [r for r in results if r.top1 >= fp32_top1 - tolerance]
    if eligible:
        fastest = min(r.latency_ratio for r in eligible)
        best = next(r for r in eligible if r.latency_ratio <= fastest * (1 + TIE))
        return best.format, (f"fastest within {tolerance:g} points of fp32 top-1 ({best.latency_ratio:.2f}x fp32, "
                             f"top-1 {best.top1:.2f} vs {fp32_top1:.2f})")
    best = max(results, key=lambda r: (r.top1, -r.latency_ratio))
    return best.format, (f"no format within {tolerance:g} points of fp32 top-1 {fp32_top1:.2f}; the most accurate "
                         f"({best.top1:.2f}, {best.latency_ratio:.2f}x fp32)")


def _key(onnx_path: Path, spec: BenchmarkSpec, calibration: np.ndarray, labels: np.ndarray) -> str:
    """Speed depends on the target, accuracy on the weights and the images scored: all of them."""
    h = hashlib.sha256(onnx_path.read_bytes())
    h.update(json.dumps({"runtime": spec.runtime, "device": spec.device, "threads": spec.threads,
                         "batch": spec.batch_size, "tolerance": spec.int8_tolerance}, sort_keys=True).encode())
    h.update(np.ascontiguousarray(calibration).tobytes())
    h.update(np.ascontiguousarray(labels).tobytes())
    return h.hexdigest()[:16]


def choose_int8_format(onnx_path: Path, spec: BenchmarkSpec, calibration: np.ndarray, images: np.ndarray,
                       labels: np.ndarray, work_dir: Path, cache: Path | None = None,
                       progress: Callable[[str], None] = lambda _: None) -> FormatChoice:
    """Quantise the FP32 network in every format, time each interleaved with FP32 at the spec's
    batch and threads, score each on `images`, pick; read from `cache` when measured before."""
    key = _key(onnx_path, spec, calibration, labels)
    path = (cache or cache_root() / "int8-formats") / f"{key}.json"
    if path.is_file():
        data = json.loads(path.read_text())
        return FormatChoice(data["chosen"], data["reason"], data["fp32_top1"],
                            tuple(FormatResult(**r) for r in data["results"]))
    runtime = get_runtime(spec.runtime)
    options = SessionOptions(device=spec.device, threads=spec.threads)
    x = np.ascontiguousarray(np.resize(images[:1], (spec.batch_size, *images.shape[1:])).astype(np.float32))
    reference = runtime.open(Artifact(onnx_path), options)
    results = []
    try:
        fp32_top1 = accuracy(reference, images, labels)["top1"]
        ref_call = reference.bind(x)
        for name in INT8_FORMATS:
            progress(f"measuring int8 format {name} (once per target)")
            quantised = ort_int8(onnx_path, work_dir, calibration, *format_args(name))
            session = runtime.open(Artifact(quantised), options)
            try:
                t = time_interleaved(session.bind(x), ref_call, warmup=spec.warmup, runs_per_round=spec.runs_per_round,
                                     min_rounds=spec.min_rounds, max_rounds=spec.max_rounds,
                                     max_seconds=spec.max_seconds)
                results.append(FormatResult(name, t.latency_ms, t.latency_ratio, accuracy(session, images, labels)["top1"]))
            finally:
                session.close()
    finally:
        reference.close()
    chosen, reason = pick(results, fp32_top1, spec.int8_tolerance)
    choice = FormatChoice(chosen, reason, fp32_top1, tuple(results))
    atomic_write_json(path, {**asdict(choice), "results": [asdict(r) for r in results]}, indent=1)
    return choice


def write_choice(choice: FormatChoice, path: Path) -> None:
    """int8-formats.csv in the run directory: what was measured and which one every trial used."""
    import csv

    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["format", "latency_ms", "x_fp32", "top1", "fp32_top1", "chosen"])
        for r in choice.results:
            w.writerow([r.format, f"{r.latency_ms:.4f}", f"{r.latency_ratio:.4f}", f"{r.top1:.2f}",
                        f"{choice.fp32_top1:.2f}", r.format == choice.chosen])
