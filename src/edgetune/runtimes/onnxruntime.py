"""ONNX Runtime on the CPU (the core dependency; other providers come with their extras)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgetune.runtimes.base import Infer, Runtime


class OnnxRuntime(Runtime):
    name = "onnxruntime"

    def __init__(self, providers: list[str] | None = None) -> None:
        self.providers = providers or ["CPUExecutionProvider"]

    def load(self, onnx_path: Path, *, threads: int) -> Infer:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        # Pinned thread counts: the default grabs every core and makes latency depend on the host load.
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(onnx_path), opts, providers=self.providers)
        input_name = session.get_inputs()[0].name

        def infer(x: np.ndarray) -> np.ndarray:
            return session.run(None, {input_name: x})[0]

        return infer

    def describe(self) -> str:
        import onnxruntime as ort

        return f"onnxruntime {ort.__version__} ({', '.join(self.providers)})"
