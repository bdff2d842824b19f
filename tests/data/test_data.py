import pickle

import numpy as np
import pytest
import torch

from edgetune.data import load_dataset
from edgetune.data.idx import read_idx
from edgetune.data.splits import augment
from edgetune.errors import ConfigError, DatasetNotFoundError, EdgetuneError


def test_idx_roundtrip_and_split(tiny_fmnist):
    data = load_dataset("fashion-mnist", tiny_fmnist, val_size=40, split_seed=3)
    assert (len(data.train), len(data.val), len(data.test)) == (160, 40, 50)
    assert data.in_channels == 1 and data.image_size == (28, 28) and data.num_classes == 10
    raw = read_idx(tiny_fmnist / "train-images-idx3-ubyte.gz")
    # train and val together are exactly the original training images, no overlap
    both = torch.cat([data.train.images, data.val.images]).flatten(1)
    assert sorted(map(bytes, both.numpy())) == sorted(map(bytes, raw.reshape(200, -1)))
    again = load_dataset("fashion-mnist", tiny_fmnist, val_size=40, split_seed=3)
    assert torch.equal(again.val.images, data.val.images)


def test_idx_rejects_bad_magic(tmp_path):
    bad = tmp_path / "x-idx3-ubyte"
    bad.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(EdgetuneError, match="not an IDX file"):
        read_idx(bad)


def test_missing_dataset_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setattr("edgetune.data.idx.SEARCH_PATHS", ())
    monkeypatch.delenv("EDGETUNE_DATA", raising=False)
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("fashion-mnist", tmp_path / "nowhere")
    assert "nowhere" in str(err.value) and "dataset-fashion-mnist" in str(err.value)


def test_unknown_dataset_lists_known():
    with pytest.raises(ConfigError, match="cifar10"):
        load_dataset("imagenet")


def test_cifar_loader_on_written_batches(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    rng = np.random.default_rng(1)
    for name, n in [(f"data_batch_{i}", 20) for i in range(1, 6)] + [("test_batch", 30)]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, n).tolist()}
        (root / name).write_bytes(pickle.dumps(batch))
    data = load_dataset("cifar10", tmp_path, val_size=10)
    assert (len(data.train), len(data.val), len(data.test)) == (90, 10, 30)
    assert data.in_channels == 3 and data.image_size == (32, 32)


def test_cifar_refuses_code_in_pickle(tmp_path):
    root = tmp_path / "c"
    root.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (root / name).write_bytes(pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0],
                                                b"evil": print}))
    with pytest.raises(pickle.UnpicklingError):
        load_dataset("cifar10", root, val_size=1)


def test_augment_keeps_shape_and_content():
    images = torch.arange(2 * 1 * 4 * 4, dtype=torch.uint8).view(2, 1, 4, 4)
    out = augment(images, pad=0, generator=torch.Generator().manual_seed(0))
    for a, b in zip(out, images):
        assert torch.equal(a, b) or torch.equal(a, b.flip(2))
    padded = augment(images, pad=2, generator=torch.Generator().manual_seed(1))
    assert padded.shape == images.shape
