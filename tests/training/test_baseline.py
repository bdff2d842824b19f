"""A whole training run (`training.baseline`): resumed to the same weights after a kill, the
teacher's one pass counted in its time, a finalist trained again without the warm-up ramp and
settled before it is saved."""

from __future__ import annotations

import pytest
import torch

from edgetune.data import load_dataset
from edgetune.models import build_model
from edgetune.training.baseline import train_baseline
from edgetune.training.loop import Training


def test_training_resumes_to_same_weights(tiny_fmnist, tmp_path):
    data = load_dataset("fashion-mnist", tiny_fmnist, val_size=40)
    meta = {"model": "resnet20", "num_classes": 10, "in_channels": 1}

    def run(out, epochs_first=None):
        torch.manual_seed(0)
        model = build_model("resnet20", num_classes=10, in_channels=1)
        return model, train_baseline(model, data, Training(epochs=2, batch_size=64), out=out, meta=meta,
                                      log=lambda s: None)

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
        train_baseline(model, data, Training(epochs=2, batch_size=64), out=part, meta=meta, log=stop_after_first)
    assert part.with_name("part.pt.train-state").is_file()
    torch.manual_seed(123)  # a resumed run must not depend on the fresh model's init
    model2 = build_model("resnet20", num_classes=10, in_channels=1)
    steps: list[tuple[int, int]] = []
    resumed = train_baseline(model2, data, Training(epochs=2, batch_size=64), out=part, meta=meta, log=lambda s: None,
                             on_step=lambda done, total: steps.append((done, total)))
    assert not part.with_name("part.pt.train-state").exists()
    per_epoch = -(-len(data.train) // 64)
    # The bar starts where the first run stopped and counts each step of the second epoch.
    assert steps == [(n, 2 * per_epoch) for n in range(per_epoch, 2 * per_epoch + 1)]
    for a, b in zip(full_model.state_dict().values(), model2.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5)
    assert resumed["test_top1"] == pytest.approx(full["test_top1"])


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
    training = Training(epochs=1, batch_size=64, teacher=Teacher(Slow(), alpha=0.5, temperature=2.0), augmented=False)
    result = train_baseline(student, data, training, out=tmp_path / "s.pt", meta={"model": "tiny"}, log=lambda s: None,
                            score_test=False)
    assert result["train_seconds"] >= 3.0


def test_a_finalist_trained_again_ends_its_cosine_at_zero_and_settles_before_it_is_saved(tiny_fmnist, tmp_path):
    """Training from scratch ramps the rate over its first epoch; training a network that works
    again (the final stage) does not: with the ramp, a one-epoch final training ended at its peak
    rate. `settle` runs on the trained weights before they are scored and saved."""
    data = load_dataset("fashion-mnist", tiny_fmnist, val_size=40)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 26 * 26, 10))
    ramped = train_baseline(net, data, Training(epochs=1, lr=0.05, batch_size=64), out=tmp_path / "a.pt", meta={},
                            log=lambda s: None, score_test=False)
    assert ramped["history"][-1]["lr"] == pytest.approx(0.05)  # what the final stage had before

    def settle(model):
        model[1].running_mean.fill_(7.0)

    again = train_baseline(net, data, Training(epochs=1, lr=0.05, batch_size=64, warmup_epochs=0, settle=settle),
                           out=tmp_path / "b.pt", meta={}, log=lambda s: None, score_test=False)
    assert again["history"][-1]["lr"] == pytest.approx(0.0, abs=1e-9)
    saved = torch.load(tmp_path / "b.pt", weights_only=False)
    state = saved.get("state_dict", saved)
    assert torch.equal(state["1.running_mean"], torch.full((4,), 7.0))
