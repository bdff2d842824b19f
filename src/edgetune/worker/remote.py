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
from edgetune.errors import EdgetuneError
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

    def measure(self, onnx_path: Path, spec: BenchmarkSpec, sample: np.ndarray, reference_onnx: Path | None,
                calibration: np.ndarray | None = None, eval_images: np.ndarray | None = None,
                eval_labels: np.ndarray | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        from edgetune.worker.app import submit

        model = onnx_path.read_bytes()
        reference = reference_onnx.read_bytes() if reference_onnx is not None else None
        int8 = spec.precision == "int8"
        scored = spec.precision != "fp32" and eval_images is not None and eval_labels is not None
        fields = {
            "calibration": encode_array(calibration) if int8 and calibration is not None else None,
            "eval_images": encode_array(eval_images) if scored else None,
            "eval_labels": encode_array(eval_labels, np.int64) if scored else None,
        }
        # The id names this exact model, settings and data: a producer retrying after a crash asks
        # for the same answer rather than a second benchmark.
        digest = hashlib.sha256(model + (reference or b"") + spec.model_dump_json().encode()
                                + "".join(v or "-" for v in fields.values()).encode()).hexdigest()[:40]
        request = BenchRequest(id=f"bench-{digest}", onnx=base64.b64encode(model).decode(),
                               reference_onnx=None if reference is None else base64.b64encode(reference).decode(),
                               sample=encode_array(sample), benchmark=spec, **fields)
        result = submit(self.app, self.queue, request, self.timeout)
        if result.error is not None:
            raise EdgetuneError(f"device worker on '{self.queue}' ({result.device or 'unknown device'}): {result.error}")
        return dict(result.metrics), {"description": f"{result.device} via queue {self.queue}", "request": request.id}
