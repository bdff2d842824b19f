"""ONNX export of a (thinned) model, checked against PyTorch before anything is timed."""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch_pruning as tp
from torch import nn

from edgetune.errors import EdgetuneError

OPSET = 17


@dataclass(frozen=True)
class ModelProfile:
    params: int
    macs: int
    onnx_bytes: int
    max_abs_diff: float


def export_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    """Export with a dynamic batch axis; written to a temporary name and renamed, so a kill
    never leaves a truncated file that a resumed study would trust."""
    model.eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The TorchScript exporter: stable for CNNs and needs no onnxscript graph rewriting.
        torch.onnx.export(
            model, (example,), buf, input_names=["input"], output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=OPSET, dynamo=False,
        )
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)


def profile(model: nn.Module, example: torch.Tensor, onnx_path: Path, outputs: np.ndarray) -> ModelProfile:
    """Parameters and MACs of the PyTorch model, and how far the ONNX output strays from it.

    `outputs` is the runtime's output for `example`; a mismatch means the export is wrong and
    any latency measured on it would describe a different network, so it is refused.
    """
    model.eval()
    with torch.no_grad():
        expected = model(example).numpy()
    diff = float(np.abs(expected - outputs).max())
    scale = float(np.abs(expected).max()) or 1.0
    if diff > 1e-3 * max(scale, 1.0):
        raise EdgetuneError(f"{onnx_path}: the runtime's output differs from PyTorch's by {diff:.3g} "
                            f"(tolerance {1e-3 * max(scale, 1.0):.3g} for fp32)")
    macs, params = tp.utils.count_ops_and_params(model, example_inputs=example)
    return ModelProfile(params=int(params), macs=int(macs), onnx_bytes=onnx_path.stat().st_size, max_abs_diff=diff)
