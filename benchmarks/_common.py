"""Shared set-up for the benchmark scripts: the shipped baselines, exported once, and data."""

from __future__ import annotations

import platform
import tempfile
from pathlib import Path

import torch

from edgetune.data import load_dataset
from edgetune.models import load_checkpoint
from edgetune.runtimes.export import export_onnx

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"resnet20": ROOT / "models" / "resnet20-fmnist.pt", "resnet56": ROOT / "models" / "resnet56-fmnist.pt"}


def exported(name: str, work: Path | None = None) -> tuple[torch.nn.Module, Path]:
    model, _ = load_checkpoint(MODELS[name])
    path = (work or Path(tempfile.mkdtemp(prefix="edgetune-bench-"))) / f"{name}.onnx"
    export_onnx(model.eval(), torch.zeros(1, 1, 28, 28), path)
    return model, path


def fashion_mnist():
    return load_dataset("fashion-mnist")


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    import os

    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}"
