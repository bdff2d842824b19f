"""Candidates measured on this machine, by the profiler, each timed in rounds interleaved with
the reference's session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgetune.config.benchmark import BenchmarkSpec
from edgetune.executors.base import NO_SCORING, Executor, Measurement, Scoring, Stage
from edgetune.runtimes.base import Session
from edgetune.runtimes.profiler import open_reference, profile_artifact, verify_artifact


class LocalExecutor(Executor):
    def __init__(self) -> None:
        self.reference: Session | None = None

    def open_reference(self, onnx_path: Path, spec: BenchmarkSpec, module: Any = None,
                       calibration: np.ndarray | None = None, work_dir: Path | None = None) -> None:
        self.close()
        self.reference = open_reference(onnx_path, spec, module, calibration, work_dir)

    def measure(self, onnx_path: Path, spec: BenchmarkSpec, sample: np.ndarray, *, module: Any = None,
                scoring: Scoring = NO_SCORING, work_dir: Path | None = None,
                stage: Stage = lambda _: None) -> Measurement:
        report = profile_artifact(onnx_path, spec, sample, module=module, scoring=scoring, reference=self.reference,
                                  work_dir=work_dir, stage=stage)
        return Measurement(dict(report.metrics), {**report.timing, "description": report.description})

    def verify(self, onnx_path: Path, spec: BenchmarkSpec, sample: np.ndarray, *, module: Any = None,
               scoring: Scoring = NO_SCORING, stage: Stage = lambda _: None) -> dict[str, Any]:
        return verify_artifact(onnx_path, spec, sample, module=module, scoring=scoring, stage=stage)

    def close(self) -> None:
        if self.reference is not None:
            self.reference.close()
            self.reference = None
