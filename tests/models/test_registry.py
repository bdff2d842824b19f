"""The model registry and checkpoints: Distiller's names for the ResNet depths, unknown names
answered with the known, a checkpoint saved under DataParallel's prefix, the shipped network
against its model card, a bare state dict loaded by every command told what it is."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from edgetune.data import load_dataset
from edgetune.errors import ConfigError
from edgetune.models import build_model, list_models, load_checkpoint, save_checkpoint
from edgetune.training.loop import evaluate

REPO = Path(__file__).resolve().parents[2]


BARE_COMMANDS = {
    "evaluate": (["evaluate", "{bare}", "--split", "val"], ["--num-classes", "10", "--in-channels", "1"], "top-1 94.72 %"),
    "bench": (["bench", "{bare}", "--repeats", "1"], ["--num-classes", "10", "--in-channels", "1"], "latency"),
    "sensitivity": (["sensitivity", "--checkpoint", "{bare}", "--range", "0.5", "--layers", "layer1.0.conv1",
                     "--val-subset", "200", "--batchnorm-images", "0", "--out", "{tmp}/sense"], [], "1 layers x 1 ratios"),
    "profile-widths": (["profile-widths", "--checkpoint", "{bare}", "--step", "32"], [], "fast widths"),
}


@pytest.mark.parametrize("name", ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110"])
def test_resnet_depths_have_distiller_names(name):
    depth = int(name.removeprefix("resnet"))
    model = build_model(name, num_classes=7, in_channels=1)
    names = dict(model.named_parameters())
    n = (depth - 2) // 6
    assert f"layer1.{n - 1}.conv1.weight" in names and f"layer1.{n}.conv1.weight" not in names
    assert "layer2.0.downsample.0.weight" in names
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 7)


def test_unknown_model_suggests_names():
    with pytest.raises(ConfigError, match="resnet56"):
        build_model("resnet57", num_classes=10, in_channels=3)
    assert "resnet56" in list_models("resnet*")


def test_checkpoint_accepts_module_prefix(tmp_path):
    model = build_model("resnet20", num_classes=10, in_channels=1)
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save(state, tmp_path / "distiller.pt")
    loaded, _meta = load_checkpoint(tmp_path / "distiller.pt", model_name="resnet20", num_classes=10, in_channels=1)
    assert torch.equal(loaded.conv1.weight, model.conv1.weight)
    save_checkpoint(tmp_path / "ours.pt", model, {"model": "resnet20", "num_classes": 10, "in_channels": 1})
    again, _ = load_checkpoint(tmp_path / "ours.pt")
    assert torch.equal(again.fc.weight, model.fc.weight)


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="needs dataset-fashion-mnist")
def test_shipped_resnet20_matches_its_model_card():
    model, meta = load_checkpoint(REPO / "models/resnet20-fmnist.pt")
    data = load_dataset("fashion-mnist")
    data = dataclasses.replace(data, test=data.test.subset(2000))
    result = evaluate(model, data, data.test)
    assert result.top1 > 92.0, result
    assert meta["test_top1"] > 94.0


@pytest.mark.parametrize("command", BARE_COMMANDS)
def test_a_bare_state_dict_is_loaded_by_every_command_with_the_flags_the_error_names(tmp_path, command):
    """`edgetune evaluate` said "pass them explicitly" and had no flag to pass them with; every
    command that loads a checkpoint takes --model (and --num-classes, --in-channels where no
    dataset says them) and its refusal names those flags."""
    import subprocess
    import sys

    model, _ = load_checkpoint(REPO / "models" / "resnet20-fmnist.pt")
    torch.save(model.state_dict(), tmp_path / "bare.pt")
    args, sizes, says = BARE_COMMANDS[command]
    cli = [sys.executable, "-m", "edgetune.cli", *(a.format(bare=tmp_path / "bare.pt", tmp=tmp_path) for a in args)]
    refused = subprocess.run(cli, capture_output=True, text=True, timeout=300, check=False)
    assert refused.returncode != 0 and "--model NAME --num-classes N --in-channels C" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    done = subprocess.run([*cli, "--model", "resnet20", *sizes], capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0 and says in done.stdout + done.stderr, done.stdout + done.stderr
