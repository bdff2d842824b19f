"""The user's own data (`data.factory`): a function returning `(train, val)` or
`(train, val, test)`, each a torch Dataset of `(image, label)` pairs or a DataLoader of
`(images, labels)` batches, with any image size, channel count and number of classes; a label
is a class per image, or a class per pixel (a mask) for dense tasks such as segmentation.

The splits are read once into memory (edgetune's batching slices tensors: faster than a
DataLoader on a small CPU, and every trial sees the same images). Images that come as uint8 are
kept so and normalised with their own per-channel mean and std; float images are taken as
already normalised, as a user's transforms leave them. A network trained on them saw them that way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from edgetune.data.splits import DataSplits, ImageSplit
from edgetune.entrypoints import load_entry_point
from edgetune.errors import ConfigError

KEY = "data.factory"


def load_factory_data(ref: str, kwargs: dict[str, Any]) -> DataSplits:
    make = load_entry_point(ref, KEY)
    try:
        returned = make(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"data.factory {ref!r} could not be called with data.kwargs {kwargs}: {exc}",
                          key="data.kwargs") from None
    if not isinstance(returned, tuple | list) or len(returned) not in (2, 3):
        raise ConfigError(f"data.factory {ref!r} returned a {type(returned).__name__}; it must return (train, val) or "
                          "(train, val, test): Datasets of (image, label) or DataLoaders of (images, labels)", key=KEY)
    return splits_from(returned, f"data.factory {ref!r}", name=f"factory:{ref}")


def splits_from(parts: Any, what: str, name: str) -> DataSplits:
    """(train, val[, test]) Datasets or DataLoaders as the splits every trial uses."""
    names = ("train", "val", "test")
    splits = [_materialise(part, f"{what} {names[i]}") for i, part in enumerate(parts) if part is not None]
    train, val = splits[0], splits[1]
    test = splits[2] if len(splits) == 3 else ImageSplit(train.images[:0], train.labels[:0])
    shapes = {tuple(s.images.shape[1:]) for s in splits}
    if len(shapes) != 1:
        raise ConfigError(f"{what}: the splits' images differ in shape ({sorted(shapes)})", key=KEY)
    classes = int(max(int(s.labels.max()) for s in splits if len(s)) + 1)
    mean, std = _statistics(train.images)
    return DataSplits(name=name, train=train, val=val, test=test, num_classes=classes, mean=mean, std=std)


def _materialise(part: Any, what: str) -> ImageSplit:
    """A Dataset or DataLoader as two tensors: images N x C x H x W, labels N (int64)."""
    if not isinstance(part, Iterable) and not hasattr(part, "__getitem__"):
        raise ConfigError(f"{what} is a {type(part).__name__}, not a Dataset or DataLoader", key=KEY)
    is_loader = isinstance(part, torch.utils.data.DataLoader)
    items = part if is_loader else (part[i] for i in range(len(part)))
    images, labels = [], []
    for n, item in enumerate(items):
        if not isinstance(item, tuple | list) or len(item) < 2:
            raise ConfigError(f"{what}: item {n} is a {type(item).__name__}; expected (image, label)",
                              key=KEY)
        x, y = torch.as_tensor(item[0]), torch.as_tensor(item[1])
        if not is_loader:
            x, y = x.unsqueeze(0), y.unsqueeze(0)  # a class (shape ()), or a mask (H x W)
        if x.ndim != 4:
            raise ConfigError(f"{what}: images of shape {tuple(x.shape[1:])}; expected channels x "
                              "height x width (a grey image needs its channel: 1 x H x W)", key=KEY)
        if y.dtype.is_floating_point or y.dtype == torch.bool or y.ndim < 1 or (y.ndim == 1 and len(y) != len(x)):
            raise ConfigError(f"{what}: labels {tuple(y.shape)} of {y.dtype}; expected integer classes: one per "
                              "image, or one per pixel (a mask) for dense tasks", key=KEY)
        images.append(x)
        labels.append(y.long())
    if not images:
        raise ConfigError(f"{what} is empty", key=KEY)
    try:
        stacked, targets = torch.cat(images), torch.cat(labels)
    except RuntimeError as exc:
        raise ConfigError(f"{what}: items differ in shape ({exc})", key=KEY) from None
    if stacked.dtype != torch.uint8:
        stacked = stacked.float()
    return ImageSplit(stacked, targets)


def _statistics(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """uint8 images: their per-channel mean and std (0-1 scale). Float images are normalised
    already, which DataSplits.normalize leaves as they are."""
    if images.dtype != torch.uint8:
        channels = images.shape[1]
        return (0.0,) * channels, (1.0,) * channels
    x = images[:10000].float().div(255.0)
    return tuple(x.mean(dim=(0, 2, 3)).tolist()), tuple(x.std(dim=(0, 2, 3)).clamp_min(1e-6).tolist())
