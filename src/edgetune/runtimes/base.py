"""One small interface per inference runtime, so that a trial or `edgetune bench` can time a
model on whatever engine the target device runs, each engine in its own lazily imported module.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgetune.errors import ConfigError

Infer = Callable[[np.ndarray], np.ndarray]

# name -> (module, class); modules import their engine only when chosen.
RUNTIMES: dict[str, tuple[str, str]] = {
    "onnxruntime": ("edgetune.runtimes.onnxruntime", "OnnxRuntime"),
}


class Runtime(ABC):
    """Loads an ONNX file and returns a callable that runs one batch; timing lives elsewhere."""

    name: str

    @abstractmethod
    def load(self, onnx_path: Path, *, threads: int) -> Infer:
        """A callable that runs the model on one input array and returns the first output."""

    def describe(self) -> str:
        return self.name


def get_runtime(name: str, **options: object) -> Runtime:
    if name not in RUNTIMES:
        raise ConfigError(f"unknown runtime '{name}'; available: {', '.join(RUNTIMES)}", key="benchmark.runtime")
    module, cls = RUNTIMES[name]
    return getattr(importlib.import_module(module), cls)(**options)
