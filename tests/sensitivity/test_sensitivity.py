"""Sensitivity analysis on ResNet-20 (three layers, three ratios): the trends that must hold,
the files, resuming after a kill, and a suggested recipe that `edgetune run` takes."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

# Runs studies or trains networks: the `slow` tier (`pytest -m 'not slow'` leaves it out).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
CHECKPOINT = ROOT / "models" / "resnet20-fmnist.pt"
ARGS = ["--checkpoint", str(CHECKPOINT), "--method", "l1-filter", "--range", "0:0.8:0.4", "--val-subset", "300",
        "--layers", "layer1.0.conv1", "--layers", "layer2.*.conv1", "--layers", "layer3.0.conv2",
        # 256 images re-estimate the norm statistics well enough for the trends checked (1,024 by
        # default: most of each point's time here)
        "--batchnorm-images", "256"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgetune.cli", *args], check=False, capture_output=True, text=True,
                          timeout=600)


def _analyse(folder: Path) -> None:
    done = _cli("sensitivity", *ARGS, "--out", str(folder / "resnet20"))
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture
def analysis(built_once):
    """One analysis per test session; each test gets its own copy (one deletes points of it)."""
    return built_once("sensitivity", _analyse) / "resnet20"


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "sensitivity.csv") as fh:
        return list(csv.DictReader(fh))


def test_trends_files_and_coupled_groups(analysis):
    rows = _rows(analysis)
    layers = sorted({r["layer"] for r in rows})
    # layer3.0.conv2 feeds the third stage's residual stream: pruned as one coupled group.
    assert layers == ["layer1.0.conv1", "layer2.0.conv1", "layer2.1.conv1", "layer2.2.conv1", "layer3.0.conv2"]
    base = json.loads((analysis / "baseline" / "metrics.json").read_text())
    for layer in layers:
        curve = sorted((r for r in rows if r["layer"] == layer), key=lambda r: float(r["ratio"]))
        assert [float(r["ratio"]) for r in curve] == [0.0, 0.4, 0.8]
        macs = [float(r["macs"]) for r in curve]
        assert macs[0] == base["macs"] and macs[0] > macs[1] > macs[2]  # MACs fall with the ratio
        removed = [int(r["removed"]) for r in curve]
        assert removed[0] == 0 and removed[0] < removed[1] < removed[2]
        assert float(curve[0]["top1"]) == pytest.approx(base["top1"])  # ratio 0 is the baseline network
        assert all(float(r["latency_ms"]) > 0 and 0.3 < float(r["latency_ratio"]) < 2 for r in curve)
    coupled = {r["layer"]: int(r["members"]) for r in rows}
    # The stream: the three blocks' conv2 and the stage's downsampling shortcut convolution.
    assert coupled["layer3.0.conv2"] == 4 and coupled["layer1.0.conv1"] == 1
    figures = {p.name for p in (analysis / "figures").glob("*.png")}
    assert {"overview-top1_drop.png", "overview-latency_ratio.png"} <= figures
    assert {f"layer-{layer}.png" for layer in layers} <= figures
    with open(analysis / "payoff.csv") as fh:
        assert {r["layer"] for r in csv.DictReader(fh)} == set(layers)


def test_a_rerun_measures_only_what_is_missing(analysis):
    points = sorted((analysis / "points").glob("*.json"))
    lost, stale = points[0], points[1]
    lost.unlink()  # never finished
    stale.unlink()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    stale.with_suffix(".lock").write_text(dead.stdout.strip())  # a killed process's lock file, its flock gone
    kept = {p: p.stat().st_mtime_ns for p in points[2:]}
    done = _cli("sensitivity", *ARGS, "--out", str(analysis))
    assert done.returncode == 0, done.stderr[-3000:]
    assert lost.is_file() and stale.is_file() and not stale.with_suffix(".lock").exists()
    assert {p: p.stat().st_mtime_ns for p in points[2:]} == kept  # nothing measured twice
    other = _cli("sensitivity", *ARGS[:4], "--range", "0.1,0.2", *ARGS[6:], "--out", str(analysis))
    assert other.returncode == 2 and "holds a sensitivity analysis of other settings" in other.stderr


def test_the_suggested_recipe_runs(analysis, tmp_path):
    done = _cli("recipe", "suggest", str(analysis), "--groups", "2", "--max-accuracy-drop", "100")
    assert done.returncode == 0, done.stderr[-3000:]
    schedule = tmp_path / "suggested.schedule.yaml"
    schedule.write_text(done.stdout)
    sweep = analysis / "suggested.sweep.yaml"
    assert "sensitivity_group_1" in done.stdout and "sensitivity_group_2" in sweep.read_text()
    run = _cli("run", "--schedule", str(schedule), "--sweep", str(sweep), "--checkpoint", str(CHECKPOINT),
               "--data", "fashion-mnist", "--trials", "1", "--epochs", "0", "--val-subset", "200",
               "--run-dir", str(tmp_path / "run"))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    with open(tmp_path / "run" / "trials.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["state"] for r in rows] == ["BASELINE", "COMPLETE"]
    assert float(rows[1]["macs"]) < float(rows[0]["macs"])
    strict = _cli("recipe", "suggest", str(analysis), "--max-accuracy-drop", "0")
    assert strict.returncode in (0, 2) and "Traceback" not in strict.stderr


def test_two_processes_share_one_analysis(tmp_path):
    """Started together on one --out, two processes split the points: each point measured once."""
    out = tmp_path / "shared"
    args = [sys.executable, "-m", "edgetune.cli", "sensitivity", *ARGS[:4], "--range", "0.2,0.5", "--val-subset",
            "200", "--layers", "layer1.*.conv1", "--batchnorm-images", "256", "--out", str(out)]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    second = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    outs = [p.communicate(timeout=600)[0] for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outs
    lines = (out / "measured.log").read_text().split("\n")[:-1]
    points = [tuple(line.split()[1:]) for line in lines]
    assert len(points) == len(set(points)) == 3 * 2  # three layers, two ratios, none twice
    assert len(_rows(out)) == 6
