"""The unpruned network a study starts from, checked against the data before any work: the
input it takes, and outputs that fit the data's classes (per image, or per pixel)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from edgetune.catalog import dataset_name
from edgetune.config.architecture import RECORDED, Architecture
from edgetune.data.splits import DataSplits, HeldOut
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
                 factory: ModelFactory | None = None, scored_as: str | None = "model.checkpoint",
                 classes: tuple[int | None, int | None] = (None, None)) -> tuple[nn.Module, dict]:
    """A checkpoint's network for `data`'s classes and channels (or the user's factory's, with
    or without a checkpoint), in eval mode, and the build metadata every trial's checkpoint
    carries so it rebuilds. One `scored_as` (the key that names it) is refused if its training
    saw the validation images."""
    if checkpoint is None and factory is not None:
        model, meta = factory.build(), factory.describe()
    else:
        model, meta = load_checkpoint(checkpoint, model_name=model_name,  # type: ignore[arg-type]
                                      num_classes=classes[0] or data.num_classes,
                                      in_channels=classes[1] or data.in_channels, factory=factory)
        if scored_as is not None:
            check_held_out(meta, data, checkpoint, scored_as)  # type: ignore[arg-type]
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


def load_companion(source: Path | ModelFactory, data: DataSplits, student: str, role: str, key: str,
                   told: Architecture = RECORDED) -> tuple[nn.Module, dict]:
    """Another network that works beside the study's (a reference measured like its trials, a
    teacher it learns from), from a checkpoint or handed over from Python: refused, naming both,
    unless it takes the student's images and gives its classes, since its figures or its logits
    would otherwise mean nothing."""
    example = data.sample_input(1)
    wants = f"{student}: {data.num_classes} classes, {tuple(example.shape[1:])} images"
    named = source.ref.removeprefix("python:") if isinstance(source, ModelFactory) else source
    try:
        if isinstance(source, ModelFactory):
            model, meta = source.build().eval(), {**source.describe(), "num_classes": data.num_classes,
                                                  "in_channels": data.in_channels}
        else:
            model, meta = load_network(source, data, told.model,
                                       ModelFactory(told.factory, told.kwargs) if told.factory else None,
                                       scored_as=None if role == "teacher" else key,
                                       classes=(told.num_classes, told.in_channels))
        with torch.no_grad():
            out = model(example)
    except ConfigError as exc:
        if exc.key in _SPLIT_KEYS:  # it fits; it was trained on the validation images (check_held_out)
            raise
        raise ConfigError(f"{role} {named} does not fit the student ({wants}): {exc}", key=key) from None
    except Exception as exc:  # noqa: BLE001 - any failure to build or run it is the same mistake
        raise ConfigError(f"{role} {named} does not fit the student ({wants}): {type(exc).__name__}: {exc}",
                          key=key) from None
    if out.ndim < 2 or out.shape[1] != data.num_classes:  # (N, classes) or, per pixel, (N, classes, H, W)
        raise ConfigError(f"{role} {named} gives outputs of shape {tuple(out.shape)}; the student ({wants}) "
                          f"needs {data.num_classes} scores per image{' or pixel' if out.ndim > 2 else ''}", key=key)
    return model, meta


# `edgetune train` held out this split before it could be told otherwise; its checkpoints made
# before they recorded the split (the shipped ones among them) name the command instead.
_TRAIN_DEFAULT = {"val_size": 5000, "split_seed": 0}
_SPLIT_KEYS = ("data.val_size", "data.split_seed")


def trained_beside(meta: dict) -> HeldOut | None:
    """The validation split a checkpoint's training held out, when its metadata says."""
    recorded = meta.get("held_out")
    if isinstance(recorded, dict):
        try:
            return HeldOut(str(recorded["dataset"]), int(recorded["val_size"]), int(recorded["split_seed"]))
        except (KeyError, TypeError, ValueError):  # a record edited by hand: as if there were none
            return None
    if str(meta.get("command", "")).startswith("edgetune train") and meta.get("dataset"):
        try:
            return HeldOut(dataset_name(str(meta["dataset"])), **_TRAIN_DEFAULT)
        except ConfigError:  # a dataset this install does not know: nothing to compare with
            return None
    return None


def check_held_out(meta: dict, data: DataSplits, checkpoint: Path, role: str) -> None:
    """A network scored on validation images it was trained on looks better than it is, and every
    figure measured against it (the baseline's top-1, the accuracy constraint, the pick's bound)
    is wrong without a sign: refused, naming the split that would be clean."""
    trained, scored = trained_beside(meta), data.held_out
    if trained is None or scored is None or trained.dataset != scored.dataset or scored.within(trained):
        return
    key = _SPLIT_KEYS[1] if scored.split_seed != trained.split_seed else _SPLIT_KEYS[0]
    raise ConfigError(
        f"{role} {checkpoint} was trained on {trained.dataset}'s training images except a validation split of "
        f"{trained.val_size} (split_seed {trained.split_seed}); data.val_size {scored.val_size} with "
        f"data.split_seed {scored.split_seed} would score it on images it learnt from, and every validation "
        f"figure measured against it would be inflated. Use data.val_size {trained.val_size} or fewer with "
        f"data.split_seed {trained.split_seed}", key=key)
