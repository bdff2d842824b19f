"""Hardware-aware widths: the staircase in a latency table, rounding, pruning to rounded widths,
and a measured profile reused from the cache."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from edgetune.config.benchmark import BenchmarkSpec
from edgetune.executors.device import DeviceWorkerExecutor
from edgetune.executors.local import LocalExecutor
from edgetune.hardware import widths as W

# Runs studies or trains networks: the `slow` tier (`pytest -m 'not slow'` leaves it out).
pytestmark = pytest.mark.slow

# Shaped like the ResNet-56 table: multiples of 8 are fast, one channel more costs a block.
TABLE = {1: 0.99, 2: 1.00, 4: 1.05, 7: 1.50, 8: 1.54, 9: 1.96, 12: 2.00, 13: 2.47, 15: 2.61, 16: 2.20}


def test_the_staircase_keeps_only_widths_faster_than_every_wider_one():
    steps = W.efficient_widths(list(TABLE), list(TABLE.values()))
    # 13 and 15 run slower than 16: dominated. 1 is no faster than 2 beyond the 1 % tolerance
    # (measurement noise), so 2 channels cost nothing more than 1.
    assert steps == [2, 4, 7, 8, 9, 12, 16]
    assert W.efficient_widths([4], [1.0]) == [4]


@pytest.mark.parametrize("requested, round_to, expected", [
    (13, None, 13), (13, 8, 8), (16, 8, 16), (3, 8, 8), (5, 4, 4), (20, 8, 16),
    (15, "measured", 12), (13, "measured", 12), (8, "measured", 8), (16, "measured", 16), (1, "measured", 2),
])
def test_snapping_a_requested_width(requested, round_to, expected):
    steps = W.efficient_widths(list(TABLE), list(TABLE.values()))
    assert W.snap_width(requested, 16, round_to, steps) == expected


def test_the_predictor_adds_each_layers_share_of_the_measured_saving():
    """Two stage layers profiled together: cutting both to 8 took the network from 2.0 to 1.6 ms,
    so one of them at 8 saves 0.2 ms (10 %); at 12 (between 8 and 16, interpolated: 1.8 ms
    for both) it saves 5 %. A second signature's saving adds to it."""
    a = W.WidthProfile("a", ("l1", "l2"), 16, (8, 16), (1.6, 2.0), 2.0)
    b = W.WidthProfile("b", ("l3",), 32, (16, 32), (1.9, 2.0), 2.0)
    table = W.WidthTable({"a": a, "b": b}, {"l1": "a", "l2": "a", "l3": "b"})
    assert table.predict_ratio({"l1": 8}) == pytest.approx(0.9)
    assert table.predict_ratio({"module.l1": 12}) == pytest.approx(0.95)
    assert table.predict_ratio({"l1": 8, "l2": 8, "l3": 16}) == pytest.approx(1 - 0.2 - 0.05)
    assert table.predict_ratio({"l1": 16}) == 1.0


def test_snapping_errors_name_the_problem():
    with pytest.raises(ValueError, match="needs a width profile"):
        W.snap_width(5, 16, "measured", None)
    with pytest.raises(ValueError, match="positive multiple"):
        W.snap_width(5, 16, 0)


def test_pruning_keeps_rounded_widths():
    from edgetune.compress.base import CompressionContext, PrunerOptions, get_method
    from edgetune.models import build_model

    model = build_model("resnet20", num_classes=10, in_channels=1).eval()
    example = torch.randn(1, 1, 28, 28)
    method = get_method("filters-l1")
    weights = ["layer1.0.conv1.weight", "layer2.0.conv1.weight"]
    # 0.3 of 16 asks to keep 11 (-> 8); of 32 asks to keep 22 (-> 16).
    method.apply(model, "p", weights, 0.3, CompressionContext(example), PrunerOptions(scope="layer", round_to=8))
    assert model.layer1[0].conv1.out_channels == 8 and model.layer2[0].conv1.out_channels == 16
    staircases = {"layer1.0.conv1.weight": [1, 7, 8, 9, 16]}
    fresh = build_model("resnet20", num_classes=10, in_channels=1).eval()
    method.apply(fresh, "p", weights[:1], 0.1, CompressionContext(example, staircases=staircases),
                 PrunerOptions(scope="layer", round_to="measured"))
    assert fresh.layer1[0].conv1.out_channels == 9  # 14 asked, 9 is the widest fast step below it
    assert fresh(example).shape == (1, 10)


