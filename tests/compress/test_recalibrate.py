"""Norm statistics re-estimated after pruning: what the layers then hold is the pruned network's
own statistics on the images, weighted by image, with the modes and momenta restored."""

import copy

import pytest
import torch
from torch import nn

from edgetune.compress.recalibrate import reestimate_norms, tracked_norms
from edgetune.compress.recipe import apply_pruners
from edgetune.config.recipe import parse_schedule


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6, momentum=0.3)
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))
        return self.head(self.drop(x.mean(dim=(2, 3))))


def _images(n: int = 70) -> torch.Tensor:
    return torch.randn(n, 1, 6, 6, generator=torch.Generator().manual_seed(1)) * 2 + 0.5


def test_the_statistics_are_the_networks_own_on_the_images():
    torch.manual_seed(0)
    model = Net().eval()
    x = _images()
    assert reestimate_norms(model, x, batch_size=16) == 2
    with torch.no_grad():
        feats = model.conv1(x)  # bn1's input over every image
    assert model.bn1.running_mean == pytest.approx(feats.mean(dim=(0, 2, 3)), abs=1e-5)
    # The image-weighted average of per-batch variances: close to, not exactly, the pooled one.
    assert model.bn1.running_var == pytest.approx(feats.var(dim=(0, 2, 3)), rel=0.05)


def test_batch_order_does_not_matter_and_modes_and_momenta_are_restored():
    torch.manual_seed(0)
    model = Net().eval()
    other = copy.deepcopy(model)
    x = _images()
    reestimate_norms(model, x, batch_size=16)
    reestimate_norms(other, x.flip(0), batch_size=16)
    # The first layer's mean is every image's, whatever the order; later layers see inputs
    # normalised by their batch, as in training.
    assert model.bn1.running_mean == pytest.approx(other.bn1.running_mean, abs=1e-5)
    assert model.bn2.running_mean == pytest.approx(other.bn2.running_mean, abs=0.05)
    assert not any(m.training for m in model.modules())
    assert (model.bn1.momentum, model.bn2.momentum) == (0.1, 0.3)
    model.train()
    reestimate_norms(model, x)
    assert all(m.training for m in model.modules())


def test_pruning_then_reestimating_moves_the_stale_statistics():
    torch.manual_seed(0)
    model = Net().eval()
    reestimate_norms(model, _images())
    schedule = parse_schedule({"pruners": {"p": {"class": "filters-l1", "desired_sparsity": 0.5,
                                                 "weights": ["conv1.weight"]}}})
    apply_pruners(model, schedule, torch.randn(1, 1, 6, 6))
    stale = model.bn2.running_mean.clone()
    reestimate_norms(model, _images())
    assert not torch.allclose(stale, model.bn2.running_mean)


def test_a_network_without_tracked_statistics_is_left_as_it_was():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4, track_running_stats=False), nn.GroupNorm(2, 4))
    before = copy.deepcopy(model.state_dict())
    assert tracked_norms(model) == []
    assert reestimate_norms(model, _images()) == 0
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_last_batch_of_one_image_is_left_out_rather_than_refused():
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 4), nn.BatchNorm1d(4)).eval()
    assert reestimate_norms(model, _images(17), batch_size=8) == 1
