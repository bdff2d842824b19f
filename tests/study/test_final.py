"""The final stage: the front trained again, re-scored image by image against the baseline, a
pick whose loss holds at a stated confidence, and test top-1 taken once after the pick."""

import json
import os

import numpy as np
import pytest
import yaml

from edgetune.config.experiment import load_experiment
from edgetune.errors import ConfigError
from edgetune.report.build import write_report
from edgetune.study import run_study
from edgetune.study.records.held import paired_drop
from edgetune.study.records.trial_export import export_trial
from tests.helpers import experiment, read_csv


def test_paired_bound_matches_its_formula_and_a_bootstrap():
    base = np.ones(1000, dtype=bool)
    cand = np.ones(1000, dtype=bool)
    base[:10] = False  # the candidate gains 10 images
    cand[10:40] = False  # and loses 30
    drop = paired_drop(base, cand, 0.9)
    assert (drop.lost, drop.gained, drop.n) == (30, 10, 1000)
    assert drop.drop == pytest.approx(2.0)
    assert drop.upper == pytest.approx(2.0 + 1.2815516 * 100 * np.sqrt((41 / 1000 - (20 / 1000) ** 2) / 1000))
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 1000, size=(4000, 1000))
    boot = 100 * (base[idx].mean(1) - cand[idx].mean(1))
    assert drop.upper == pytest.approx(np.quantile(boot, 0.9), abs=0.1)
    assert drop.holds(3.0) and not drop.holds(2.5)
    same = paired_drop(base, base, 0.95)  # no discordant image: a bound above zero, not zero
    assert same.drop == 0.0 and 0 < same.upper < 0.2
    more = paired_drop(np.tile(base, 4), np.tile(cand, 4), 0.9)
    assert more.drop == pytest.approx(2.0) and more.upper < drop.upper  # more images, a tighter bound
    with pytest.raises(ValueError, match="equal"):
        paired_drop(base, cand[:10], 0.9)


def test_paired_bound_on_masks_counts_images_not_pixels_and_matches_a_bootstrap():
    rng = np.random.default_rng(1)
    base = rng.random((800, 8, 8)) < 0.9  # a mask of right/wrong pixels per image
    cand = base.copy()
    cand[:300, 0, :3] = False  # 300 images lose up to three pixels each
    drop = paired_drop(base, cand, 0.9)
    diff = base.reshape(800, -1).mean(1) - cand.reshape(800, -1).mean(1)
    assert drop.n == 800 and drop.lost == int((diff > 0).sum()) and drop.gained == 0
    assert drop.drop == pytest.approx(100 * (base.mean() - cand.mean()))  # the pixel accuracy lost
    assert drop.upper == pytest.approx(100 * (diff.mean() + 1.2815516 * diff.std(ddof=1) / np.sqrt(800)))
    idx = rng.integers(0, 800, size=(4000, 800))
    assert drop.upper == pytest.approx(np.quantile(100 * diff[idx].mean(1), 0.9), abs=0.05)
    pixels_as_images = paired_drop(base.reshape(-1), cand.reshape(-1), 0.9)  # what a per-pixel count would say
    assert pixels_as_images.upper - pixels_as_images.drop < drop.upper - drop.drop
    same = paired_drop(base, base, 0.9)
    assert same.drop == 0.0 and 0 < same.upper < 0.1


FINAL = {"candidates": 2, "epochs": 1, "train_subset": 256, "confidence": 0.9}


