"""ONNX export of a (thinned) model; `profiler` checks it against PyTorch before timing it."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch
from torch import nn

from edgetune.files import atomic_write_bytes

OPSET = 17


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
    atomic_write_bytes(path, buf.getvalue())
