import gzip
import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

# Two test workers (make test: pytest -n 2) on two cores: one thread each, inherited by the
# commands the tests start, or each worker's PyTorch and OpenMP spin on both cores at once.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np
import pytest


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def tiny_fmnist(tmp_path: Path) -> Path:
    """A Fashion-MNIST-shaped IDX set the test writes itself: 200 train, 50 test images."""
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 200), ("t10k", 50)):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 256, (n, 28, 28))
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return tmp_path


@pytest.fixture(scope="session")
def built_once(tmp_path_factory) -> Callable[[str, Callable[[Path], None]], Path]:
    """`built_once(name, build)`: `build(folder)` runs once per test session, whichever of the
    xdist workers asks first (the others wait on a file lock), and each caller gets its own copy
    of the folder to read or change. A module-scoped fixture is otherwise built again by every
    worker that draws one of the module's tests: a minute each for the report's study and the
    sensitivity analysis."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    shared_root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base

    def once(name: str, build: Callable[[Path], None]) -> Path:
        shared = shared_root / f"built-once-{name}"
        with FileLock(str(shared) + ".lock"):
            if not (shared / ".built").is_file():
                shutil.rmtree(shared, ignore_errors=True)
                shared.mkdir(parents=True)
                build(shared)
                (shared / ".built").touch()
        mine = tmp_path_factory.mktemp(name)
        shutil.copytree(shared, mine, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".built"))
        return mine

    return once


@pytest.fixture(scope="module")
def fmnist():
    """Debian's Fashion-MNIST (installed by `make test`)."""
    from edgetune.data import load_dataset

    return load_dataset("fashion-mnist")


@pytest.fixture(scope="module")
def resnet20(tmp_path_factory):
    """The shipped ResNet-20 and its ONNX export (batch 1, 1 x 28 x 28)."""
    import torch

    from edgetune.models import load_checkpoint
    from edgetune.runtimes.export import export_onnx
    from tests.helpers import CKPT

    model, _ = load_checkpoint(CKPT)
    path = tmp_path_factory.mktemp("onnx") / "resnet20.onnx"
    export_onnx(model.eval(), torch.zeros(1, 1, 28, 28), path)
    return model, path