def _final_experiment(tmp_path, sweep_extra=None, **final):
    path = experiment(tmp_path, trials=3, epochs=1, final={**FINAL, **final})
    raw = yaml.safe_load(path.read_text())
    raw["data"]["val_size"] = 1000
    raw["sweep"].update(sweep_extra or {})
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.slow
def test_front_trained_again_rescored_picked_and_tested_once(tmp_path):
    # Pruned enough to be clearly faster than the unpruned network (only such trials are
    # finalists); 256 images cannot rescue that much pruning, so the bound is a wide one.
    light = {"stage_1": {"min": 0.5, "max": 0.75}, "stage_3": {"min": 0.5, "max": 0.75}}
    path = _final_experiment(tmp_path, {"protocol": {"name": "accuracy-guaranteed", "max_accuracy_drop": 90},
                                        "parameters": light})
    outcome = run_study(load_experiment(path)[0])
    final = outcome.final
    assert final is not None and final.max_drop is not None
    pick = json.loads((tmp_path / "run" / "final" / "pick.json").read_text())
    finalists = pick["finalists"]
    assert 1 <= len(finalists) <= 2
    for n in finalists:
        r = final.records[str(n)]
        assert r["final_epochs"] == 1 and r["paired"]["n"] == 1000  # the whole validation split
        assert (tmp_path / "run" / "final" / f"{n:04d}" / "model.pt").is_file()  # trained again, kept
        assert r["held"] == (r["final_drop_upper"] <= final.max_drop)
    assert final.picked in finalists and final.records[str(final.picked)]["held"]
    # The pick is the fastest finalist that holds (the objective is latency).
    held = [n for n in finalists if final.records[str(n)]["held"]]
    ratio = {n: final.records[str(n)]["latency_ratio"] for n in held}
    assert ratio[final.picked] == min(ratio.values())
    # Test top-1: the pick and the baseline only, never the other finalists.
    assert set(final.test_top1) == {"baseline", str(final.picked)}
    rows = {r["trial"]: r for r in read_csv(tmp_path / "run" / "trials.csv")}
    assert rows[str(final.picked)]["picked"] == "True" and float(rows[str(final.picked)]["test_top1"]) > 10
    assert float(rows["baseline"]["test_top1"]) > 85  # the shipped ResNet-20, on the real test split
    others = [n for n in finalists if n != final.picked]
    assert all(rows[str(n)]["test_top1"] == "" and rows[str(n)]["final_val_top1"] != "" for n in others)

    # `export --trial best` takes the pick with its final weights and its figures.
    done = export_trial(tmp_path / "run", "best", tmp_path / "export")
    assert done.number == final.picked and done.max_abs_diff < 1e-3
    exported = json.loads((tmp_path / "export" / "final.json").read_text())
    assert exported["test_top1"] == final.test_top1[str(final.picked)] and exported["picked"] is True
    assert (tmp_path / "export" / "model.pt").read_bytes() == (
        tmp_path / "run" / "final" / f"{final.picked:04d}" / "model.pt").read_bytes()

    # The report shows the stage: its table, the pick and the test figure.
    report, _ = write_report(tmp_path / "run", tmp_path / "report", ["md", "csv"], None, False)
    md = (tmp_path / "report" / "report.md").read_text()
    assert "## Final training and pick" in md and f"Picked trial {final.picked}:" in md
    # The front's figure draws each finalist where the final training left it, with its bound.
    pareto = next(f for section in report.sections for f in section.figures if f.name == "pareto")
    drawn = {row["label"]: row["top1"] for _, row in pareto.marks.iterrows()}
    for n in finalists:
        r = final.records[str(n)]
        label = f"final: trial {n} (loses at most {r['final_drop_upper']:.2f})"
        assert drawn[label] == pytest.approx(r["final_val_top1"])
    table = read_csv(tmp_path / "report" / "tables" / "final_pick.csv")
    assert {r["trial"] for r in table} == {"baseline", *map(str, finalists)}

    # A rerun trains nothing again and does not look at the test split a second time.
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "run" / "final").rglob("result.json")}
    again = run_study(load_experiment(path)[0])
    assert again.final.picked == final.picked and again.final.test_top1 == final.test_top1
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    # Killed after a finalist's training ended but before its record was written: the rerun
    # scores the trained network, it does not train it again.
    n = finalists[0]
    work = tmp_path / "run" / "final" / f"{n:04d}"
    before = json.loads((work / "result.json").read_text())
    trained = (work / "model.pt").stat().st_mtime_ns
    (work / "result.json").unlink()
    (tmp_path / "run" / "final" / "pick.json").unlink()
    resumed = run_study(load_experiment(path)[0]).final
    assert (work / "model.pt").stat().st_mtime_ns == trained
    assert resumed.records[str(n)]["final_seconds"] == before["final_seconds"]
    assert resumed.records[str(n)]["final_val_top1"] == before["final_val_top1"]


@pytest.mark.slow
def test_nothing_feasible_is_said_plainly_and_the_study_kept(tmp_path):
    path = _final_experiment(tmp_path, {"constraints": [{"metric": "top1", "min": 101}]})
    outcome = run_study(load_experiment(path)[0])
    assert outcome.final.picked is None and "no feasible trial" in outcome.final.reason
    assert len(read_csv(tmp_path / "run" / "trials.csv")) == 4  # baseline + 3 trials, kept
    assert outcome.final.test_top1.keys() == {"baseline"}


@pytest.mark.slow
def test_a_stricter_final_drop_than_the_search_screen_can_leave_no_pick(tmp_path):
    """The search screens loosely (90 points here); the pick holds the finalists to 0 points
    lost at any confidence, which a short retraining on 256 images does not meet."""
    # Pruned enough to be clearly faster than the unpruned network: only such trials are finalists.
    light = {"stage_1": {"min": 0.5, "max": 0.75}, "stage_3": {"min": 0.5, "max": 0.75}}
    path = _final_experiment(tmp_path, {"protocol": {"name": "accuracy-guaranteed", "max_accuracy_drop": 90},
                                        "parameters": light}, max_accuracy_drop=0.0)
    final = run_study(load_experiment(path)[0]).final
    assert final.max_drop == 0.0 and final.records  # finalists were trained and scored
    assert final.picked is None and "no finalist's loss holds" in final.reason
    assert not any(r["held"] for k, r in final.records.items() if k != "baseline")
    assert final.test_top1.keys() == {"baseline"}


def test_final_section_is_validated(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump({"final": {"epochs": 1, "confidence": 1.5}}))
    with pytest.raises(ConfigError, match=r"final\.confidence.*1\.5"):
        load_experiment(path)
    path.write_text(yaml.safe_dump({"final": {"epoch": 1}}))
    with pytest.raises(ConfigError, match=r"final\.epoch"):
        load_experiment(path)
    assert os.path.exists(path)


def test_a_finalist_must_be_faster_than_the_unpruned_network():
    """MobileNetV2's search put a candidate 2.27x slower than the unpruned network on the front
    (the most accurate), and the final stage picked it: no compression to deploy."""
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    from edgetune.study.final import choose_finalists

    study = optuna.create_study()
    for ratio, top1 in ((0.73, 90.2), (2.27, 90.9), (0.90, 90.5), (1.10, 89.0)):
        study.add_trial(create_trial(value=ratio, params={"x": ratio}, distributions={"x": FloatDistribution(0, 3)},
                                     user_attrs={"latency_ratio": ratio, "latency_adj_ms": 1.8 * ratio, "top1": top1},
                                     system_attrs={"constraints": [-1.0]}))
    chosen = [f.number for f in choose_finalists(study, 2, False)]
    assert chosen == [0, 2]  # the slower ones are left out, and the front is taken among the faster
