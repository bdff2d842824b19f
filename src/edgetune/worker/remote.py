"""The producer's side of a device worker: each candidate's benchmark goes out as a request
and its metrics come back, in place of profiling on this machine."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgetune.benchspec import BenchmarkSpec
from edgetune.errors import ConfigError, EdgetuneError
from edgetune.worker.messages import BenchRequest, encode_array


@dataclass
class RemoteBench:
    broker: str
    queue: str
    timeout: float
    app: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        from edgetune.worker.app import make_app

        self.app = make_app(self.broker)

    def measure(self, onnx_path: Path, spec: BenchmarkSpec, sample: np.ndarray,
                reference_onnx: Path | None) -> tuple[dict[str, Any], dict[str, Any]]:
        if spec.precision != "fp32":
            raise ConfigError(f"remote benchmarks run fp32 models for now, not {spec.precision}",
                              key="benchmark.precision")
        from edgetune.worker.app import submit

        model = onnx_path.read_bytes()
        reference = reference_onnx.read_bytes() if reference_onnx is not None else None
        # The id names this exact model and settings: a producer retrying after a crash asks
        # for the same answer rather than a second benchmark.
        digest = hashlib.sha256(model + (reference or b"") + spec.model_dump_json().encode()).hexdigest()[:40]
        request = BenchRequest(id=f"bench-{digest}", onnx=base64.b64encode(model).decode(),
                               reference_onnx=None if reference is None else base64.b64encode(reference).decode(),
                               sample=encode_array(sample), benchmark=spec)
        result = submit(self.app, self.queue, request, self.timeout)
        if result.error is not None:
            raise EdgetuneError(f"device worker on '{self.queue}' ({result.device or 'unknown device'}): {result.error}")
        return dict(result.metrics), {"description": f"{result.device} via queue {self.queue}", "request": request.id}
