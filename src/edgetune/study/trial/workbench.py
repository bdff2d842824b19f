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

from edgetune.compress.recalibrate import reestimate_norms, tracked_norms
from edgetune.compress.reconstruct import reconstruct_consumers
from edgetune.config.architecture import checkpoint_of
from edgetune.config.experiment import BenchmarkSpec, CalibrateSpec, DistillSpec, FinetuneSpec
from edgetune.data.splits import DataSplits, ImageSplit
from edgetune.executors.base import Executor, Scoring
from edgetune.hardware.widths import WidthTable
from edgetune.study.trial.reject import StopRule
from edgetune.training.loop import EvalResult, Loss, Metric, Teacher, evaluate


@dataclass(frozen=True)
class Workbench:
    """What every trial of a study shares and none changes: the data, the unpruned network, the
    calibration images, and the executor that measures candidates beside the reference."""

    data: DataSplits
    train: ImageSplit
    val: ImageSplit
    # The network every trial starts from: the unpruned one, or a reference's checkpoint in its place
    # (evaluator.reference_bench), which `unpruned` then holds.
    start: nn.Module
    executor: Executor
    calibration: np.ndarray | None = None
    device: str = "cpu"
    seed: int = 0
    meta: dict[str, Any] = field(default_factory=dict)  # the baseline checkpoint's: rebuilds a trial's model
    metric: Metric | None = None  # the user's `evaluate` function, scored beside top-1
    loss: Loss | None = None  # the user's fine-tuning loss (default: cross-entropy)

    score_onnx: bool = False  # score a final shape from its exported file (`score_with`)
    teachers: dict[Path, nn.Module] = field(default_factory=dict)  # `distill.teacher` checkpoints, loaded once
    # The teacher handed over from Python (`tune(teacher=...)`), in place of the unpruned network.
    given_teacher: nn.Module | None = None
    # The unpruned network when `start` is a reference in its place: it still teaches by default.
    unpruned: nn.Module | None = None
    # What is recovered without training after pruning (the experiment's `calibrate:`); None: nothing.
    calibrate: CalibrateSpec | None = None
    # The study was begun before edgetune re-estimated statistics and trained in bf16 on the CPU:
    # its later trials are made as its first ones were.
    begun_before_recovery: bool = False
    # Begun before fine-tuning followed a cosine over its steps: its later trials keep a constant rate.
    begun_before_cosine: bool = False

    @property
    def network_label(self) -> str:
        """The unpruned network, named for errors about networks beside it."""
        return f"model {self.meta.get('model') or self.meta.get('factory') or 'being compressed'}"

    def teacher(self, distill: DistillSpec) -> Teacher:
        """Who a candidate learns from: the unpruned network, or the checkpoint or object the user
        named (a larger sibling can teach a network searched from a smaller one). A fine-tuned reference
        learns from the same teacher as the trials, never from itself."""
        default = next(m for m in (self.given_teacher, self.unpruned, self.start) if m is not None)
        model = default if distill.teacher is None else self.teachers[checkpoint_of(distill.teacher)]
        return Teacher(model, distill.alpha, distill.temperature)

    def evaluate(self, model: nn.Module, stop_when: StopRule | None = None) -> EvalResult:
        """The validation subset's figures, the user's metrics among them."""
        return evaluate(model, self.data, self.val, device=self.device, metric=self.metric, stop_when=stop_when)

    def score(self, model: nn.Module, onnx_path: Path | None = None, stop_when: StopRule | None = None) -> EvalResult:
        """`evaluate`, from the exported file in ONNX Runtime on every core when there is one and
        the study scores that way: the same images, counted by the same code."""
        if onnx_path is None or not self.score_onnx:
            return self.evaluate(model, stop_when)
        from edgetune.runtimes.base import Artifact, SessionOptions, get_runtime

        session = get_runtime("onnxruntime").open(Artifact(onnx_path), SessionOptions(threads=torch.get_num_threads()))
        try:
            return evaluate(lambda x: torch.from_numpy(session.run(np.ascontiguousarray(x.numpy()))), self.data,
                            self.val, metric=self.metric, stop_when=stop_when)
        finally:
            session.close()

    def recovers(self, model: nn.Module) -> bool:
        """Whether `recover` would change `model`: re-estimation is on and it has norm statistics,
        or reconstruction is on."""
        return self.settles(model) or (self.calibrate is not None and self.calibrate.reconstruct)

    def recover(self, model: nn.Module) -> dict[str, int]:
        """What is free before training, for a network whose structure just changed: the layers
        that lost inputs re-fitted to the unpruned network's outputs (when asked, between two
        re-estimations), then the norm statistics re-estimated, on the same training images for
        every candidate. How many layers each step changed."""
        cal, done = self.calibrate, {}
        if cal is None:
            return done
        device = next(model.parameters()).device
        if cal.reconstruct:
            # Fitted on the inputs the layers will have: statistics re-estimated first (fitted on
            # stale ones, the fit is undone when they change: 9/9/9 at -50 % fell to 55 % top-1).
            self.settle(model)
            images, _ = self.batches(cal.reconstruct_images)
            done["layers_refitted"] = reconstruct_consumers(model, self.start, images.to(device))
        if self.settles(model):
            done["norms_reestimated"] = self.settle(model)
        return done

    def settles(self, model: nn.Module) -> bool:
        """Whether `settle` would change `model`: re-estimation is on and it has norm statistics."""
        return self.calibrate is not None and self.calibrate.batchnorm and bool(tracked_norms(model))

    def settle(self, model: nn.Module) -> int:
        """Norm statistics re-estimated for the weights the network has now: after least squares
        moved them, or after fine-tuning, whose short runs leave running averages that mostly
        remember the weights they started from (after 32 steps at momentum 0.1, 3 % of the
        start's; after 2, 81 %). How many layers."""
        if not self.settles(model):
            return 0
        images, _ = self.batches(self.calibrate.batchnorm_images)  # type: ignore[union-attr]
        return reestimate_norms(model, images.to(next(model.parameters()).device))

    def training_precision(self, ft: FinetuneSpec) -> str:
        """The arithmetic a candidate trains in: the setting's, or for a study begun before the
        fast path existed, what its first trials had (bf16 on CUDA only)."""
        if self.begun_before_recovery:
            return "auto" if torch.device(self.device).type == "cuda" else "fp32"
        return ft.precision

    def cosine_steps(self, ft: FinetuneSpec, recipe_schedules_lr: bool) -> bool:
        """Whether a candidate's learning rate follows a cosine over its fine-tuning steps: asked,
        or left to `auto` with no scheduler in the recipe, in a study begun since it was the default."""
        if ft.schedule == "auto":
            return not recipe_schedules_lr and not self.begun_before_cosine
        return ft.schedule == "cosine"

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
