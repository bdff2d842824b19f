"""INT8 format choice: the rule, and a study that measures the formats once on its target,
quantises every candidate in the winner, records it, and reads the choice from the cache later."""

from __future__ import annotations

import csv

import pytest
import yaml

from edgetune.config.benchmark import INT8_FORMATS
from edgetune.hardware.formats import FormatResult, pick
from edgetune.runtimes.quantize import format_args
from tests.helpers import experiment

# Runs studies or trains networks: the `slow` tier (`pytest -m 'not slow'` leaves it out).
pytestmark = pytest.mark.slow


def test_the_fastest_format_within_the_tolerance_wins_else_the_most_accurate():
    results = [FormatResult("qdq-u8-channel", 1.0, 0.40, 90.0), FormatResult("qdq-s8-channel", 1.0, 0.30, 88.5),
               FormatResult("qop-u8-channel", 1.0, 0.35, 89.6)]
    assert pick(results, 90.5, 1.0)[0] == "qop-u8-channel"  # 0.30x is faster but loses 2 points
    assert pick(results, 90.5, 2.0)[0] == "qdq-s8-channel"
    chosen, reason = pick(results, 95.0, 1.0)
    assert chosen == "qdq-u8-channel" and "no format within 1 points" in reason
    tied = [FormatResult("qdq-u8-channel", 1.0, 0.505, 90.0), FormatResult("qdq-u8-tensor", 1.0, 0.499, 90.0)]
    assert pick(tied, 90.0, 1.0)[0] == "qdq-u8-channel"  # 1 % apart is timing noise


def test_a_study_measures_int8_formats_once_and_uses_the_winner(tmp_path, monkeypatch):
    from edgetune.config.experiment import load_experiment
    from edgetune.study import run_study

    monkeypatch.setenv("EDGETUNE_CACHE", str(tmp_path / "cache"))
    path = experiment(tmp_path, trials=1, epochs=0)
    raw = yaml.safe_load(path.read_text())
    raw["benchmark"].update(precision="int8", calibration_images=64, int8_tolerance=5.0)
    # Candidates that still rank classes (re-estimated, a 90 %-pruned one scores near chance and
    # its INT8 form disagrees with fp32 on over 10 % of images: a parity failure, not this test's).
    raw["sweep"]["parameters"] = {k: {"min": 0.3, "max": 0.5} for k in raw["sweep"]["parameters"]}
    path.write_text(yaml.safe_dump(raw))
    outcome = run_study(load_experiment(path)[0])
    with open(tmp_path / "run" / "int8-formats.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["format"] for r in rows] == list(INT8_FORMATS)
    results = [FormatResult(r["format"], float(r["latency_ms"]), float(r["x_fp32"]), float(r["top1"])) for r in rows]
    expected, _ = pick(results, float(rows[0]["fp32_top1"]), 5.0)
    assert [r["format"] for r in rows if r["chosen"] == "True"] == [expected]
    (trial,) = outcome.study.trials
    assert trial.user_attrs["int8_format"] == expected and "deployed_top1" in trial.user_attrs
    graph, act, per_channel = format_args(expected)
    name = "model.int8.onnx" if expected == "qdq-u8-channel" else f"model.int8-{graph}-{act}-{per_channel}.onnx"
    assert [p.name for p in (tmp_path / "run" / "trials" / "0000").glob("*.int8*.onnx")] == [name]
    # Another study of the same network on the same target reads the choice from the cache.
    raw["run_dir"] = str(tmp_path / "again")
    path.write_text(yaml.safe_dump(raw))
    again = run_study(load_experiment(path)[0])
    assert again.study.trials[0].user_attrs["int8_format"] == expected
    assert [p.name for p in (tmp_path / "again" / "int8-formats").iterdir()] == ["baseline.onnx"]
