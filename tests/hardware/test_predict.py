"""Acting on the width profile: the widths a candidate will keep computed without building it,
a search space in measured widths, and a study that skips and warm-starts on predictions."""

from __future__ import annotations

import copy
import csv
import json
import random

import numpy as np
import pytest
import torch

from edgetune.compress.recipe import apply_pruners
from edgetune.config.recipe import parse_schedule
from edgetune.errors import ConfigError
from edgetune.executors.local import LocalExecutor
from edgetune.hardware import predict as P
from edgetune.hardware import widths as W
from edgetune.search.space import parse_sweep, resolve_all
from tests.helpers import RECIPE, coarse_widths, experiment

# Runs studies or trains networks: the `slow` tier (`pytest -m 'not slow'` leaves it out).
pytestmark = pytest.mark.slow

EXAMPLE = torch.randn(1, 1, 28, 28)
# Stage 2's second convolutions all feed one residual stream: pruning one prunes them all.
COUPLED = [f"module.layer2.{i}.conv2.weight" for i in range(3)]


def _model():
    from edgetune.models import build_model

    return build_model("resnet20", num_classes=10, in_channels=1).eval()


def _table(model, weights, steps_of=lambda full: [1, 8, full]) -> W.WidthTable:
    """A profile shaped like a real one (signatures, coupled groups, full widths) with made-up
    latencies, so that nothing is timed: each width costs its share of the full width."""
    groups = W.coupled_groups(model, EXAMPLE)
    sigs = W.signatures(model, EXAMPLE, [w.removeprefix("module.") for w in weights], W.coupled_sizes(groups))
    modules = dict(model.named_modules())
    profiles = {}
    for sig, layers in sigs.items():
        full = modules[layers[0].removesuffix(".weight")].out_channels
        widths = tuple(sorted(set(steps_of(full))))
        profiles[sig] = W.WidthProfile(sig, tuple(layers), full, widths, tuple(2.0 - 0.2 * (1 - w / full) for w in widths),
                                      2.0)
    return W.WidthTable(profiles, {w: s for s, ls in sigs.items() for w in ls}, groups)


def _recipe(ratios, round_to, width=None):
    raw = copy.deepcopy(RECIPE)
    raw["pruners"]["stream_2"] = {"class": "L1RankedStructureParameterPruner", "group_type": "Filters",
                                  "desired_sparsity": 0.5, "weights": COUPLED}
    raw["policies"].append({"pruner": {"instance_name": "stream_2"}, "epochs": [0]})
    for (name, pruner), ratio in zip(raw["pruners"].items(), ratios, strict=True):
        pruner["desired_sparsity"] = ratio
        if round_to is not None:
            pruner["round_to"] = round_to
    if width is not None:
        del raw["pruners"]["stage_3"]["desired_sparsity"]
        raw["pruners"]["stage_3"]["width"] = width
    return raw


@pytest.mark.parametrize("round_to", [None, 8, "measured"])
def test_planned_widths_are_what_the_pruners_keep(round_to):
    """Ratios, rounding, a `width`, and a coupled stream cut once: the widths computed from the
    recipe alone equal those the pruned network records, layer by layer."""
    rng = random.Random(str(round_to))
    model = _model()
    weights = [w for p in _recipe([0, 0, 0], None)["pruners"].values() for w in p["weights"]]
    table = _table(model, weights, lambda full: [1, 3, 8, 11, full])
    staircases = table.staircases()
    for case in range(4):
        raw = _recipe([rng.uniform(0, 0.9) for _ in range(3)], round_to, width=[None, 40, 8, 70][case])
        schedule = parse_schedule(raw)
        planned = P.planned_widths(schedule, table, staircases)
        pruned = copy.deepcopy(model)
        records = apply_pruners(pruned, schedule, EXAMPLE, staircases=staircases)
        assert planned == {r.weight: r.before - r.removed for r in records if r.skipped is None}, raw
        assert len(planned) == 7  # three stage-1, three stage-3, one for the coupled stream
        if round_to == "measured":
            assert all(w in staircases[k.removeprefix("module.")] for k, w in planned.items())
    assert pruned.layer3[0].conv1.out_channels == 64  # width 70 keeps the whole 64


