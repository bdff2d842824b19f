"""A schema and its loader read one list: what the experiment file accepts, the loader builds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgetune.catalog import DATASETS, RUNTIMES, SEARCH_STRATEGIES
from edgetune.config.benchmark import BenchmarkSpec
from edgetune.config.experiment import ExperimentSpec, load_experiment
from edgetune.config.sweep import parse_sweep
from edgetune.errors import ConfigError


def _image_folder(root: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for part, n in (("train", 6), ("test", 2)):
        for cls in ("cat", "dog"):
            (root / part / cls).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(root / part / cls / f"{i}.png")
    return root


@pytest.mark.parametrize("name", ["image-folder", "folder"])
def test_the_image_folder_validates_and_loads_under_either_name(name, tmp_path):
    """Once `data.name: folder` validated and then failed to load, and `image-folder` (the
    loader's name) was refused by the schema."""
    from edgetune.data import load_dataset

    spec = ExperimentSpec.model_validate({"data": {"name": name}})
    assert spec.data.name == "image-folder"
    spec, _ = load_experiment(None, {"data.name": name})
    splits = load_dataset(spec.data.name, _image_folder(tmp_path / "images"), val_size=2)
    assert splits.num_classes == 2 and splits.in_channels == 3
    assert len(load_dataset(name, tmp_path / "images", val_size=2).train) == 10


def test_every_registered_dataset_validates_and_unknown_ones_say_what_is_known():
    for name in DATASETS:
        assert ExperimentSpec.model_validate({"data": {"name": name}}).data.name == name
    with pytest.raises(ConfigError, match=r"at 'data.name'.*known datasets: cifar10, fashion-mnist, image-folder"):
        load_experiment(None, {"data.name": "imagenet"})


def test_schemas_take_strategies_and_runtimes_from_the_registries():
    for method in SEARCH_STRATEGIES:
        assert parse_sweep({"method": method}).method == method
    with pytest.raises(ConfigError, match="method"):
        parse_sweep({"method": "hyperopt"})
    for runtime in RUNTIMES:
        assert BenchmarkSpec(runtime=runtime).runtime == runtime
    with pytest.raises(ConfigError, match="unknown runtime 'tensorflow'"):
        load_experiment(None, {"benchmark.runtime": "tensorflow"})
