"""Training, fine-tuning and evaluation on in-memory data.

One loop serves both the baseline training of `edgetune train` (resumable: a 2-core CPU
needs hours, so a run is done in parts) and a trial's fine-tuning under the recipe's LR
schedule. Needs only torch, so it also runs on a bare GPU machine.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from edgetune.data.splits import DataSplits, ImageSplit, augment, iterate_batches
from edgetune.entrypoints import call_user, function_name, user_metrics
from edgetune.errors import ConfigError


@dataclass
class EvalResult:
    top1: float
    top5: float
    loss: float
    n: int
    extra: dict[str, float] = field(default_factory=dict)  # the user's `evaluate` metrics

    def as_dict(self, prefix: str = "", suffix: str = "") -> dict[str, float]:
        pairs = (("top1", self.top1), ("top5", self.top5), ("loss", self.loss), *self.extra.items())
        return {f"{prefix}{k}{suffix}": v for k, v in pairs}


Metric = Callable[[torch.Tensor, torch.Tensor], dict[str, float]]
Precision = str  # "auto", "fp32" or "bf16" (FinetuneSpec.precision)
PAD = 2  # pixels a random crop may shift an image by


def bf16_native(device: str | torch.device) -> bool:
    """Whether `device` computes bf16 natively: CUDA, or a CPU whose oneDNN has bf16 kernels
    (AVX512-BF16, AMX). Without them, oneDNN emulates bf16 and is ten times slower than fp32
    (ResNet-56 training on a 2-core AVX2 EPYC: 9-10 against 124 images per second,
    benchmarks/bench_training_speed.py)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return True
    return (dev.type == "cpu" and torch.backends.mkldnn.is_available()
            and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()))


@functools.cache
def _say_fp32(device: str) -> None:
    logging.getLogger("edgetune").warning("training on %s in fp32: it has no native bf16 (finetune.precision: "
                                          "auto), where bf16 would run about ten times slower", device)


