"""Fashion-MNIST (and MNIST-layout) IDX files, gzipped or not.

Debian's `dataset-fashion-mnist` package installs them in /usr/share/datasets/fashion-mnist.
"""

from __future__ import annotations

import functools
import gzip
import struct
from pathlib import Path

import numpy as np
import torch

from edgetune.data.splits import ImageSplit
from edgetune.errors import EdgetuneError

SEARCH_PATHS = (Path("/usr/share/datasets/fashion-mnist"),)
HOW_TO_GET = (
    "Install it with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or put the four\n"
    "IDX files (train-images-idx3-ubyte.gz, ...) in a directory and set data.root or $EDGETUNE_DATA."
)
CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
# Channel statistics of the Fashion-MNIST training set (computed once from the 60k images).
MEAN, STD = (0.2860,), (0.3530,)

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file: magic (0, 0, dtype, ndim), big-endian dims, then the data. The array
    is read-only and kept for the process (a second study in one process, the final stage and
    the dry run read the same 30 MB of gzip again otherwise: about a second each)."""
    stat = path.stat()
    return _read_idx(path.resolve(), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _read_idx(path: Path, _mtime_ns: int, _size: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise EdgetuneError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=_DTYPES[raw[2]], offset=4 + 4 * ndim)
    expected = int(np.prod(dims))
    if data.size != expected:
        raise EdgetuneError(f"{path} is truncated: header says {dims}, found {data.size} values")
    return data.reshape(dims)


def _find(root: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem, stem.replace("-idx", ".idx")):
        if (root / name).is_file():
            return root / name
    raise FileNotFoundError(root / f"{stem}.gz")


def load_split(root: Path, prefix: str) -> ImageSplit:
    images = read_idx(_find(root, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find(root, f"{prefix}-labels-idx1-ubyte"))
    if images.shape[0] != labels.shape[0]:
        raise EdgetuneError(
            f"{root}: {prefix} has {images.shape[0]} images but {labels.shape[0]} labels"
        )
    return ImageSplit(
        torch.from_numpy(images.copy()).unsqueeze(1),
        torch.from_numpy(labels.astype(np.int64)),
    )


def load_fashion_mnist(root: Path) -> tuple[ImageSplit, ImageSplit, dict]:
    train, test = load_split(root, "train"), load_split(root, "t10k")
    info = {"num_classes": 10, "mean": MEAN, "std": STD, "classes": CLASSES}
    return train, test, info
