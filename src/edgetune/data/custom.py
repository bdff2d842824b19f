"""The user's own data (`data.factory`): a function returning `(train, val)` or
`(train, val, test)`, or a mapping with `train`, `val` (or `validation`) and maybe `test` keys
(what Hugging Face's `DatasetDict` and most training scripts hand back); each split a torch
Dataset of `(image, label)` pairs or of mappings (`{"image": ..., "label": ...}`, the keys
configurable), or a DataLoader of `(images, labels)` batches, with any image size, channel count
and number of classes; a label is a class per image, or a class per pixel (a mask) for dense
tasks such as segmentation. PIL images and height x width (x channels) arrays, as such datasets
hold them, are laid out as channels x height x width.

The splits are read once into memory (edgetune's batching slices tensors: faster than a
DataLoader on a small CPU, and every trial sees the same images). Images that come as uint8 are
kept so and normalised with their own per-channel mean and std; float images are taken as
already normalised, as a user's transforms leave them. A network trained on them saw them that way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch

from edgetune.data.splits import DataSplits, ImageSplit
from edgetune.entrypoints import load_entry_point
from edgetune.errors import ConfigError

KEY = "data.factory"
IMAGE_KEYS = ("image", "img", "pixel_values", "x", "input")
LABEL_KEYS = ("label", "labels", "target", "y")
VAL_KEYS = ("val", "validation", "valid")


def load_factory_data(ref: str, kwargs: dict[str, Any], item_keys: tuple[str, str] | None = None) -> DataSplits:
    make = load_entry_point(ref, KEY)
    try:
        returned = make(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"data.factory {ref!r} could not be called with data.kwargs {kwargs}: {exc}",
                          key="data.kwargs") from None
    what = f"data.factory {ref!r}"
    return splits_from(split_parts(returned, what), what, name=f"factory:{ref}", item_keys=item_keys)


def split_parts(returned: Any, what: str) -> tuple[Any, Any, Any]:
    """(train, val, test or None) from what a factory returned: a tuple or list of two or three,
    or a mapping keyed train / val (validation, valid) / test."""
    if isinstance(returned, Mapping):
        val = next((k for k in VAL_KEYS if k in returned), None)
        if "train" not in returned or val is None:
            raise ConfigError(f"{what} returned a mapping with keys {', '.join(map(repr, returned)) or '(none)'}; it "
                              "needs 'train' and 'val' (or 'validation'), and may have 'test'", key=KEY)
        return returned["train"], returned[val], returned.get("test")
    if isinstance(returned, tuple | list) and len(returned) in (2, 3):
        return returned[0], returned[1], returned[2] if len(returned) == 3 else None
    raise ConfigError(f"{what} returned a {type(returned).__name__}; it must return (train, val), (train, val, test) "
                      "or a mapping with 'train', 'val' and maybe 'test': Datasets of (image, label) or of "
                      "{'image': ..., 'label': ...}, or DataLoaders of (images, labels)", key=KEY)


def splits_from(parts: Any, what: str, name: str, item_keys: tuple[str, str] | None = None) -> DataSplits:
    """(train, val[, test]) Datasets or DataLoaders as the splits every trial uses."""
    names = ("train", "val", "test")
    splits = [_materialise(part, f"{what} {names[i]}", item_keys) for i, part in enumerate(parts) if part is not None]
    train, val = splits[0], splits[1]
    test = splits[2] if len(splits) == 3 else ImageSplit(train.images[:0], train.labels[:0])
    shapes = {tuple(s.images.shape[1:]) for s in splits}
    if len(shapes) != 1:
        raise ConfigError(f"{what}: the splits' images differ in shape ({sorted(shapes)})", key=KEY)
    classes = int(max(int(s.labels.max()) for s in splits if len(s)) + 1)
    mean, std = _statistics(train.images)
    return DataSplits(name=name, train=train, val=val, test=test, num_classes=classes, mean=mean, std=std)


def _materialise(part: Any, what: str, item_keys: tuple[str, str] | None = None) -> ImageSplit:
    """A Dataset or DataLoader as two tensors: images N x C x H x W, labels N (int64)."""
    if not isinstance(part, Iterable) and not hasattr(part, "__getitem__"):
        raise ConfigError(f"{what} is a {type(part).__name__}, not a Dataset or DataLoader", key=KEY)
    is_loader = isinstance(part, torch.utils.data.DataLoader)
    items = part if is_loader else (part[i] for i in range(len(part)))
    images, labels = [], []
    for n, item in enumerate(items):
        x, y = _pair(item, n, what, item_keys, batched=is_loader)
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


def _pair(item: Any, n: int, what: str, item_keys: tuple[str, str] | None, batched: bool
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """An item's image and label as tensors: a pair, or a mapping read at its image and label keys
    (its image laid out as channels x height x width, as a PIL image or an H x W (x C) array
    from such a dataset is not)."""
    if isinstance(item, Mapping):
        image_key = item_keys[0] if item_keys else next((k for k in IMAGE_KEYS if k in item), None)
        label_key = item_keys[1] if item_keys else next((k for k in LABEL_KEYS if k in item), None)
        if image_key not in item or label_key not in item:
            raise ConfigError(f"{what}: item {n} is a mapping with keys {', '.join(map(repr, item))}; its image and "
                              f"label were looked for at {image_key or '/'.join(IMAGE_KEYS)!r} and "
                              f"{label_key or '/'.join(LABEL_KEYS)!r}: name them with data.item_keys: "
                              "[image key, label key]", key="data.item_keys")
        x = _channels_first(item[image_key], batched)
        return x, torch.as_tensor(np.asarray(item[label_key]) if not torch.is_tensor(item[label_key])
                                  else item[label_key])
    if not isinstance(item, tuple | list) or len(item) < 2:
        raise ConfigError(f"{what}: item {n} is a {type(item).__name__}; expected (image, label) or a mapping "
                          "{'image': ..., 'label': ...}", key=KEY)
    return torch.as_tensor(_pil_as_array(item[0])), torch.as_tensor(item[1])


def _pil_as_array(image: Any) -> Any:
    """A PIL image as a channels x height x width array; anything else as it is."""
    if not hasattr(image, "getbands"):
        return image
    a = np.asarray(image)
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def _channels_first(image: Any, batched: bool) -> torch.Tensor:
    """A mapping item's image as C x H x W (N x C x H x W when `batched`): a PIL image, an H x W
    grey image, or H x W x C with a last axis of 1, 3 or 4 channels and a first one that is not."""
    x = torch.as_tensor(np.ascontiguousarray(_pil_as_array(image)) if not torch.is_tensor(image) else image)
    rank = x.ndim - int(batched)
    if rank == 2:
        return x.unsqueeze(-3)
    if rank == 3 and x.shape[-1] in (1, 3, 4) and x.shape[-3] not in (1, 3, 4):
        return x.movedim(-1, -3)
    return x


def _statistics(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """uint8 images: their per-channel mean and std (0-1 scale). Float images are normalised
    already, which DataSplits.normalize leaves as they are."""
    if images.dtype != torch.uint8:
        channels = images.shape[1]
        return (0.0,) * channels, (1.0,) * channels
    x = images[:10000].float().div(255.0)
    return tuple(x.mean(dim=(0, 2, 3)).tolist()), tuple(x.std(dim=(0, 2, 3)).clamp_min(1e-6).tolist())
