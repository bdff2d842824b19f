"""A network scored on validation images it was trained on looks better than it is, and every
figure measured against it with it: its checkpoint records the split its training held out,
and a study whose validation split reaches outside it is refused before any work."""

from __future__ import annotations

import pytest
import torch
import yaml

from edgetune.config.experiment import load_experiment
from edgetune.data import load_dataset
from edgetune.errors import ConfigError
from edgetune.models import build_model, load_checkpoint, save_checkpoint
from edgetune.study import run_study
from edgetune.study.trial.network import load_network
from edgetune.training.baseline import train_baseline
from edgetune.training.loop import Training
from tests.helpers import ROOT, experiment

META = {"model": "resnet20", "num_classes": 10, "in_channels": 1}


def test_a_trained_checkpoint_records_its_split_and_is_scored_only_inside_it(tiny_fmnist, tmp_path):
    data = load_dataset("fashion-mnist", tiny_fmnist, val_size=40, split_seed=3)
    out = tmp_path / "net.pt"
    train_baseline(build_model("resnet20", num_classes=10, in_channels=1), data, Training(epochs=1, batch_size=64),
                   out=out, meta=META, log=lambda s: None)
    _, meta = load_checkpoint(out)
    assert meta["held_out"] == {"dataset": "fashion-mnist", "val_size": 40, "split_seed": 3}

    load_network(out, data)  # its own split
    load_network(out, load_dataset("fashion-mnist", tiny_fmnist, val_size=25, split_seed=3))  # a part of it
    with pytest.raises(ConfigError, match=r"at 'data.val_size'.*net.pt was trained on fashion-mnist's training "
                       r"images except a validation split of 40 \(split_seed 3\).*Use data.val_size 40 or fewer"):
        load_network(out, load_dataset("fashion-mnist", tiny_fmnist, val_size=41, split_seed=3))
    with pytest.raises(ConfigError, match=r"at 'data.split_seed'.*data.split_seed 4 would score it"):
        load_network(out, load_dataset("fashion-mnist", tiny_fmnist, val_size=40, split_seed=4))


def test_a_larger_validation_split_than_the_shipped_network_held_out_is_refused_before_any_trial(tmp_path):
    """The shipped checkpoints predate the record; `edgetune train`, which made them, held out
    5,000 images with seed 0 and could not be told otherwise."""
    path = experiment(tmp_path, trials=1, epochs=1)
    raw = yaml.safe_load(path.read_text())
    raw["data"]["val_size"] = 10000
    path.write_text(yaml.safe_dump(raw))
    spec, _ = load_experiment(path)
    with pytest.raises(ConfigError, match=r"at 'data.val_size'.*model.checkpoint .*resnet20-fmnist.pt was trained "
                       r"on fashion-mnist's training images except a validation split of 5000"):
        run_study(spec)
    assert not (tmp_path / "run" / "trials").exists()


def test_a_reference_trained_on_the_validation_images_is_refused_naming_it(tmp_path):
    mine = tmp_path / "mine.pt"  # a checkpoint that says nothing of its split: nothing to check
    save_checkpoint(mine, build_model("resnet20", num_classes=10, in_channels=1), dict(META))
    path = experiment(tmp_path, trials=0, epochs=0)
    raw = yaml.safe_load(path.read_text())
    raw["model"]["checkpoint"] = str(mine)
    raw["data"]["split_seed"] = 1
    raw["sweep"]["enqueue"] = [str(ROOT / "models" / "resnet56-fmnist.pt")]
    path.write_text(yaml.safe_dump(raw))
    spec, _ = load_experiment(path)
    with pytest.raises(ConfigError, match=r"at 'data.split_seed'.*enqueue .*resnet56-fmnist.pt was trained"):
        run_study(spec)
    assert torch.load(mine, weights_only=True)["meta"] == META  # the user's file untouched


def test_what_a_checkpoint_says_of_its_split_is_read_from_its_record_or_its_command():
    from edgetune.data.splits import HeldOut
    from edgetune.study.trial.network import trained_beside

    assert trained_beside({"held_out": {"dataset": "fashion-mnist", "val_size": 40, "split_seed": 3}}) == \
        HeldOut("fashion-mnist", 40, 3)
    assert trained_beside({"command": "edgetune train --model resnet20", "dataset": "fmnist"}) == \
        HeldOut("fashion-mnist", 5000, 0)
    assert trained_beside({"held_out": {"dataset": "fashion-mnist"}}) is None  # edited by hand: no check, no crash
    assert trained_beside({"command": "python my_train.py", "dataset": "fashion-mnist"}) is None
