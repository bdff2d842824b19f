"""CIFAR-10 from a local copy in its standard python-pickle layout (cifar-10-batches-py)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from edgetune.data.splits import ImageSplit
from edgetune.errors import EdgetuneError

SEARCH_PATHS = (Path("~/.cache/edgetune/cifar-10-batches-py").expanduser(),)
HOW_TO_GET = (
    "edgetune never downloads data. Copy CIFAR-10's python version (the directory\n"
    "cifar-10-batches-py with data_batch_1..5 and test_batch) here and set data.root to it."
)
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as fh:
        # The official files are pickles of plain dicts of bytes/arrays; restrict what may load.
        entry = _SafeUnpickler(fh, encoding="bytes").load()
    data = entry.get(b"data", entry.get("data"))
    labels = entry.get(b"labels", entry.get("labels"))
    if data is None or labels is None:
        raise EdgetuneError(f"{path} has no 'data'/'labels' entries: not a CIFAR-10 batch")
    return np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32), np.asarray(labels, np.int64)


class _SafeUnpickler(pickle.Unpickler):
    """Only numpy arrays and builtins: a batch file must not be able to run code."""

    _allowed = frozenset({
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    })

    def find_class(self, module: str, name: str):
        if (module, name) in self._allowed:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")


def load_cifar10(root: Path) -> tuple[ImageSplit, ImageSplit, dict]:
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)]
    if not all((root / n).is_file() for n in names + ["test_batch"]):
        raise FileNotFoundError(root)
    parts = [_read_batch(root / n) for n in names]
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    x_test, y_test = _read_batch(root / "test_batch")
    classes: tuple[str, ...] = ()
    meta = root / "batches.meta"
    if meta.is_file():
        with open(meta, "rb") as fh:
            names_raw = _SafeUnpickler(fh, encoding="bytes").load().get(b"label_names", [])
        classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names_raw)
    info = {"num_classes": 10, "mean": MEAN, "std": STD, "classes": classes}
    train = ImageSplit(torch.from_numpy(x_train), torch.from_numpy(y_train))
    test = ImageSplit(torch.from_numpy(x_test), torch.from_numpy(y_test))
    return train, test, info