def test_a_width_search_space_comes_from_the_measured_staircase():
    model = _model()
    raw = _recipe([0.5, 0.5, 0.5], None)
    schedule = parse_schedule(raw)
    weights = [w for p in raw["pruners"].values() for w in p["weights"]]
    table = _table(model, weights, lambda full: range(1, full + 1))
    # Made-up staircase for the stage-3 signature: 24 and 48 run no faster than 32 and 64.
    for sig in {table.signature_of[f"layer3.{i}.conv1.weight"] for i in range(3)}:
        p = table.profiles[sig]
        lat = [1.0 + (w + 7) // 8 * 8 / p.full if w not in (24, 48) else 2.5 for w in p.widths]
        table.profiles[sig] = W.WidthProfile(sig, p.layers, p.full, p.widths, tuple(lat), p.baseline_ms)
    sweep = parse_sweep({"parameters": {"stage_3_width": {"widths": "measured", "min": 10}, "stage_1": {"max": 0.5,
                                                                                                      "min": 0.0}}})
    targets = resolve_all(sweep.parameters, schedule, {})
    resolved, chosen = P.resolve_measured_widths(sweep, targets, schedule, table)
    steps = table.staircases()
    common = set.intersection(*(set(steps[f"layer3.{i}.conv1.weight"]) for i in range(3)))
    assert common == {8, 16, 23, 32, 40, 47, 56, 64}  # 24 and 48 are dominated
    assert chosen == {"stage_3_width": [16, 23, 32, 40, 47, 56, 64]}  # from `min` up
    assert resolved.parameters["stage_3_width"].distribution == "categorical"
    assert sweep.parameters["stage_3_width"].values is None  # the plan's sweep is left as it was
    bad = [({"stage_1": {"widths": "measured"}}, "applies to a pruner's width"),
           ({"stage_3_width": {"widths": "measured", "min": 65}}, "no measured fast width"),
           ({"stream_2_width": {"widths": "measured"}}, "no width profile")]
    for params, message in bad:
        sweep = parse_sweep({"parameters": params})
        with pytest.raises(ConfigError, match=message):
            P.resolve_measured_widths(sweep, resolve_all(sweep.parameters, schedule, {}), schedule,
                                      _table(model, weights[:6]))
    mixed = copy.deepcopy(raw)
    mixed["pruners"]["stage_3"]["weights"] = ["module.layer1.0.conv2.weight", "module.layer3.0.conv1.weight"]
    schedule = parse_schedule(mixed)
    sweep = parse_sweep({"parameters": {"stage_3_width": {"widths": "measured"}}})
    table = _table(model, mixed["pruners"]["stage_3"]["weights"])
    with pytest.raises(ConfigError, match=r"layers of different widths \(layer1.0.conv2.weight has 16"):
        P.resolve_measured_widths(sweep, resolve_all(sweep.parameters, schedule, {}), schedule, table)
    both = _recipe([0.5, 0.5, 0.5], None)
    both["pruners"]["stage_3"]["width"] = 8
    with pytest.raises(ConfigError, match="not both"):
        parse_schedule(both)


def test_warm_start_spreads_along_the_predicted_front_within_the_budget():
    model = _model()
    raw = _recipe([0.5, 0.5, 0.5], None)
    schedule = parse_schedule(raw)
    table = _table(model, [w for p in raw["pruners"].values() for w in p["weights"]], lambda full: range(1, full + 1))
    sweep = parse_sweep({"parameters": {"stage_1": {"min": 0.0, "max": 0.9}, "stage_3": {"min": 0.0, "max": 0.9}},
                         "predictor": {"candidates": 300}})
    targets = resolve_all(sweep.parameters, schedule, {})
    picks = P.warm_start(sweep, raw, targets, table, budget=0.8, k=4, seed=0)
    assert len(picks) == 4
    assert all(c.predicted_ratio <= 0.8 for c in picks)
    assert [c.predicted_ratio for c in picks] == sorted(c.predicted_ratio for c in picks)
    kept = [c.kept for c in picks]
    assert kept == sorted(kept) and kept[0] < kept[-1]  # slower predicted, more kept: a front
    for c in picks:
        assert P.predicted_ratio(raw, targets, c.params, table) == pytest.approx(c.predicted_ratio)
    assert P.warm_start(sweep, raw, targets, table, budget=0.01, k=4, seed=0) == []


def test_the_automatic_skip_margin_learns_from_the_predictors_errors():
    assert P.skip_margin(0.05, [0.5] * 10) == 0.05
    assert P.skip_margin("auto", [0.001] * 4) == 0.10  # too few measurements yet
    assert P.skip_margin("auto", [0.01, -0.03, 0.002, 0.0, 0.01]) == pytest.approx(0.045)
    assert P.skip_margin("auto", [0.001] * 5) == 0.02  # never under timing noise


def test_a_study_skips_candidates_predicted_over_budget_and_starts_from_the_front(tmp_path, monkeypatch):
    """Measured widths as the search space, a latency budget, no margin: warm-start trials come
    first; a skipped candidate is predicted over the budget, never exported or timed, told to
    the sampler as infeasible, and not counted among the trials asked for."""
    from edgetune.config.experiment import load_experiment
    from edgetune.study import run_study

    monkeypatch.setenv("EDGETUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(W, "profile_widths", coarse_widths(W.profile_widths))
    import yaml

    path = experiment(tmp_path, trials=4, epochs=0)
    raw = yaml.safe_load(path.read_text())
    raw["sweep"].update({
        "method": "tpe", "parameters": {"stage_1": {"min": 0.0, "max": 0.9}, "stage_3_width": {"widths": "measured"}},
        "constraints": [{"metric": "latency_ratio", "max": 0.75}],
        "predictor": {"skip_margin": 0.0, "warm_start": 2, "candidates": 200}})
    path.write_text(yaml.safe_dump(raw))
    spec, _ = load_experiment(path)
    # The unpruned setting first, so that at least one candidate is predicted over the budget;
    # twice, since a repeat of a skipped candidate is skipped again, not answered from figures
    # that were never measured (it failed with "objective values [None]" before the fix).
    import optuna

    (tmp_path / "run").mkdir()
    queued = optuna.create_study(storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}", study_name=spec.name)
    for _ in range(2):
        queued.enqueue_trial({"stage_1": 0.0, "stage_3_width": 64})
    import io

    from rich.console import Console

    from edgetune.report.progress import RichReporter

    shown = io.StringIO()
    outcome = run_study(spec, RichReporter(Console(file=shown, width=200)))  # what `edgetune run` prints
    trials = outcome.study.trials
    steps = outcome.study.user_attrs["measured_widths"]["stage_3_width"]
    assert 64 in steps and all(t.params["stage_3_width"] in steps for t in trials)
    # Warm starts follow the two enqueued trials: two, or one when the timed profile's predicted
    # front holds a single point (the profile is measured on this host, so its front varies).
    flags = [bool(t.user_attrs.get("warm_start")) for t in trials]
    assert flags[:3] == [False, False, True] and sum(flags) in (1, 2) and flags[3:] == sorted(flags[3:], reverse=True)
    for t in trials[:2]:
        assert t.user_attrs["skipped"].startswith("skipped: predicted latency") and t.state.name == "COMPLETE"
    skipped = [t for t in trials if t.user_attrs.get("skipped")]
    measured = [t for t in trials if not t.user_attrs.get("skipped")]
    assert len(measured) == 4 and skipped, [(t.params, t.user_attrs.get("predicted_latency_ratio")) for t in trials]
    for t in skipped:
        assert t.user_attrs["predicted_latency_ratio"] > 0.75 and "latency_ms" not in t.user_attrs
        assert not (tmp_path / "run" / "trials" / f"{t.number:04d}" / "model.onnx").exists()
        assert t.state.name == "COMPLETE" and t.user_attrs["infeasible"].startswith("predicted")
    for t in measured:
        assert "latency_ms" in t.user_attrs and "prediction_error" in t.user_attrs
    assert shown.getvalue().count("not measured") == len(skipped)
    with open(tmp_path / "run" / "trials.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert sum(1 for r in rows if r.get("skipped")) == len(skipped)
    thinning = json.loads((tmp_path / "run" / "trials" / "0000" / "metrics.json").read_text())["thinning"]
    kept = {r["before"] - r["removed"] for r in thinning if "layer3" in r["weight"]}
    assert kept == {trials[0].params["stage_3_width"]}


def test_each_precision_rounds_and_predicts_on_its_own_profile(tmp_path, monkeypatch):
    """INT8 kernels have staircases of their own: a sweep over fp32 and int8 profiles both
    (cached apart), snaps each trial's widths to its precision's staircase and predicts it."""
    from edgetune.config.experiment import load_experiment
    from edgetune.study import run_study

    monkeypatch.setenv("EDGETUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(W, "profile_widths", coarse_widths(W.profile_widths))
    import yaml

    recipe = copy.deepcopy(RECIPE)
    recipe["pruners"]["stage_3"]["round_to"] = "measured"
    path = experiment(tmp_path, trials=4, epochs=0, recipe=recipe)
    raw = yaml.safe_load(path.read_text())
    # Up to half removed: further, re-estimated candidates score near chance and their INT8 form
    # fails parity (agreement under 90 %), which is not this test's subject. Near half, it still
    # may: which widths the measured staircase keeps depends on the host's timing, and a fresh-clone
    # CI drew an untrained candidate at 84 % agreement. Parity has tests of its own
    # (tests/runtimes/test_profiler.py); here it only has to stop a broken export.
    import edgetune.runtimes.profiler

    monkeypatch.setattr(edgetune.runtimes.profiler, "INT8_MIN_AGREEMENT", 0.5)
    raw["sweep"].update({"method": "random", "parameters": {"precision": {"values": ["fp32", "int8"]},
                                                            "stage_3": {"min": 0.0, "max": 0.5}}})
    raw["recipe"]["pruners"]["stage_1"]["desired_sparsity"] = 0.3
    raw["benchmark"].update(calibration_images=32, int8_format="qdq-u8-channel")
    path.write_text(yaml.safe_dump(raw))
    outcome = run_study(load_experiment(path)[0])
    profiles = {json.loads(p.read_text())["key"]: json.loads(p.read_text())["profiles"]
                for p in (tmp_path / "cache" / "widths").glob("*.json")}
    assert len(profiles) == 2
    steps = {}
    for key, content in profiles.items():
        for p in content:
            for layer in p["layers"]:
                steps.setdefault(key, {})[layer] = W.efficient_widths(p["widths"], p["latency_ms"])
    precisions = set()
    for t in outcome.study.trials:
        assert t.state.name == "COMPLETE", t.user_attrs.get("error")
        precision = t.params["precision"]
        precisions.add(precision)
        thinning = json.loads((tmp_path / "run" / "trials" / f"{t.number:04d}" / "metrics.json").read_text())["thinning"]
        spec = outcome.plan.spec.benchmark.model_copy(update={"precision": precision})
        measuring = W.Measuring(LocalExecutor(), spec, np.zeros(1))
        key = W.cache_key(W.model_sha(_model()), measuring, "filters-l1", 1 if precision == "fp32" else 4)
        for r in thinning:
            if "layer3" in r["weight"] and not r["skipped"]:
                assert r["before"] - r["removed"] in steps[key][r["weight"].removeprefix("module.")], (precision, r)
        # The prediction is the trial's own precision's profile (saved shares, interpolated between
        # measured widths) times that precision's scale to the FP32 baseline, recomputed here from
        # the cached profile. How close it comes to the measurement is a timing on a shared host
        # (10-40 % seen for INT8 on this toy network), so that is benchmarked, not tested.
        scale = outcome.study.user_attrs["width_profile_scales"][precision]
        own = profiles[key]
        saved = 0.0
        for r in thinning:
            if r["skipped"]:
                continue
            layer = r["weight"].removeprefix("module.")
            p = next(p for p in own if layer in p["layers"])
            if r["before"] - r["removed"] < p["full"]:
                at = float(np.interp(r["before"] - r["removed"], p["widths"], p["latency_ms"]))
                saved += (p["baseline_ms"] - at) / p["baseline_ms"] / len(p["layers"])
        assert t.user_attrs["predicted_latency_ratio"] == pytest.approx(scale * (1 - saved), rel=1e-9)
        if precision == "fp32":
            assert scale == 1.0 and abs(t.user_attrs["prediction_error"]) < 0.5, t.user_attrs["prediction_error"]
        else:
            assert 0.2 < scale < 0.9, scale  # this network's INT8 against its FP32, on this CPU
    assert precisions == {"fp32", "int8"}