def fast_path(device: str | torch.device, precision: Precision = "auto") -> tuple[bool, bool]:
    """(bf16 autocast, channels_last) for training on `device`. `auto`: bf16 where the device
    computes it natively (bf16_native), said once where it does not; on the CPU the
    convolutions in channels_last (1.07x fp32's images per second on a 2-core AVX2 EPYC, 0.92 and
    1.23 in its two rounds: benchmarks/bench_training_speed.py, docs/results.md part 8). `bf16`
    autocasts wherever asked;
    `fp32` turns both off."""
    dev = torch.device(device)
    if precision == "fp32" or dev.type not in ("cuda", "cpu"):
        return False, False
    channels_last = dev.type == "cpu"
    if precision == "bf16" or bf16_native(dev):
        return True, channels_last
    _say_fp32(str(dev))
    return False, channels_last
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def checked_loss(loss: Loss, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The user's loss on the first batch, held to its contract: a scalar tensor with a gradient."""
    value = call_user(loss, "loss", outputs, targets)
    if not isinstance(value, torch.Tensor) or value.ndim != 0 or not value.requires_grad:
        got = f"a tensor of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
        raise ConfigError(f"loss function {function_name(loss)} returned {got}; it must return a scalar tensor computed from the "
                          "outputs (one number, with a gradient)", key="loss")
    return value


@torch.no_grad()
def evaluate(
    model: nn.Module | Callable[[torch.Tensor], torch.Tensor], data: DataSplits, split: ImageSplit, *,
    batch_size: int = 500, device: str | torch.device = "cpu", metric: Metric | None = None,
    stop_when: Callable[[int, int], bool] | None = None,
) -> EvalResult:
    """Top-1/top-5 accuracy (%) and mean cross-entropy on one split, per image for (batch,
    classes) outputs and per position for dense ones (a segmentation's pixels); and with
    `metric`, the user's metrics over the whole split's outputs and targets. `model` may be any
    function of a batch: another engine's outputs (the exported file's), counted by the same code.
    `stop_when(correct, seen)`: checked after each batch of per-image labels; when it says so,
    the figures are those of the images seen (`n`)."""
    if isinstance(model, nn.Module):
        model.eval()
    forward = model
    correct1 = correct5 = positions = seen = 0
    loss_sum = 0.0
    k = min(5, data.num_classes)
    outputs, targets = [], []
    for images, labels in iterate_batches(split, batch_size, device=device):
        logits = forward(data.normalize(images)).float()
        loss_sum += nn.functional.cross_entropy(logits, labels, reduction="sum").item()
        flat = logits.movedim(1, -1).reshape(-1, logits.shape[1])
        top = flat.topk(k, dim=1).indices
        hits = top.eq(labels.reshape(-1, 1))
        correct1 += int(hits[:, 0].sum())
        correct5 += int(hits.any(dim=1).sum())
        positions += flat.shape[0]
        seen += len(labels)
        if metric is not None:
            outputs.append(logits.cpu())
            targets.append(labels.cpu())
        if stop_when is not None and labels.ndim == 1 and stop_when(correct1, positions):
            break
    extra = user_metrics(metric, torch.cat(outputs), torch.cat(targets)) if metric is not None else {}
    return EvalResult(100.0 * correct1 / positions, 100.0 * correct5 / positions, loss_sum / positions, seen, extra)


def train_epoch(model: nn.Module, data: DataSplits, optimizer: torch.optim.Optimizer, training: Training, *,
                generator: torch.Generator, step_hook: Callable[[], None] | None = None) -> float:
    """One pass over `training.split` (default: the training split), augmented by random crop and
    flip when `training.augmented`; returns mean loss. With a teacher, the loss is distilled from
    its logits on the same batch: asked per batch when augmented (a crop or a flip changes them),
    else looked up in `teacher.logits` when given (once per image of the split, for every epoch)."""
    model.train()
    dev = torch.device(training.device)
    use_amp, channels_last = fast_path(dev, training.precision)
    teacher, augmented = training.teacher, training.augmented
    # Summed on the device: a per-step .item() would stall the GPU queue every step.
    total = torch.zeros((), device=dev)
    seen = 0
    criterion = training.loss or nn.functional.cross_entropy
    if teacher is not None and teacher.logits is not None and augmented:
        raise ValueError("teacher logits computed once per image are wrong for augmented images")
    asked = teacher.model if teacher is not None and teacher.logits is None else None
    with _layout(channels_last, model, asked) as fmt:
        for images, labels, index in iterate_batches(
            training.split or data.train, training.batch_size, shuffle=True, generator=generator, device=dev,
            with_index=True
        ):
            # Dense targets (masks) would have to be cropped and flipped with their images: not augmented.
            x = data.normalize(augment(images, PAD, generator=generator) if augmented and labels.ndim == 1 else images)
            x = x.contiguous(memory_format=fmt) if x.ndim == 4 else x
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_amp):
                logits = model(x).float()
                hard = criterion(logits, labels) if seen else checked_loss(criterion, logits, labels)
                target = _taught(teacher, x, index, dev)
                value = hard if target is None else distillation_loss(
                    logits, target, labels, teacher.alpha, teacher.temperature, hard=hard)  # type: ignore[union-attr]
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()
            if step_hook is not None:
                step_hook()
            total += value.detach() * len(labels)
            seen += len(labels)
    return float(total) / max(seen, 1)


def _taught(teacher: Teacher | None, x: torch.Tensor, index: torch.Tensor, dev: torch.device) -> torch.Tensor | None:
    """The teacher's logits for the batch: looked up when computed once per image, else asked."""
    if teacher is None:
        return None
    if teacher.logits is not None:
        return teacher.logits[index.to(teacher.logits.device)].to(dev)
    with torch.no_grad():
        return teacher.model(x).float()


