"""Capabilities are data in the catalog's rows: every class agrees with its row, and a new
plug-in (a search strategy, a compression method, a report format, an architecture) is its
module plus one row, with nothing else edited. The toy plug-ins live in this module."""

from __future__ import annotations

import optuna
import pytest
import torch
from torch import nn

from edgetune import catalog
from edgetune.catalog import (
    ARCHITECTURES,
    COMPRESSION_METHODS,
    EXECUTORS,
    REPORT_RENDERERS,
    SEARCH_STRATEGIES,
    TRACKERS,
    MethodTraits,
    Plugin,
    RendererTraits,
    StrategyTraits,
    load,
)
from edgetune.compress.base import CompressionMethod
from edgetune.config.recipe import Schedule
from edgetune.config.sweep import parse_sweep
from edgetune.errors import ConfigError
from edgetune.search.base import SearchContext, Strategy

HERE = __name__


@pytest.mark.parametrize("name", list(COMPRESSION_METHODS))
def test_each_compression_method_agrees_with_its_row(name):
    cls, traits = load(COMPRESSION_METHODS, name, "method", "class"), COMPRESSION_METHODS[name].traits
    assert cls.name == name
    assert (cls.structural, cls.samples_images) == (traits.structural, traits.samples_images)
    if traits.family in ("filters", "channels", "blocks"):  # the unit a record counts is the family's
        assert cls.unit == traits.family
    assert traits.takes_width == (traits.family in ("filters", "channels"))


@pytest.mark.parametrize("name", [n for n in SEARCH_STRATEGIES if n != "rl"] + ["rl"])
def test_each_strategy_agrees_with_its_row(name):
    if name == "rl":
        pytest.importorskip("stable_baselines3")
    cls, traits = load(SEARCH_STRATEGIES, name, "method", "method"), SEARCH_STRATEGIES[name].traits
    assert cls.name == name and cls.multi_objective == traits.multi_objective


def test_executors_trackers_and_architectures_are_built_the_same_way():
    for name in EXECUTORS:
        assert callable(getattr(load(EXECUTORS, name, "executor", "remote"), "from_settings", None))
    assert [p.traits.section for p in EXECUTORS.values()].count(None) == 1  # exactly one default
    assert all(p.traits.section.startswith("tracking.") for p in TRACKERS.values())
    for name in ("resnet20", "vgg11", "mobilenetv2"):
        model = load(ARCHITECTURES, name, "model", "model.name")(num_classes=3, in_channels=1)
        assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 3)


# --- toy plug-ins: one row each, nothing else edited ----------------------------------------


class ToyStrategy(Strategy):
    """Single-objective, over a finite space: both traits must reach the schema and the plan."""

    name = "toy"
    multi_objective = False

    def sampler(self, ctx: SearchContext) -> optuna.samplers.BaseSampler:
        return optuna.samplers.RandomSampler(seed=ctx.seed)


class ToyFilters(CompressionMethod):
    """Zeroes nothing and removes nothing: what matters is that the recipe schema reads its row."""

    name = "toy-filters"
    unit = "filters"
    samples_images = True

    def apply(self, model, pruner, weights, ratio, ctx, options):
        return []


def toy_network(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    return nn.Sequential(nn.Conv2d(in_channels, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, num_classes))


@pytest.fixture
def toys(monkeypatch):
    monkeypatch.setitem(SEARCH_STRATEGIES, "toy", Plugin(HERE, "ToyStrategy", None, (),
                                                         StrategyTraits(multi_objective=False, finite_space=False)))
    monkeypatch.setitem(COMPRESSION_METHODS, "toy-filters", Plugin(HERE, "ToyFilters", None, (),
                                                                   MethodTraits("filters", samples_images=True,
                                                                                takes_width=True)))
    monkeypatch.setitem(REPORT_RENDERERS, "toy", Plugin(HERE, "unused", None, (), RendererTraits(("png",))))
    monkeypatch.setitem(ARCHITECTURES, "toy-net", Plugin(HERE, "toy_network", None, ()))


def test_a_registered_strategy_is_read_by_its_traits(toys):
    assert parse_sweep({"method": "toy"}).method == "toy"
    with pytest.raises(ConfigError, match="method 'toy' optimises one objective; use bayes, tpe, random, nsga2"):
        parse_sweep({"method": "toy", "objectives": [{"metric": "latency", "goal": "minimize"},
                                                     {"metric": "top1", "goal": "maximize"}]})
    assert "toy" not in catalog.names_where(SEARCH_STRATEGIES, multi_objective=True)


def test_a_registered_compression_method_is_read_by_its_traits(toys):
    pruner = {"class": "toy-filters", "desired_sparsity": 0.5, "weights": ["conv.weight"]}
    schedule = Schedule.model_validate({"version": 1, "pruners": {"p": {**pruner, "n_samples": 64, "round_to": 8}},
                                        "policies": [{"pruner": {"instance_name": "p"}, "epochs": [0]}]})
    assert schedule.pruners["p"].traits.samples_images and schedule.pruners["p"].family == "filters"
    with pytest.raises(ValueError, match="class 'toy-filters' prunes filters, but group_type is 'Channels'"):
        Schedule.model_validate({"version": 1, "pruners": {"p": {**pruner, "group_type": "Channels"}},
                                 "policies": [{"pruner": {"instance_name": "p"}, "epochs": [0]}]})


def test_a_registered_report_format_gets_what_it_needs_drawn_first(toys):
    """Its order only; tests/report/test_report.py renders one into a real report."""
    from edgetune.report.build import with_needs

    assert with_needs(["toy", "csv"]) == ["png", "toy", "csv"]
    assert with_needs(["md", "png", "html"]) == ["png", "md", "html"]


def test_a_registered_architecture_builds_and_lists(toys):
    from edgetune.models import build_model, list_models

    assert "toy-net" in list_models("toy-*")
    assert build_model("toy-net", num_classes=3, in_channels=1)(torch.zeros(1, 1, 8, 8)).shape == (1, 3)
