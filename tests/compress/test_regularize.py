"""Distiller's regularisers in the fine-tuning loss: the penalty each computes, when its policy
makes it act, what it refuses, and that group lasso does push whole filters down."""

import pytest
import torch
from torch import nn

from edgetune.compress.regularize import regularization, with_penalty
from edgetune.config.recipe import parse_schedule
from edgetune.errors import ConfigError


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean((2, 3)))


def _schedule(regularizers: dict, policies: list | None = None):
    return parse_schedule({"regularizers": regularizers, "policies": policies or []})


def test_each_penalty_is_its_formula():
    torch.manual_seed(0)
    model = Tiny()
    w, f = model.conv.weight, model.fc.weight
    cases = [
        ({"class": "GroupLassoRegularizer", "reg_regims": {"module.conv.weight": [0.1, "Filters"]}},
         0.1 * w.flatten(1).norm(dim=1).sum()),
        ({"class": "GroupLassoRegularizer", "reg_regims": {"conv.weight": [0.2, "Channels"]}},
         0.2 * w.transpose(0, 1).flatten(1).norm(dim=1).sum()),
        ({"class": "GroupLassoRegularizer", "reg_regims": {"fc.weight": [0.3, "Cols"]}}, 0.3 * f.norm(dim=0).sum()),
        ({"class": "L1Regularizer", "reg_regims": {"fc.weight": 0.01}}, 0.01 * f.abs().sum()),
        ({"class": "L2Regularizer", "reg_regims": {"conv.weight": 0.5}}, 0.5 * w.pow(2).sum()),
    ]
    for spec, expected in cases:
        penalty = regularization(model, _schedule({"r": spec}), epoch=0)
        assert penalty is not None and penalty().item() == pytest.approx(expected.item(), rel=1e-5), spec


def test_a_regularizer_acts_in_its_policys_epochs_only():
    spec = {"r": {"class": "L1Regularizer", "reg_regims": {"fc.weight": 0.01}}}
    policy = [{"regularizer": {"instance_name": "r"}, "starting_epoch": 2, "ending_epoch": 4}]
    schedule = _schedule(spec, policy)
    assert [regularization(Tiny(), schedule, e) is not None for e in range(5)] == [False, False, True, True, False]


def test_what_distiller_had_and_edgetune_does_not_run_is_refused_by_name():
    with pytest.raises(ConfigError, match="GroupVarianceRegularizer is not supported"):
        _schedule({"r": {"class": "GroupVarianceRegularizer", "reg_regims": {"w": [0.1, "Filters"]}}})
    with pytest.raises(ConfigError, match="threshold_criteria .* is not run"):
        _schedule({"r": {"class": "GroupLassoRegularizer", "reg_regims": {"w": [0.1, "Filters"]},
                         "threshold_criteria": "Mean_Abs"}})
    with pytest.raises(ConfigError, match=r"GroupLassoRegularizer takes \[strength, group type\]"):
        _schedule({"r": {"class": "GroupLassoRegularizer", "reg_regims": {"w": 0.1}}})
    with pytest.raises(ConfigError, match="at 'regularizers.r.reg_regims'.*'module.nothing.weight' is not a param"):
        regularization(Tiny(), _schedule({"r": {"class": "L1Regularizer", "reg_regims": {"module.nothing.weight": 1}}}),
                       0)


def test_group_lasso_drives_whole_filters_towards_zero():
    x, y = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(1)), torch.randint(0, 3, (64,))
    schedule = _schedule({"r": {"class": "GroupLassoRegularizer", "reg_regims": {"conv.weight": [0.05, "Filters"]}}})
    norms = {}
    for regularised in (False, True):
        torch.manual_seed(0)
        model = Tiny()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        loss = with_penalty(None, regularization(model, schedule, 0) if regularised else None)
        for _ in range(100):
            opt.zero_grad()
            (loss or nn.functional.cross_entropy)(model(x), y).backward()
            opt.step()
        norms[regularised] = model.conv.weight.detach().flatten(1).norm(dim=1)
    assert norms[True].sum() < 0.6 * norms[False].sum()
    assert (norms[True] < 0.05).sum() > (norms[False] < 0.05).sum()  # some filters all but gone
