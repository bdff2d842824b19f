"""PyTorch eager: the reference every exported artefact is compared with, and a baseline for
how much an inference engine buys over running the training framework."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from edgetune.errors import EdgetuneError
from edgetune.runtimes.base import Artifact, Runtime, Session, SessionOptions, check_precision


class TorchSession(Session):
    def __init__(self, module: torch.nn.Module, options: SessionOptions) -> None:
        if options.precision not in ("fp32", "bf16"):
            raise EdgetuneError(f"the torch runtime runs fp32 or bf16, not {options.precision}")
        t0 = time.perf_counter()
        self.device = torch.device(options.device)
        self.module = module.to(self.device).eval()
        self.dtype = torch.bfloat16 if options.precision == "bf16" else torch.float32
        if self.dtype != torch.float32:
            self.module = self.module.to(self.dtype)
        self.compile_seconds = time.perf_counter() - t0
        self.threads = options.threads
        self.description = f"torch {torch.__version__} eager {options.device} x{options.threads} {options.precision}"

    @torch.inference_mode()
    def run(self, x: np.ndarray) -> np.ndarray:
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            out = self.module(torch.from_numpy(x).to(self.device, self.dtype))
            return out.float().cpu().numpy()
        finally:
            torch.set_num_threads(previous)

    def bind(self, x: np.ndarray):
        placed = torch.from_numpy(x).to(self.device, self.dtype)
        module, threads = self.module, self.threads
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)

        def call() -> None:
            torch.set_num_threads(threads)
            with torch.inference_mode():
                module(placed)
            sync()

        return call


class TorchEager(Runtime):
    name = "torch"

    def convert(self, onnx_path: Path, precision: str, out_dir: Path, calibration: np.ndarray | None = None,
                int8_format: str = "auto") -> Path:
        """The module runs as it is; the precision goes to the session (autocast)."""
        check_precision(precision)
        return onnx_path

    def open(self, artifact: Artifact, options: SessionOptions) -> Session:
        if artifact.module is None:
            raise EdgetuneError("the torch runtime runs a PyTorch module: give a checkpoint (--checkpoint), "
                                "not only an ONNX file")
        return TorchSession(artifact.module, options)  # type: ignore[arg-type]
