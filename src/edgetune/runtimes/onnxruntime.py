"""ONNX Runtime: the CPU provider from the core install; CUDA, TensorRT and OpenVINO providers
when the matching onnxruntime build is installed in its place."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgetune.errors import EdgetuneError
from edgetune.runtimes.base import (
    Artifact,
    LayerTime,
    Runtime,
    Session,
    SessionOptions,
    check_precision,
    require_path,
)
from edgetune.runtimes.quantize import format_args, need_calibration, ort_fp16, ort_int8

PROVIDERS = {
    "cpu": (["CPUExecutionProvider"], "onnxruntime"),
    "cuda": (["CUDAExecutionProvider", "CPUExecutionProvider"], "onnxruntime-gpu"),
    "tensorrt": (["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"], "onnxruntime-gpu"),
    "openvino": (["OpenVINOExecutionProvider", "CPUExecutionProvider"], "onnxruntime-openvino"),
}


def _options(options: SessionOptions, profile_dir: str | None = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # Pinned thread counts: the default takes every core and ties latency to the host's load.
    opts.intra_op_num_threads = options.threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    if profile_dir is not None:
        opts.enable_profiling = True
        opts.profile_file_prefix = os.path.join(profile_dir, "ort")
    return opts


class OrtSession(Session):
    def __init__(self, path: Path, options: SessionOptions) -> None:
        import onnxruntime as ort

        if options.device not in PROVIDERS:
            raise EdgetuneError(f"onnxruntime device '{options.device}' unknown; choose from {', '.join(PROVIDERS)}")
        providers, package = PROVIDERS[options.device]
        available = ort.get_available_providers()
        if providers[0] not in available:
            raise EdgetuneError(
                f"onnxruntime has no {providers[0]} here (available: {', '.join(available)}); "
                f"install '{package}' in place of 'onnxruntime' for device '{options.device}'")
        self.path, self.options, self.providers = path, options, providers
        t0 = time.perf_counter()
        data = path.read_bytes()
        self.load_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.session = ort.InferenceSession(data, _options(options), providers=providers)
        self.compile_seconds = time.perf_counter() - t0
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        self.description = f"onnxruntime {ort.__version__} {providers[0]} x{options.threads} {options.precision}"

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: x})[0]

    def bind(self, x: np.ndarray) -> Callable[[], None]:
        binding = self.session.io_binding()
        device = "cuda" if self.options.device in ("cuda", "tensorrt") else "cpu"
        if device == "cpu":
            binding.bind_cpu_input(self.input_name, x)
        else:
            import onnxruntime as ort

            placed = ort.OrtValue.ortvalue_from_numpy(x, device, 0)
            binding.bind_ortvalue_input(self.input_name, placed)
        binding.bind_output(self.output_name, device)
        run = self.session.run_with_iobinding
        return lambda: run(binding)

    def layer_times(self, x: np.ndarray, runs: int) -> list[LayerTime]:
        """ONNX Runtime's own profiler, per node, averaged over `runs` after a warm-up."""
        import onnxruntime as ort

        with tempfile.TemporaryDirectory() as tmp:
            session = ort.InferenceSession(str(self.path), _options(self.options, tmp), providers=self.providers)
            feed = {self.input_name: x}
            for _ in range(5):
                session.run(None, feed)
            # Warm-up runs are in the trace too: count per node and keep the last `runs` of each.
            for _ in range(runs):
                session.run(None, feed)
            trace = session.end_profiling()
            events = json.loads(Path(trace).read_text())
        per_node: dict[tuple[str, str], list[float]] = defaultdict(list)
        for ev in events:
            if ev.get("cat") == "Node" and ev.get("name", "").endswith("_kernel_time"):
                name = ev["name"].removesuffix("_kernel_time")
                per_node[(name, ev.get("args", {}).get("op_name", "?"))].append(ev["dur"] / 1e3)
        return [LayerTime(name, op, float(np.mean(d[-runs:]))) for (name, op), d in per_node.items()]


class OnnxRuntime(Runtime):
    name = "onnxruntime"

    def convert(self, onnx_path: Path, precision: str, out_dir: Path, calibration: np.ndarray | None = None,
                int8_format: str = "auto") -> Path:
        """fp16: a converted graph; int8: ONNX Runtime's static quantiser in `int8_format` (an `auto`
        nobody resolved, as in a bare `edgetune bench`, is the default format)."""
        check_precision(precision)
        if precision == "fp32":
            return onnx_path
        if precision == "bf16":
            raise EdgetuneError("onnxruntime on the CPU has no bf16 path; use fp16, int8, or the openvino runtime")
        out_dir.mkdir(parents=True, exist_ok=True)
        if precision == "fp16":
            return ort_fp16(onnx_path, out_dir)
        return ort_int8(onnx_path, out_dir, need_calibration(calibration), *format_args(int8_format))

    def open(self, artifact: Artifact, options: SessionOptions) -> Session:
        return OrtSession(require_path(artifact, self.name), options)
