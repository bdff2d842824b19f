"""Which INT8 format runs fastest on this target, at an accuracy the user accepts.

ONNX Runtime quantises a graph in several formats, and their speed depends on the CPU's
instructions: on our 2-core VM the QDQ graph with uint8 activations ran at 0.36x FP32 while the
same graph with int8 activations ran 1.4x *slower*, and the operator-oriented int8 graph 6.8x
slower (benchmarks/bench_int8_formats.py). Another CPU (VNNI, ARM dot-product) can order them
differently, so a study measures each format once on its own target (through its executor: on
a device worker, there), on the baseline network, and every candidate is quantised in the
winner. The table is cached beside the width profiles.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgetune.config.benchmark import INT8_FORMATS, BenchmarkSpec
from edgetune.errors import EdgetuneError
from edgetune.executors.base import Executor, Scoring
from edgetune.files import atomic_write_json, cache_root
from edgetune.runtimes.profiler import ParityError


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


def _key(onnx_path: Path, spec: BenchmarkSpec, scoring: Scoring, executor: Executor) -> str:
    """Speed depends on the target (the executor's, and its settings), accuracy on the weights
    and the images scored: all of them."""
    h = hashlib.sha256(onnx_path.read_bytes())
    target = {"runtime": spec.runtime, "device": spec.device, "threads": spec.threads, "batch": spec.batch_size,
              "tolerance": spec.int8_tolerance, **executor.cache_fields()}
    h.update(json.dumps(target, sort_keys=True).encode())
    h.update(np.ascontiguousarray(scoring.calibration).tobytes())
    h.update(np.ascontiguousarray(scoring.labels).tobytes())
    return h.hexdigest()[:16]


def choose_int8_format(executor: Executor, onnx_path: Path, spec: BenchmarkSpec, scoring: Scoring, work_dir: Path,
                       cache: Path | None = None, progress: Callable[[str], None] = lambda _: None) -> FormatChoice:
    """Quantise the FP32 network in every format on `executor`'s target (calibrated on
    `scoring.calibration`), time each interleaved with FP32 at the spec's batch and threads,
    score each on `scoring`'s images, pick; read from `cache` when measured before. A format
    whose output disagrees with FP32 (parity) is left out, not fatal: another may pass."""
    key = _key(onnx_path, spec, scoring, executor)
    path = (cache or cache_root() / "int8-formats") / f"{key}.json"
    if path.is_file():
        data = json.loads(path.read_text())
        return FormatChoice(data["chosen"], data["reason"], data["fp32_top1"],
                            tuple(FormatResult(**r) for r in data["results"]))
    fp32 = spec.model_copy(update={"precision": "fp32", "throughput_batches": [], "per_layer": False,
                                   "energy_seconds": 0.0, "engine_throughput": False})
    sample = scoring.images[:64]
    executor.open_reference(onnx_path, fp32, work_dir=work_dir)
    fp32_top1 = executor.verify(onnx_path, fp32, sample, scoring=scoring)["deployed_top1"]
    results = []
    for name in INT8_FORMATS:
        progress(f"measuring int8 format {name} (once per target)")
        int8 = fp32.model_copy(update={"precision": "int8", "int8_format": name})
        try:
            m = executor.measure(onnx_path, int8, sample, scoring=scoring, work_dir=work_dir).metrics
        except ParityError as exc:
            progress(f"int8 format {name} left out: {str(exc)[:160]}")
            continue
        results.append(FormatResult(name, m["latency_ms"], m["latency_ratio"], m["deployed_top1"]))
    if not results:
        raise EdgetuneError(f"no INT8 format of {onnx_path} agrees with its FP32 output on {executor.target}; "
                            "set benchmark.precision: fp32 (or another int8_format and calibration_images)")
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
