import dataclasses
from pathlib import Path

import pytest
import torch

from edgetune.data import load_dataset
from edgetune.errors import ConfigError
from edgetune.models import build_model, list_models, load_checkpoint, save_checkpoint
from edgetune.training.baseline import train_baseline
from edgetune.training.loop import evaluate

# Runs studies or trains networks: the `slow` tier (`pytest -m 'not slow'` leaves it out).
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


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


def test_training_resumes_to_same_weights(tiny_fmnist, tmp_path):
    data = load_dataset("fashion-mnist", tiny_fmnist, val_size=40)
    meta = {"model": "resnet20", "num_classes": 10, "in_channels": 1}

    def run(out, epochs_first=None):
        torch.manual_seed(0)
        model = build_model("resnet20", num_classes=10, in_channels=1)
        return model, train_baseline(model, data, out=out, meta=meta, epochs=2, batch_size=64, log=lambda s: None)

    full_model, full = run(tmp_path / "full.pt")
    # interrupted run: train 1 epoch's worth by killing after the first checkpoint
    part = tmp_path / "part.pt"
    torch.manual_seed(0)
    model = build_model("resnet20", num_classes=10, in_channels=1)

    class Stop(Exception):
        pass

    def stop_after_first(msg):
        if msg.startswith("epoch 1/"):
            raise Stop

    with pytest.raises(Stop):
        train_baseline(model, data, out=part, meta=meta, epochs=2, batch_size=64, log=stop_after_first)
    assert part.with_name("part.pt.train-state").is_file()
    torch.manual_seed(123)  # a resumed run must not depend on the fresh model's init
    model2 = build_model("resnet20", num_classes=10, in_channels=1)
    steps: list[tuple[int, int]] = []
    resumed = train_baseline(model2, data, out=part, meta=meta, epochs=2, batch_size=64, log=lambda s: None,
                             on_step=lambda done, total: steps.append((done, total)))
    assert not part.with_name("part.pt.train-state").exists()
    per_epoch = -(-len(data.train) // 64)
    # The bar starts where the first run stopped and counts each step of the second epoch.
    assert steps == [(n, 2 * per_epoch) for n in range(per_epoch, 2 * per_epoch + 1)]
    for a, b in zip(full_model.state_dict().values(), model2.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5)
    assert resumed["test_top1"] == pytest.approx(full["test_top1"])


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="needs dataset-fashion-mnist")
def test_shipped_resnet20_matches_its_model_card():
    model, meta = load_checkpoint(REPO / "models/resnet20-fmnist.pt")
    data = load_dataset("fashion-mnist")
    data = dataclasses.replace(data, test=data.test.subset(2000))
    result = evaluate(model, data, data.test)
    assert result.top1 > 92.0, result
    assert meta["test_top1"] > 94.0


def test_without_augmentation_the_teacher_is_asked_once_per_image_and_teaches_the_same(tiny_fmnist):
    """`finetune.augment: false` shows each image as it is every epoch, so the teacher's logits
    can be computed once: the student must learn exactly what per-batch teaching gives it, for
    half the teacher's work over two epochs (and a flip left on would break the equality)."""
    from edgetune.training.loop import logits_of, train_epoch

    data = load_dataset("fashion-mnist", tiny_fmnist, val_size=40)
    torch.manual_seed(1)
    teacher = build_model("resnet20", num_classes=10, in_channels=1).eval()
    asked = []
    teacher.register_forward_hook(lambda module, inputs, output: asked.append(len(inputs[0])))

    def learn(**teaching):
        torch.manual_seed(0)
        student = build_model("resnet20", num_classes=10, in_channels=1)
        optimizer = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9)
        generator = torch.Generator().manual_seed(0)
        for _ in range(2):
            train_epoch(student, data, optimizer, batch_size=64, generator=generator, augmented=False, alpha=0.7,
                        temperature=4.0, **teaching)
        return student

    per_batch = learn(teacher=teacher)
    assert sum(asked) == 2 * len(data.train)
    asked.clear()
    once = learn(teacher_logits=logits_of(teacher, data, data.train))
    assert sum(asked) == len(data.train)
    for a, b in zip(per_batch.state_dict().values(), once.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-4)
    with pytest.raises(ValueError, match="augmented"):
        train_epoch(once, data, torch.optim.SGD(once.parameters(), lr=0.1), batch_size=64,
                    generator=torch.Generator(), teacher_logits=logits_of(teacher, data, data.train))


