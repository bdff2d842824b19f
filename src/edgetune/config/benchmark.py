"""How a model is benchmarked: runtime, device, precision and the timing procedure.

Its own module, free of PyTorch, because a device worker that only benchmarks ONNX files
validates it and must install without PyTorch.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator

from edgetune.catalog import RUNTIMES
from edgetune.config.base import Strict
from edgetune.errors import ConfigError

# ONNX Runtime's static INT8 formats: QDQ or operator-oriented graph, uint8 or int8 activations,
# weights per channel or per tensor. `auto` measures them on the target once and keeps the
# fastest within `int8_tolerance` (edgetune.hardware.formats).
INT8_FORMATS = ("qdq-u8-channel", "qdq-s8-channel", "qdq-u8-tensor", "qdq-s8-tensor", "qop-u8-channel",
                "qop-s8-channel")
DEFAULT_INT8 = "qdq-u8-channel"  # the fastest on the 2-core CPU (benchmarks/bench_int8_formats.py)
Int8Format = Literal["auto", "qdq-u8-channel", "qdq-s8-channel", "qdq-u8-tensor", "qdq-s8-tensor",
                     "qop-u8-channel", "qop-s8-channel"]


# Shorter timing than a study's, where only a latency is needed many times over (sensitivity
# grids, width profiles, a precision's scale).
QUICK_BENCHMARK = {"runs_per_round": 20, "min_rounds": 3, "max_rounds": 10, "max_seconds": 5.0, "warmup": 5,
                   "throughput_batches": [], "energy_seconds": 0.0, "engine_throughput": False}


class BenchmarkSpec(Strict):
    """Every count and duration is bounded: a device worker validates requests with this schema,
    and a warmup of 1e12 would tie it up for good (the bounds are far above any real use)."""

    runtime: str = "onnxruntime"
    device: str = Field("cpu", description="onnxruntime: cpu|cuda|tensorrt|openvino; openvino: CPU|GPU|NPU")
    precision: Literal["fp32", "fp16", "bf16", "int8"] = "fp32"
    hint: Literal["latency", "throughput"] = "latency"
    threads: int = Field(1, gt=0, le=1024)
    batch_size: int = Field(1, gt=0, le=4096)
    throughput_batches: list[Annotated[int, Field(gt=0, le=4096)]] = Field(default_factory=lambda: [32], max_length=16)
    throughput_seconds: float = Field(1.0, gt=0, le=600)
    # Throughput is timed until its relative standard error is under this (at least 5 batches and
    # a tenth of throughput_seconds, at most throughput_seconds); None: for throughput_seconds.
    throughput_stable: float | None = Field(0.01, gt=0, le=1)
    warmup: int = Field(10, ge=0, le=100_000)
    runs_per_round: int = Field(30, gt=0, le=100_000)
    min_rounds: int = Field(5, gt=0, le=10_000)
    max_rounds: int = Field(30, gt=0, le=10_000)
    max_seconds: float = Field(20.0, gt=0, le=3600)
    # Repeat the whole measurement; re-measure while repeats differ by more than max_spread.
    repeats: int = Field(1, gt=0, le=100)
    max_spread: float = Field(0.02, gt=0)
    remeasure: int = Field(2, ge=0, le=100)
    # Interleave every candidate with the baseline and keep the ratio (see runtimes/timing.py).
    interleave_reference: bool = True
    calibration_images: int = Field(300, gt=0, le=100_000)
    int8_format: Int8Format = "auto"
    int8_tolerance: float = Field(1.0, ge=0)  # top-1 points below fp32 an automatic choice may lose
    per_layer: bool = False
    layer_runs: int = Field(20, gt=0, le=100_000)
    energy_seconds: float = Field(1.0, ge=0, le=600)
    engine_throughput: bool = True

    @field_validator("runtime")
    @classmethod
    def _known_runtime(cls, name: str) -> str:
        if name not in RUNTIMES:
            raise ValueError(f"unknown runtime '{name}'; available: {', '.join(RUNTIMES)}")
        return name

    def quick(self, **update: object) -> BenchmarkSpec:
        """The same target timed the short way (QUICK_BENCHMARK), with `update` on top."""
        return self.model_copy(update={**QUICK_BENCHMARK, **update})


# A command's flags by the setting they set, where the two are spelt differently.
_FLAGS = {"batch_size": "batch", "throughput_batches": "batch"}


def benchmark_from_flags(**settings: Any) -> BenchmarkSpec:
    """The settings a command's flags give, or one ConfigError naming the flag typed, its value
    and what is accepted (`edgetune bench`, `profile-widths`)."""
    try:
        return BenchmarkSpec(**settings)
    except ValidationError as exc:
        first = exc.errors()[0]
        flag = "--" + _FLAGS.get(str(first["loc"][0]), str(first["loc"][0])).replace("_", "-")
        raise ConfigError(f"{flag}: {first['msg'].removeprefix('Value error, ')} (got {first.get('input')!r})",
                          key=flag) from None
