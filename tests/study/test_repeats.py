"""A candidate a study has measured already is answered from it, not built again: the same
widths at the same precision and benchmark, from this producer or another; at another precision
it is another candidate."""

from __future__ import annotations

import json

import pytest
import yaml

from edgetune.config.experiment import load_experiment
from edgetune.study import run_study
from tests.helpers import experiment, read_csv


@pytest.mark.slow
def test_a_repeated_candidate_is_answered_from_the_study(tmp_path):
    """Two ratios that keep the same widths make the same network: the second trial is not
    pruned, trained and timed again but answered from the first, and the sampler told the same."""
    path = experiment(tmp_path, trials=3, epochs=1)
    raw = yaml.safe_load(path.read_text())
    # 16 filters: 0.5 and 0.51 both remove 8; 0.25 removes 4.
    raw["sweep"] = {"method": "grid", "metric": {"name": "Latency", "goal": "minimize"},
                    "parameters": {"stage_1": {"values": [0.5, 0.51, 0.25]}, "stage_3": {"value": 0.5}},
                    "early_stop": {"collapse": False}}
    path.write_text(yaml.safe_dump(raw))
    spec, _ = load_experiment(path)
    outcome = run_study(spec)
    trials = {t.params["stage_1"]: t for t in outcome.study.trials}
    first, again = trials[0.5], trials[0.51]
    if first.number > again.number:
        first, again = again, first
    assert again.user_attrs["duplicate_of"] == first.number
    assert again.values == first.values and again.user_attrs["top1"] == first.user_attrs["top1"]
    assert not (tmp_path / "run" / "trials" / f"{again.number:04d}" / "model.onnx").exists()  # nothing exported
    # The same figures in both folders; only the time each trial took is its own (the repeat's, a
    # lookup's).
    def figures(number):
        saved = json.loads((tmp_path / "run" / "trials" / f"{number:04d}" / "metrics.json").read_text())
        saved["metrics"] = {k: v for k, v in saved["metrics"].items() if not k.startswith(("seconds_", "overhead"))}
        return saved

    assert figures(again.number) == figures(first.number)
    assert again.user_attrs["seconds_trial"] < first.user_attrs["seconds_trial"] / 5
    assert "duplicate_of" not in trials[0.25].user_attrs
    assert again.number not in {t.number for t in outcome.feasible()}  # shown once, as the first
    rows = read_csv(tmp_path / "run" / "trials.csv")
    assert any(r["duplicate_of"] for r in rows)


@pytest.mark.slow
def test_the_same_widths_at_another_precision_are_another_candidate(tmp_path):
    """An INT8 candidate with an fp32 trial's widths is a different deployed network: measured
    and scored for itself, never answered from the fp32 trial."""
    path = experiment(tmp_path, trials=2, epochs=0)
    raw = yaml.safe_load(path.read_text())
    raw["sweep"] = {"method": "grid", "metric": {"name": "Latency", "goal": "minimize"},
                    "parameters": {"stage_1": {"value": 0.5}, "stage_3": {"value": 0.5},
                                   "precision": {"values": ["fp32", "int8"]}},
                    "early_stop": {"collapse": False}}
    path.write_text(yaml.safe_dump(raw))
    outcome = run_study(load_experiment(path)[0])
    trials = {t.params["precision"]: t for t in outcome.study.trials}
    assert set(trials) == {"fp32", "int8"}
    assert all("duplicate_of" not in t.user_attrs for t in trials.values())
    assert trials["int8"].user_attrs["precision"] == "int8"
    assert (tmp_path / "run" / "trials" / f"{trials['int8'].number:04d}" / "model.onnx").is_file()
    assert trials["int8"].user_attrs["latency_ratio"] != trials["fp32"].user_attrs["latency_ratio"]


@pytest.mark.slow
def test_a_repeat_of_another_producers_candidate_is_answered_from_the_study(tmp_path):
    """On a shared storage the first trial's files are in another producer's run directory: the
    repeat is answered from the figures the study holds."""
    path = experiment(tmp_path, trials=1, epochs=0)
    raw = yaml.safe_load(path.read_text())
    raw["sweep"] = {"method": "grid", "metric": {"name": "Latency", "goal": "minimize"},
                    "parameters": {"stage_1": {"values": [0.5, 0.51]}, "stage_3": {"value": 0.5}}}
    raw["storage"] = f"sqlite:///{tmp_path / 'shared.db'}"
    path.write_text(yaml.safe_dump(raw))
    spec, _ = load_experiment(path, {"run_dir": tmp_path / "p0"})
    run_study(spec)
    spec, _ = load_experiment(path, {"run_dir": tmp_path / "p1", "trials": 2})
    outcome = run_study(spec)
    first, again = sorted(outcome.study.trials, key=lambda t: t.number)
    assert again.state.name == "COMPLETE", again.user_attrs.get("error")
    assert again.user_attrs["duplicate_of"] == first.number and again.values == first.values
    assert again.user_attrs["top1"] == first.user_attrs["top1"]
    assert again.user_attrs["pruned_structures"] == first.user_attrs["pruned_structures"]