def test_the_teachers_one_pass_counts_in_the_training_time(tiny_fmnist, tmp_path):
    """`train_seconds` is what the training cost, the figure a final stage reports as its compute:
    the teacher's pass over the images before the first epoch is part of it."""
    import time

    from edgetune.training.loop import Teacher

    data = load_dataset("fashion-mnist", tiny_fmnist, val_size=40)

    class Slow(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))

        def forward(self, x):
            time.sleep(3.0)
            return self.net(x)

    student = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))
    result = train_baseline(student, data, out=tmp_path / "s.pt", meta={"model": "tiny"}, epochs=1, batch_size=64,
                            log=lambda s: None, teacher=Teacher(Slow(), alpha=0.5, temperature=2.0),
                            augmented=False, score_test=False)
    assert result["train_seconds"] >= 3.0


def test_the_fast_path_is_taken_only_where_it_is_fast_and_leaves_the_network_as_it_was(tiny_fmnist):
    """`auto` autocasts to bf16 only where the device computes it natively (emulated bf16 ran ten
    times slower than fp32 on an AVX2 CPU), trains the CPU's convolutions in channels_last, and
    hands back a network in the usual layout (exported, hashed and saved as any other)."""
    from edgetune.training.loop import bf16_native, fast_path, train_epoch

    assert fast_path("cpu", "fp32") == (False, False)
    assert fast_path("cpu", "bf16") == (True, True)
    assert fast_path("cpu", "auto") == (bf16_native("cpu"), True)
    assert fast_path("meta", "auto") == (False, False)
    data = load_dataset("fashion-mnist", tiny_fmnist, val_size=40)
    trained = {}
    for precision in ("fp32", "auto"):
        torch.manual_seed(0)
        model = build_model("resnet20", num_classes=10, in_channels=1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        train_epoch(model, data, optimizer, batch_size=64, generator=torch.Generator().manual_seed(0),
                    augmented=False, precision=precision, split=data.train.subset(64))  # one step
        assert all(p.is_contiguous() for p in model.parameters())
        trained[precision] = model
    if not bf16_native("cpu"):  # channels_last alone: the same arithmetic up to summation order
        for a, b in zip(trained["fp32"].parameters(), trained["auto"].parameters(), strict=True):
            assert torch.allclose(a, b, atol=1e-4)


BARE_COMMANDS = {
    "evaluate": (["evaluate", "{bare}", "--split", "val"], ["--num-classes", "10", "--in-channels", "1"], "top-1 94.72 %"),
    "bench": (["bench", "{bare}", "--repeats", "1"], ["--num-classes", "10", "--in-channels", "1"], "latency"),
    "sensitivity": (["sensitivity", "--checkpoint", "{bare}", "--range", "0.5", "--layers", "layer1.0.conv1",
                     "--val-subset", "200", "--batchnorm-images", "0", "--out", "{tmp}/sense"], [], "1 layers x 1 ratios"),
    "profile-widths": (["profile-widths", "--checkpoint", "{bare}", "--step", "32"], [], "fast widths"),
}


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


def test_a_finalist_trained_again_ends_its_cosine_at_zero_and_settles_before_it_is_saved(tiny_fmnist, tmp_path):
    """Training from scratch ramps the rate over its first epoch; training a network that works
    again (the final stage) does not: with the ramp, a one-epoch final training ended at its peak
    rate. `settle` runs on the trained weights before they are scored and saved."""
    data = load_dataset("fashion-mnist", tiny_fmnist, val_size=40)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 26 * 26, 10))
    ramped = train_baseline(net, data, out=tmp_path / "a.pt", meta={}, epochs=1, lr=0.05, batch_size=64,
                            log=lambda s: None, score_test=False)
    assert ramped["history"][-1]["lr"] == pytest.approx(0.05)  # what the final stage had before

    def settle(model):
        model[1].running_mean.fill_(7.0)

    again = train_baseline(net, data, out=tmp_path / "b.pt", meta={}, epochs=1, lr=0.05, batch_size=64,
                           log=lambda s: None, score_test=False, warmup_epochs=0, settle=settle)
    assert again["history"][-1]["lr"] == pytest.approx(0.0, abs=1e-9)
    saved = torch.load(tmp_path / "b.pt", weights_only=False)
    state = saved.get("state_dict", saved)
    assert torch.equal(state["1.running_mean"], torch.full((4,), 7.0))
