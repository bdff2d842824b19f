"""One small interface per inference runtime, so that a trial or `edgetune bench` can time a
model on whatever engine the target device runs, each engine in its own lazily imported module.

A runtime opens an `Artifact` into a `Session`. The session separates what is timed:
`run(x)` takes and returns host arrays (the *total* latency, copies included) while
`bind(x)` places the input once and returns a call that only computes, where the engine
allows it. Per-layer profiling is optional per engine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from edgetune.catalog import RUNTIMES, load_plugin
from edgetune.errors import EdgetuneError

Precision = Literal["fp32", "fp16", "bf16", "int8"]

@dataclass
class Artifact:
    """What is deployed: a model file (ONNX; OpenVINO also reads its IR `.xml`), and the PyTorch
    module it came from when at hand (the `torch` runtime runs the module)."""

    path: Path | None = None
    module: object | None = None  # torch.nn.Module, untyped so this file needs no torch


@dataclass(frozen=True)
class SessionOptions:
    device: str = "cpu"
    threads: int = 1
    precision: Precision = "fp32"
    hint: Literal["latency", "throughput"] = "latency"
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LayerTime:
    name: str
    op_type: str
    ms: float  # mean per inference


class Session(ABC):
    """An opened model. `load_seconds` covers reading the file, `compile_seconds` building the
    engine's executable form (graph optimisation, kernel selection)."""

    load_seconds: float = 0.0
    compile_seconds: float = 0.0
    description: str = ""

    @abstractmethod
    def run(self, x: np.ndarray) -> np.ndarray:
        """Host input to host output: what an application pays per call."""

    def bind(self, x: np.ndarray) -> Callable[[], None]:
        """A call that computes on `x` already placed on the device; engines without the
        distinction time `run`."""
        return lambda: self.run(x)

    def layer_times(self, x: np.ndarray, runs: int) -> list[LayerTime]:
        raise EdgetuneError(f"{self.description}: per-layer profiling is not supported by this runtime")

    def throughput(self, x: np.ndarray, seconds: float) -> float | None:
        """Images/s in the engine's own throughput mode (parallel requests), if it has one."""
        return None

    def close(self) -> None:
        """Release the engine's resources."""


class Runtime(ABC):
    """An inference engine on the target. A caller may assume: `convert` returns the file `open`
    takes at that precision (the ONNX file itself at fp32), and an opened `Session` computes what
    the ONNX file does within the precision's tolerance, which the profiler checks before timing.
    An implementation must raise `EdgetuneError` (never fall back silently) for a device,
    precision or format it lacks, import its engine only inside its own module (a missing extra
    is named by the catalog row), and declare what it can do in that row (`RuntimeTraits`)."""

    name: str

    @abstractmethod
    def open(self, artifact: Artifact, options: SessionOptions) -> Session:
        """Load and compile the artifact; raise EdgetuneError for a device or precision it lacks."""

    def convert(self, onnx_path: Path, precision: str, out_dir: Path, calibration: np.ndarray | None = None,
                int8_format: str = "auto") -> Path:
        """The file this runtime opens at `precision`: each engine quantises with its own tool,
        since each fuses and schedules quantised graphs its own way. The input itself where the
        precision is only a hint to the engine."""
        check_precision(precision)
        if precision == "fp32":
            return onnx_path
        raise EdgetuneError(f"no {precision} conversion for runtime '{self.name}'")


PRECISIONS = ("fp32", "fp16", "bf16", "int8")


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise EdgetuneError(f"precision '{precision}' unknown; choose from {', '.join(PRECISIONS)}")


def require_path(artifact: Artifact, runtime: str) -> Path:
    if artifact.path is None:
        raise EdgetuneError(f"the {runtime} runtime needs a model file")
    if not Path(artifact.path).is_file():
        raise EdgetuneError(f"{artifact.path}: no such model file")
    return Path(artifact.path)


def get_runtime(name: str) -> Runtime:
    return load_plugin(RUNTIMES, name, "runtime", "benchmark.runtime")  # type: ignore[return-value]