"""Least-squares reconstruction of the layers that lost inputs: afterwards they reproduce the
unpruned network's outputs far better than as pruned; layers that lost nothing are untouched."""

import copy

import torch
from torch import nn

from edgetune.compress.recipe import apply_pruners
from edgetune.compress.reconstruct import reconstruct_consumers
from edgetune.config.recipe import parse_schedule


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 8, 3, padding=1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv2(torch.relu(self.bn1(self.conv1(x)))).mean(dim=(2, 3)))


def _conv2_output(model: Net, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.conv2(torch.relu(model.bn1(model.conv1(x))))


def test_the_consumer_of_removed_filters_reproduces_the_unpruned_output():
    torch.manual_seed(0)
    unpruned = Net().eval()
    x = torch.randn(64, 3, 8, 8)
    pruned = copy.deepcopy(unpruned)
    schedule = parse_schedule({"pruners": {"p": {"class": "filters-l1", "desired_sparsity": 0.5,
                                                 "weights": ["conv1.weight"]}}})
    apply_pruners(pruned, schedule, x[:1])
    target = _conv2_output(unpruned, x)
    before = (_conv2_output(pruned, x) - target).pow(2).mean()
    fc = pruned.fc.weight.detach().clone()
    assert reconstruct_consumers(pruned, unpruned, x) == 1  # conv2 only: fc lost nothing
    after = (_conv2_output(pruned, x) - target).pow(2).mean()
    assert after < 0.5 * before
    assert torch.equal(pruned.fc.weight, fc)


def test_a_linear_consumer_is_refitted_and_an_unpruned_network_is_left_alone():
    torch.manual_seed(0)
    unpruned = nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 3)).eval()
    x = torch.randn(200, 6)
    assert reconstruct_consumers(copy.deepcopy(unpruned), unpruned, x) == 0
    pruned = copy.deepcopy(unpruned)
    keep = torch.arange(6)  # the hidden units with the largest weights kept, the rest removed
    with torch.no_grad():
        first, last = nn.Linear(6, 6), nn.Linear(6, 3)
        first.weight.copy_(unpruned[0].weight[keep]), first.bias.copy_(unpruned[0].bias[keep])
        last.weight.copy_(unpruned[2].weight[:, keep]), last.bias.copy_(unpruned[2].bias)
    pruned[0], pruned[2] = first, last
    with torch.no_grad():
        before = (pruned(x) - unpruned(x)).pow(2).mean()
        assert reconstruct_consumers(pruned, unpruned, x) == 1
        assert (pruned(x) - unpruned(x)).pow(2).mean() < before
