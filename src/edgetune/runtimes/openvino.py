"""OpenVINO: CPU, GPU and NPU plugins, latency and throughput hints, precision hints.

The CPU plugin here defaults to bf16 inference, which is slower than f32 on this host and
changes the numbers: the precision hint is always set explicitly from the session options.
"""

from __future__ import annotations

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
from edgetune.runtimes.quantize import need_calibration, openvino_int8

HINTS = {"fp32": "f32", "fp16": "f16", "bf16": "bf16", "int8": "f32"}


def _config(options: SessionOptions, hint: str, perf_count: bool = False) -> dict[str, str]:
    config = {
        "PERFORMANCE_HINT": hint.upper(),
        "INFERENCE_PRECISION_HINT": HINTS[options.precision],
        **options.extra,
    }
    if options.device.upper() == "CPU":
        config["INFERENCE_NUM_THREADS"] = str(options.threads)
    if perf_count:
        config["PERF_COUNT"] = "YES"
    return config


class OvSession(Session):
    def __init__(self, path: Path, options: SessionOptions) -> None:
        import openvino as ov

        self.core = ov.Core()
        self.device = options.device.upper()
        if self.device.split(".")[0] not in {d.split(".")[0] for d in self.core.available_devices}:
            raise EdgetuneError(f"OpenVINO device '{options.device}' is not present here; "
                                f"available: {', '.join(self.core.available_devices)}")
        self.options = options
        t0 = time.perf_counter()
        self.model = self.core.read_model(str(path))
        self.load_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        try:
            self.compiled = self.core.compile_model(self.model, self.device, _config(options, options.hint))
        except RuntimeError as exc:
            raise EdgetuneError(f"OpenVINO cannot compile {path} for {self.device} "
                                f"({options.precision}): {exc}") from None
        self.compile_seconds = time.perf_counter() - t0
        self.request = self.compiled.create_infer_request()
        self.output = self.compiled.output(0)
        self.description = f"openvino {ov.__version__} {self.device} x{options.threads} {options.precision}"

    def run(self, x: np.ndarray) -> np.ndarray:
        return np.array(self.request.infer({0: x})[self.output])

    def bind(self, x: np.ndarray) -> Callable[[], None]:
        import openvino as ov

        request = self.compiled.create_infer_request()
        request.set_input_tensor(ov.Tensor(np.ascontiguousarray(x)))
        return request.infer

    def layer_times(self, x: np.ndarray, runs: int) -> list[LayerTime]:
        """OpenVINO's performance counters (real time per executed node), averaged over runs."""
        compiled = self.core.compile_model(self.model, self.device, _config(self.options, "latency", True))
        request = compiled.create_infer_request()
        for _ in range(5):
            request.infer({0: x})
        total: dict[tuple[str, str], float] = defaultdict(float)
        for _ in range(runs):
            request.infer({0: x})
            for info in request.profiling_info:
                if info.status == info.Status.EXECUTED:
                    total[(info.node_name, info.node_type)] += info.real_time.total_seconds() * 1e3
        return [LayerTime(name, op, ms / runs) for (name, op), ms in total.items()]

    def throughput(self, x: np.ndarray, seconds: float) -> float | None:
        """The THROUGHPUT hint with as many parallel requests as the plugin asks for."""
        import openvino as ov

        compiled = self.core.compile_model(self.model, self.device, _config(self.options, "throughput"))
        jobs = max(1, compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        queue = ov.AsyncInferQueue(compiled, jobs)
        for _ in range(jobs):
            queue.start_async({0: x})
        queue.wait_all()
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            queue.start_async({0: x})
            n += 1
        queue.wait_all()
        return n * x.shape[0] / (time.perf_counter() - t0)


class OpenVino(Runtime):
    name = "openvino"

    def convert(self, onnx_path: Path, precision: str, out_dir: Path, calibration: np.ndarray | None = None,
                int8_format: str = "auto") -> Path:
        """int8 through NNCF; fp16 and bf16 are OpenVINO's INFERENCE_PRECISION_HINT at compile time."""
        check_precision(precision)
        if precision != "int8":
            return onnx_path
        out_dir.mkdir(parents=True, exist_ok=True)
        return openvino_int8(onnx_path, out_dir, need_calibration(calibration))

    def open(self, artifact: Artifact, options: SessionOptions) -> Session:
        if options.device == "cpu":
            options = SessionOptions(device="CPU", threads=options.threads, precision=options.precision,
                                     hint=options.hint, extra=options.extra)
        return OvSession(require_path(artifact, self.name), options)