@contextlib.contextmanager
def _layout(channels_last: bool, *models: nn.Module | None) -> Iterator[torch.memory_format]:
    """The networks in channels_last for the loop, and back in the usual layout after it, so
    they are exported, hashed and saved as every other network is."""
    if not channels_last:
        yield torch.contiguous_format
        return
    present = [m for m in models if m is not None]
    for m in present:
        m.to(memory_format=torch.channels_last)
    try:
        yield torch.channels_last
    finally:
        for m in present:
            m.to(memory_format=torch.contiguous_format)


@torch.no_grad()
def logits_of(model: nn.Module, data: DataSplits, split: ImageSplit, *, batch_size: int = 500,
              device: str | torch.device = "cpu", precision: Precision = "auto") -> torch.Tensor:
    """`model`'s logits for every image of `split`, in order, as training computes them (eval
    mode, the same autocast): a teacher asked once about images that are not augmented rather
    than once per epoch, which on a CPU is about half of each distilled step."""
    model.eval()
    dev = torch.device(device)
    use_amp, channels_last = fast_path(dev, precision)
    out = []
    with _layout(channels_last, model) as fmt:
        for images, _ in iterate_batches(split, batch_size, device=dev):
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_amp):
                x = data.normalize(images)
                out.append(model(x.contiguous(memory_format=fmt) if x.ndim == 4 else x).float())
    return torch.cat(out)


@dataclass(frozen=True)
class Teacher:
    """A network whose softened logits the student learns from (knowledge distillation);
    `logits`: its answers for every image of the split, computed once (`teaching_for`), where
    the images are not augmented and so the same every epoch."""

    model: nn.Module
    alpha: float
    temperature: float
    logits: torch.Tensor | None = None


@dataclass(frozen=True)
class Training:
    """Everything beside the network and the data that decides the weights a training ends
    with: SGD (momentum 0.9, Nesterov) at `lr`, on a cosine schedule after `warmup_epochs` of
    linear ramp; `split` (default: the training split) in shuffled batches, augmented by random
    crop and flip; the `teacher` distilled from and the `loss` (default: cross-entropy) on the
    arithmetic `precision` asks (`fast_path`); `settle`, run on the weights it ends with (the norm
    statistics re-estimated). A search's fine-tuning and `train_baseline` both take one."""

    epochs: int = 1
    lr: float = 0.1
    batch_size: int = 128
    weight_decay: float = 5e-4
    seed: int = 0
    warmup_epochs: int = 1
    augmented: bool = True
    precision: Precision = "auto"
    device: str = "cpu"
    split: ImageSplit | None = None
    teacher: Teacher | None = None
    loss: Loss | None = None
    settle: Callable[[nn.Module], object] | None = None


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, alpha: float,
                      temperature: float, hard: torch.Tensor | None = None) -> torch.Tensor:
    """(1 - alpha) * cross-entropy (or the user's `hard` loss) + alpha * T^2 * KL(teacher ||
    student), both softened by T (the T^2 keeps the soft term's gradients on the scale of the
    hard one's)."""
    hard = nn.functional.cross_entropy(student, labels) if hard is None else hard
    soft = nn.functional.kl_div(nn.functional.log_softmax(student / temperature, dim=1),
                                nn.functional.log_softmax(teacher / temperature, dim=1),
                                reduction="batchmean", log_target=True)
    return (1 - alpha) * hard + alpha * temperature**2 * soft


def teaching_for(teacher: Teacher | None, data: DataSplits, images: ImageSplit, dev: torch.device, once: bool,
                 precision: Precision = "auto") -> tuple[Teacher | None, float]:
    """The teacher `train_epoch` is taught by (moved to `dev`), and the seconds it took: `once`,
    with its logits for every image of `images` (per-image labels only: a mask's logits would be
    the size of the images). Search fine-tuning and `train_baseline` both ask it, so both decide
    alike."""
    if teacher is None:
        return None, 0.0
    teacher.model.eval().to(dev)
    if not (once and images.labels.ndim == 1):
        return teacher, 0.0
    t0 = time.perf_counter()
    logits = logits_of(teacher.model, data, images, device=dev, precision=precision)
    return replace(teacher, logits=logits), time.perf_counter() - t0