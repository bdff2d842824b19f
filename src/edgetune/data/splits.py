"""Dataset loading by name, the fixed-seed validation split, and batching without DataLoader.

Whole datasets fit in memory here (Fashion-MNIST is 47 MB as uint8), so batches are slices
of one tensor: faster than a DataLoader on two cores, and identical on a GPU.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from edgetune.catalog import DATASETS, dataset_name
from edgetune.errors import ConfigError, DatasetNotFoundError


@dataclass(frozen=True)
class ImageSplit:
    images: torch.Tensor  # uint8, N x C x H x W
    labels: torch.Tensor  # int64, N

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, n: int | None, seed: int = 0) -> ImageSplit:
        """A fixed random subset of `n` images, so quick runs still see every class."""
        if n is None or n >= len(self):
            return self
        idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        return ImageSplit(self.images[idx], self.labels[idx])


@dataclass(frozen=True)
class HeldOut:
    """Which of a named dataset's training images are validation, as `carve_validation` takes
    them: the first `val_size` of one seeded permutation. A checkpoint records the split it was
    trained beside, so a study can refuse to score it on images it learnt from."""

    dataset: str
    val_size: int
    split_seed: int

    def within(self, other: HeldOut) -> bool:
        """Whether every validation image of this split was held out of `other`'s training too
        (the same permutation, no more of it)."""
        return (self.dataset, self.split_seed) == (other.dataset, other.split_seed) and self.val_size <= other.val_size


@dataclass(frozen=True)
class DataSplits:
    name: str
    train: ImageSplit
    val: ImageSplit
    test: ImageSplit
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[str, ...] = field(default=())
    held_out: HeldOut | None = None  # a named dataset's split; a user's own data says nothing of it

    @property
    def in_channels(self) -> int:
        return int(self.train.images.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.train.images.shape[2]), int(self.train.images.shape[3])

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 batch -> float batch with the dataset's mean and std removed. Float images (a
        user's data factory, transforms applied) are normalised already and pass as they are."""
        if images.dtype.is_floating_point:
            return images.float()
        x = images.float().div_(255.0)
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std

    def sample_input(self, batch: int = 1) -> torch.Tensor:
        """A normalised batch of real validation images, for export and parity checks."""
        return self.normalize(self.val.images[:batch])


def carve_validation(
    train: ImageSplit, val_size: int, seed: int
) -> tuple[ImageSplit, ImageSplit]:
    """Split a validation set off the training set with a fixed seed (same split every run)."""
    if not 0 < val_size < len(train):
        raise ConfigError(
            f"validation size {val_size} must be between 1 and {len(train) - 1}",
            key="data.val_size",
        )
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = perm[:val_size], perm[val_size:]
    return (
        ImageSplit(train.images[train_idx], train.labels[train_idx]),
        ImageSplit(train.images[val_idx], train.labels[val_idx]),
    )


def iterate_batches(
    split: ImageSplit,
    batch_size: int,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    with_index: bool = False,
) -> Iterator[tuple[torch.Tensor, ...]]:
    """Yield (uint8 images, labels) batches, and `with_index` each image's position in `split`
    (to look up what was computed once per image); the caller normalises (possibly after
    augmenting)."""
    n = len(split)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        batch = split.images[idx].to(device, non_blocking=True), split.labels[idx].to(device)
        yield (*batch, idx) if with_index else batch


def augment(images: torch.Tensor, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop after zero padding and random horizontal flip, on whole uint8 batches.

    Done with tensor ops so it runs on the device that holds the batch, GPU included.
    """
    n, _, h, w = images.shape
    dev = images.device
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(dev)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(dev)
    rows = (dy.view(n, 1) + torch.arange(h, device=dev).view(1, h)).view(n, 1, h, 1)
    cols = (dx.view(n, 1) + torch.arange(w, device=dev).view(1, w)).view(n, 1, 1, w)
    c = images.shape[1]
    rows = rows.expand(n, c, h, w)
    cols = cols.expand(n, c, h, w)
    batch_idx = torch.arange(n, device=dev).view(n, 1, 1, 1).expand(n, c, h, w)
    chan_idx = torch.arange(c, device=dev).view(1, c, 1, 1).expand(n, c, h, w)
    out = padded[batch_idx, chan_idx, rows, cols]
    flip = (torch.rand(n, generator=generator) < 0.5).to(dev)
    return torch.where(flip.view(n, 1, 1, 1), out.flip(3), out)


Loader = Callable[[Path], tuple[ImageSplit, ImageSplit, dict]]


def _loader(name: str) -> tuple[Loader, tuple[Path, ...], str]:
    """The registry's reader for `name` (edgetune.catalog.DATASETS): its load function, where it
    looks by default, and how to get the files."""
    plugin = DATASETS[name]
    module = importlib.import_module(plugin.module)
    return getattr(module, plugin.attribute), tuple(getattr(module, "SEARCH_PATHS", ())), module.HOW_TO_GET


def candidate_roots(name: str, root: str | Path | None, defaults: tuple[Path, ...]) -> list[Path]:
    """Where to look, in order: the explicit root (alone: a root the user names that does not hold
    the data is a mistake, not a hint, and another copy must not be read in its place),
    $EDGETUNE_DATA(/name), then system paths."""
    if root:
        return [Path(root).expanduser()]
    roots: list[Path] = []
    env = os.environ.get("EDGETUNE_DATA")
    if env:
        roots += [Path(env) / name, Path(env)]
    roots += list(defaults)
    return roots


def load_dataset(
    name: str,
    root: str | Path | None = None,
    *,
    val_size: int = 5000,
    split_seed: int = 0,
) -> DataSplits:
    """Load a dataset by name (or alias) and carve the fixed-seed validation split."""
    name = dataset_name(name)
    loader, defaults, how = _loader(name)
    tried = candidate_roots(name, root, defaults)
    for candidate in tried:
        if candidate.is_dir():
            try:
                train, test, info = loader(candidate)
            except FileNotFoundError:
                continue
            break
    else:
        looked = "\n  ".join(str(p) for p in tried) or "(no directory given: set data.root)"
        raise DatasetNotFoundError(
            f"dataset '{name}' not found. Looked in:\n  {looked}\n{how}"
        )
    train, val = carve_validation(train, val_size, split_seed)
    return DataSplits(
        name=name,
        train=train,
        val=val,
        test=test,
        num_classes=info["num_classes"],
        mean=tuple(info["mean"]),
        std=tuple(info["std"]),
        classes=tuple(info.get("classes", ())),
        held_out=HeldOut(name, val_size, split_seed),
    )