def test_a_measured_profile_is_cached_and_reused(tmp_path, monkeypatch):
    from edgetune.models import build_model

    monkeypatch.setenv("EDGETUNE_CACHE", str(tmp_path / "cache"))
    model = build_model("resnet20", num_classes=10, in_channels=1).eval()
    example = torch.randn(1, 1, 28, 28)
    spec = BenchmarkSpec(runs_per_round=5, min_rounds=2, max_rounds=3, throughput_batches=[], energy_seconds=0.0,
                         engine_throughput=False, warmup=2)
    calls = []
    real = W.profile_widths

    def counted(*args, **kwargs):
        calls.append(kwargs["targets"])
        return real(*args, **{**kwargs, "widths_for": lambda full: [8, 16, full]})

    monkeypatch.setattr(W, "profile_widths", counted)
    measuring = W.Measuring(LocalExecutor(), spec, torch.randn(8, 1, 28, 28).numpy())
    first = W.width_table(model, example, measuring, ["module.layer3.1.conv1.weight"]).staircases()
    table = W.width_table(model, example, measuring, ["layer3.1.conv1.weight", "layer3.2.conv1.weight"])
    again = table.staircases()
    assert len(calls) == 1  # measured once, then read from the cache
    # Every layer of the shape is cut together when it is measured: the change is large enough to time.
    assert sorted(calls[0]) == [f"layer3.{i}.conv1.weight" for i in (1, 2)]
    assert 64 in first["layer3.1.conv1.weight"]  # the full width is always a step
    assert again["layer3.2.conv1.weight"] == first["layer3.1.conv1.weight"]  # same signature, same staircase
    assert table.predict_ratio({"layer3.1.conv1.weight": 64}) == 1.0
    assert table.predict_ratio({"layer1.0.conv1.weight": 8}) is None  # no profile: no guess
    [cached] = (tmp_path / "cache" / "widths").glob("*.json")
    key = W.cache_key(W.model_sha(model), measuring, "filters-l1")
    assert W.load_profiles(cached, key) is not None
    other = replace(measuring, spec=spec.model_copy(update={"threads": 2}))
    assert W.load_profiles(cached, W.cache_key(W.model_sha(model), other, "filters-l1")) is None  # another target
    elsewhere = replace(measuring, executor=DeviceWorkerExecutor("redis://127.0.0.1:1/0", "dev-arm", 1.0, app=object()))
    assert W.load_profiles(cached, W.cache_key(W.model_sha(model), elsewhere, "filters-l1")) is None  # a device's


def test_a_study_with_round_to_keeps_aligned_widths_and_bad_values_are_refused(tmp_path, monkeypatch):
    """`round_to` in a recipe: every trial's kept widths are multiples of 8 (or full); a measured
    staircase is profiled once on this runtime and cached; wrong values name the key."""
    import copy
    import csv
    import json

    import yaml

    from edgetune.config.experiment import load_experiment
    from edgetune.errors import ConfigError
    from edgetune.study import plan_study, run_study
    from tests.helpers import RECIPE, coarse_widths, experiment

    monkeypatch.setenv("EDGETUNE_CACHE", str(tmp_path / "cache"))
    recipe = copy.deepcopy(RECIPE)
    recipe["pruners"]["stage_1"]["round_to"] = 8
    recipe["pruners"]["stage_3"]["round_to"] = "measured"
    path = experiment(tmp_path, trials=3, epochs=0, recipe=recipe)
    spec, _ = load_experiment(path)
    monkeypatch.setattr(W, "profile_widths", coarse_widths(W.profile_widths))
    run_study(spec)
    profiles = list((tmp_path / "cache" / "widths").glob("*.json"))
    assert len(profiles) == 1
    steps = {p["signature"]: W.efficient_widths(p["widths"], p["latency_ms"])
             for p in json.loads(profiles[0].read_text())["profiles"]}
    for trial in (tmp_path / "run" / "trials").iterdir():
        for r in json.loads((trial / "metrics.json").read_text())["thinning"]:
            kept = r["before"] - r["removed"]
            if "layer1" in r["weight"]:
                assert kept % 8 == 0, r
            else:
                assert any(kept in s for sig, s in steps.items() if "64" in sig), (r, steps)
    # The predictor's guess is recorded beside each measurement.
    with open(tmp_path / "run" / "trials.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["state"] == "COMPLETE"]
    assert rows and all(0.3 < float(r["predicted_latency_ratio"]) <= 1.0 for r in rows)
    assert all(abs(float(r["prediction_error"])) < 0.5 for r in rows)
    bad = copy.deepcopy(RECIPE)
    bad["pruners"]["stage_1"]["round_to"] = "fast"
    spec = yaml.safe_load(path.read_text())
    spec["recipe"] = bad
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError, match="round_to"):
        plan_study(load_experiment(path)[0])
