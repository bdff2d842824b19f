"""Candidates measured on a device worker (`edgetune bench-worker`): each benchmark goes out as a
JSON request over Celery and Redis, and its metrics come back."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from edgetune.config.benchmark import BenchmarkSpec
from edgetune.errors import EdgetuneError
from edgetune.executors.base import NO_SCORING, Executor, Measurement, Scoring, Stage
from edgetune.runtimes.profiler import ParityError, verify_artifact
from edgetune.worker import app as worker_app
from edgetune.worker.messages import BenchRequest, encode_array


class DeviceWorkerExecutor(Executor):
    @classmethod
    def from_settings(cls, settings: Any) -> DeviceWorkerExecutor:
        """From the experiment's `remote:` section (RemoteSpec)."""
        return cls(settings.broker, settings.queue, settings.timeout)

    def __init__(self, broker: str, queue: str, timeout: float, app: Any = None) -> None:
        self.broker, self.queue, self.timeout = broker, queue, timeout
        self.target = f"the device worker on queue '{queue}'"
        self.app = app if app is not None else worker_app.make_app(broker)
        self.reference_onnx: Path | None = None
        self.reference_spec: BenchmarkSpec | None = None

    def open_reference(self, onnx_path: Path, spec: BenchmarkSpec, module: Any = None,
                       calibration: np.ndarray | None = None, work_dir: Path | None = None) -> None:
        # Sent with every request; the worker opens it there, as `spec` says.
        self.reference_onnx, self.reference_spec = onnx_path, spec

    def request(self, onnx_path: Path, spec: BenchmarkSpec, sample: np.ndarray, scoring: Scoring) -> BenchRequest:
        """The request for this model, settings and data. Its id is their digest: a producer retrying
        after a crash asks for the same answer rather than a second benchmark."""
        model = onnx_path.read_bytes()
        reference = self.reference_onnx.read_bytes() if self.reference_onnx is not None else None
        scored = spec.precision != "fp32" and scoring.images is not None and scoring.labels is not None
        fields = {
            "calibration": encode_array(scoring.calibration) if spec.precision == "int8"
            and scoring.calibration is not None else None,
            "eval_images": encode_array(scoring.images) if scored else None,
            "eval_labels": encode_array(scoring.labels, np.int64) if scored else None,
        }
        # The reference opened as the model is needs no settings of its own (and keeps the ids
        # such requests always had).
        reference_spec = self.reference_spec if reference is not None and self.reference_spec != spec else None
        digest = hashlib.sha256(model + (reference or b"") + spec.model_dump_json().encode()
                                + "".join(v or "-" for v in fields.values()).encode()
                                + (reference_spec.model_dump_json().encode() if reference_spec else b"")
                                ).hexdigest()[:40]
        return BenchRequest(id=f"bench-{digest}", onnx=base64.b64encode(model).decode(),
                            reference_onnx=None if reference is None else base64.b64encode(reference).decode(),
                            sample=encode_array(sample), benchmark=spec, reference_benchmark=reference_spec, **fields)

    def measure(self, onnx_path: Path, spec: BenchmarkSpec, sample: np.ndarray, *, module: Any = None,
                scoring: Scoring = NO_SCORING, work_dir: Path | None = None,
                stage: Stage = lambda _: None) -> Measurement:
        stage(f"benchmarking on the device worker '{self.queue}'")
        request = self.request(onnx_path, spec, sample, scoring)
        result = worker_app.submit(self.app, self.queue, request, self.timeout)
        if result.error is not None:
            # The device's parity verdict stays a ParityError here, as a local measurement's is.
            kind = ParityError if result.error.startswith("ParityError") else EdgetuneError
            raise kind(f"device worker on '{self.queue}' ({result.device or 'unknown device'}): {result.error}")
        return Measurement(dict(result.metrics), {"description": f"{result.device} via queue {self.queue}",
                                                  "request": request.id})

    def verify(self, onnx_path: Path, spec: BenchmarkSpec, sample: np.ndarray, *, module: Any = None,
               scoring: Scoring = NO_SCORING, stage: Stage = lambda _: None) -> dict[str, Any]:
        if spec.precision != "fp32" and scoring.images is not None:
            # The deployed model's accuracy needs the device's runtime: ask the worker again (new
            # weights make a new request; the timing is the same shapes' again).
            return self.measure(onnx_path, spec, sample, module=module, scoring=scoring, stage=stage).metrics
        # fp32 parity (and accuracy, when images are given) is checked here on ONNX Runtime: the
        # device's runtime may not be installed on this machine, and the device checked its own
        # output against the same file within fp32's tolerance.
        return verify_artifact(onnx_path, BenchmarkSpec(batch_size=spec.batch_size), sample, module=module,
                               scoring=Scoring(images=scoring.images, labels=scoring.labels), stage=stage)
