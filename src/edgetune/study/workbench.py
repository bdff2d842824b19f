"""What every trial of a study shares (the workbench) and what each one targets (its setup).

Kept apart from the trial itself (candidate.py): the final stage, the pre-flight checks and the
target profile need the workbench without the training loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgetune.config.experiment import BenchmarkSpec, DistillSpec
from edgetune.data.splits import DataSplits, ImageSplit
from edgetune.executors.base import Executor, Scoring
from edgetune.hardware.widths import WidthTable
from edgetune.study.reject import StopRule
from edgetune.training import EvalResult, Loss, Metric, Teacher, evaluate


@dataclass(frozen=True)
class Workbench:
    """What every trial of a study shares and none changes: the data, the unpruned network, the
    calibration images, and the executor that measures candidates beside the reference."""

    data: DataSplits
    train: ImageSplit
    val: ImageSplit
    baseline: nn.Module
    executor: Executor
    calibration: np.ndarray | None = None
    device: str = "cpu"
    seed: int = 0
    meta: dict[str, Any] = field(default_factory=dict)  # the baseline checkpoint's: rebuilds a trial's model
    metric: Metric | None = None  # the user's `evaluate` function, scored beside top-1
    loss: Loss | None = None  # the user's fine-tuning loss (default: cross-entropy)

    score_onnx: bool = False  # score a final shape from its exported file (`score_with`)
    teachers: dict[Path, nn.Module] = field(default_factory=dict)  # `distill.teacher` checkpoints, loaded once
    # The unpruned network when `baseline` is a reference in its place: it still teaches by default.
    unpruned: nn.Module | None = None

    @property
    def student(self) -> str:
        """The unpruned network, named for errors about networks beside it."""
        return f"model {self.meta.get('model') or self.meta.get('factory') or 'being compressed'}"

    def teacher(self, distill: DistillSpec) -> Teacher:
        """Who a candidate learns from: the unpruned network, or the checkpoint the user named (a
        larger sibling can teach a network searched from a smaller one). A fine-tuned reference
        learns from the same teacher as the trials, never from itself."""
        default = self.unpruned if self.unpruned is not None else self.baseline
        model = default if distill.teacher is None else self.teachers[distill.teacher]
        return Teacher(model, distill.alpha, distill.temperature)

    def evaluate(self, model: nn.Module, stop_when: StopRule | None = None) -> EvalResult:
        """The validation subset's figures, the user's metrics among them."""
        return evaluate(model, self.data, self.val, device=self.device, metric=self.metric, stop_when=stop_when)

    def score(self, model: nn.Module, onnx_path: Path | None = None, stop_when: StopRule | None = None) -> EvalResult:
        """`evaluate`, from the exported file in ONNX Runtime on every core when there is one and
        the study scores that way: the same images, counted by the same code."""
        if onnx_path is None or not self.score_onnx:
            return self.evaluate(model, stop_when)
        from edgetune.runtimes.base import SessionOptions
        from edgetune.runtimes.onnxruntime import OrtSession

        session = OrtSession(onnx_path, SessionOptions(threads=torch.get_num_threads()))
        try:
            return evaluate(None, self.data, self.val, metric=self.metric, stop_when=stop_when,
                            forward=lambda x: torch.from_numpy(session.run(np.ascontiguousarray(x.numpy()))))
        finally:
            session.close()

    def example(self, batch: int = 1) -> torch.Tensor:
        return self.data.sample_input(batch)

    def sample(self, batch: int = 64) -> np.ndarray:
        """Real, normalised images: the parity check's inputs and the timed batch's source."""
        return self.example(batch).numpy()

    def batches(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n labelled training images for methods that sample data; the same images every trial,
        so candidates differ by their settings, not by their luck."""
        images = self.train.subset(min(n, len(self.train)), seed=self.seed + 2)
        return self.data.normalize(images.images), images.labels

    def scoring(self, spec: BenchmarkSpec, score: bool = True) -> Scoring:
        """Calibration images, and at a reduced precision the validation images the deployed
        artefact is scored on (its accuracy is its own, not PyTorch's)."""
        if not score or spec.precision == "fp32":
            return Scoring(self.calibration)
        return Scoring(self.calibration, self.data.normalize(self.val.images).numpy(), self.val.labels.numpy(),
                       self.metric)


@dataclass(frozen=True)
class TrialSetup:
    """One trial's target: its benchmark settings (a sweep may search the precision), the width
    profile measured at that precision, and the reference's milliseconds that turn a ratio into
    `latency_adj_ms`."""

    benchmark: BenchmarkSpec
    reference_ms: float | None = None
    width_table: WidthTable | None = None

    @property
    def staircases(self) -> dict[str, list[int]] | None:
        return self.width_table.staircases() if self.width_table is not None else None
