"""The rules every result rests on, pinned directly: ranked pruning removes the *least* important
structures (a pruner that removed the largest filters passed every other test)."""

import pytest
import torch
from torch import nn

from edgetune.compress.recipe import apply_pruners
from edgetune.config.recipe import parse_schedule


class TwoConvs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(2, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(torch.relu(self.bn1(self.conv1(x))))


def _scaled() -> tuple[TwoConvs, torch.Tensor]:
    """conv1's filter i has every weight equal to (i + 1) * sign: L1 and L2 both rank 0 < 1 < ... < 7,
    shuffled so that position is not the answer."""
    torch.manual_seed(0)
    model = TwoConvs().eval()
    order = torch.tensor([5, 2, 7, 0, 3, 6, 1, 4])
    with torch.no_grad():
        base = torch.sign(torch.randn(8, 2, 3, 3))
        model.conv1.weight.copy_(base * (order + 1).view(-1, 1, 1, 1).float())
    return model, model.conv1.weight.detach().clone()


@pytest.mark.parametrize("cls", ["L1RankedStructureParameterPruner", "L2RankedStructureParameterPruner",
                                 "filters-l1", "filters-l2"])
def test_ranked_filter_pruning_keeps_the_largest_filters(cls):
    model, before = _scaled()
    schedule = parse_schedule({"pruners": {"p": {"class": cls, "group_type": "Filters", "desired_sparsity": 0.5,
                                                 "weights": ["conv1.weight"]}}})
    apply_pruners(model, schedule, torch.randn(1, 2, 6, 6))
    after = model.conv1.weight.detach()
    assert after.shape[0] == 4
    kept_norms = sorted(float(w.abs().sum()) for w in after)
    largest = sorted(float(w.abs().sum()) for w in before)[4:]
    assert kept_norms == pytest.approx(largest)  # filters 4..7 by size, wherever they sat
    assert model.conv2.weight.shape[1] == 4  # and their consumers' channels went with them


def test_channel_pruning_keeps_the_largest_input_channels():
    model, _ = _scaled()
    with torch.no_grad():
        scale = torch.tensor([3.0, 0.5, 2.0, 0.1, 5.0, 1.0, 4.0, 0.2])
        model.conv2.weight.mul_(0).add_(scale.view(1, -1, 1, 1))
    schedule = parse_schedule({"pruners": {"p": {"class": "L1RankedStructureParameterPruner", "group_type": "Channels",
                                                 "desired_sparsity": 0.5, "weights": ["conv2.weight"]}}})
    apply_pruners(model, schedule, torch.randn(1, 2, 6, 6))
    kept = sorted(float(v) for v in model.conv2.weight[0, :, 0, 0])
    assert kept == pytest.approx([2.0, 3.0, 4.0, 5.0])
