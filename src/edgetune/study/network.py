"""The unpruned network a study starts from, checked against the data before any work: the
input it takes, and outputs that fit the data's classes (per image, or per pixel)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from edgetune.data.splits import DataSplits
from edgetune.errors import ConfigError
from edgetune.models.factory import ModelFactory
from edgetune.models.registry import load_checkpoint


def check_input_shape(shape: tuple[int, int, int] | None, data: DataSplits) -> None:
    """The input the user says the network takes must be the data's images: the deployed
    artefact is exported at, timed at and scored on that size."""
    have = tuple(int(d) for d in data.val.images.shape[1:])
    if shape is not None and tuple(shape) != have:
        raise ConfigError(f"model.input_shape is {list(shape)} (channels, height, width) but the data's images are "
                          f"{list(have)}; resize the data to the network's input, or give the data's shape",
                          key="model.input_shape")


def load_network(checkpoint: Path | None, data: DataSplits, model_name: str | None = None,
                 factory: ModelFactory | None = None) -> tuple[nn.Module, dict]:
    """A checkpoint's network for `data`'s classes and channels (or the user's factory's, with
    or without a checkpoint), in eval mode, and the build metadata every trial's checkpoint
    carries so it rebuilds."""
    if checkpoint is None and factory is not None:
        model, meta = factory.build(), factory.describe()
    else:
        model, meta = load_checkpoint(checkpoint, model_name=model_name, num_classes=data.num_classes,  # type: ignore[arg-type]
                                      in_channels=data.in_channels, factory=factory)
    if factory is not None:
        _check_outputs(model.eval(), data, f"model.factory {factory.ref!r}")
        return model, {**factory.describe(), "num_classes": data.num_classes, "in_channels": data.in_channels}
    return model.eval(), {k: meta[k] for k in ("model", "num_classes", "in_channels")}


def _check_outputs(model: nn.Module, data: DataSplits, what: str) -> None:
    """The user's network must take the data's images and give one score per class."""
    example = data.sample_input(2)
    try:
        with torch.no_grad():
            out = model(example)
    except Exception as exc:  # noqa: BLE001 - any failure of user code on the data's images
        raise ConfigError(f"{what} cannot take the data's images (shape {tuple(example.shape)}): "
                          f"{type(exc).__name__}: {exc}", key="model.factory") from None
    dense = tuple(data.val.labels.shape[1:])  # () for a class per image, (H, W) for a mask
    wanted = (2, data.num_classes, *dense)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != wanted:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(f"{what} gives outputs of shape {shape} for {tuple(example.shape)} images; the data's "
                          f"{data.num_classes} classes{' per pixel' if dense else ''} need {wanted}", key="model.factory")


def load_companion(checkpoint: Path, data: DataSplits, student: str, role: str, key: str) -> tuple[nn.Module, dict]:
    """Another checkpoint's network that works beside the study's (a reference measured like its
    trials, a teacher it learns from): refused, naming both, unless it takes the student's
    images and gives its classes, since its figures or its logits would otherwise mean nothing."""
    example = data.sample_input(1)
    wants = f"{student}: {data.num_classes} classes, {tuple(example.shape[1:])} images"
    try:
        model, meta = load_network(checkpoint, data)
        with torch.no_grad():
            out = model(example)
    except Exception as exc:  # noqa: BLE001 - any failure to build or run it is the same mistake
        raise ConfigError(f"{role} {checkpoint} does not fit the student ({wants}): {exc}", key=key) from None
    if out.ndim < 2 or out.shape[1] != data.num_classes:  # (N, classes) or, per pixel, (N, classes, H, W)
        raise ConfigError(f"{role} {checkpoint} gives outputs of shape {tuple(out.shape)}; the student ({wants}) "
                          f"needs {data.num_classes} scores per image{' or pixel' if out.ndim > 2 else ''}", key=key)
    return model, meta
