"""A task that is not classification: the segmentation example (dense outputs, masks as
targets, mean IoU from the user's function) pruned for latency with its mIoU constrained."""

from pathlib import Path

import pytest
import torch
import yaml

from edgetune.config.experiment import load_experiment
from edgetune.errors import ConfigError

EXAMPLE = Path(__file__).parents[2] / "examples" / "segmentation"


def _experiment(tmp_path: Path, **extra) -> Path:
    raw = yaml.safe_load((EXAMPLE / "experiment.yaml").read_text())
    raw["model"] = {"factory": f"{EXAMPLE / 'model.py'}:build", "checkpoint": str(EXAMPLE / "weights.pt")}
    raw["data"] = {"factory": f"{EXAMPLE / 'data.py'}:make", "kwargs": {"n_train": 300, "n_val": 150, "n_test": 50}}
    raw["evaluate"] = f"{EXAMPLE / 'metrics.py'}:miou"
    raw["loss"] = f"{EXAMPLE / 'loss.py'}:ce_dice"
    raw["benchmark"] = {"runs_per_round": 5, "min_rounds": 2, "max_rounds": 3, "throughput_batches": [8],
                        "throughput_seconds": 0.2, "warmup": 2}
    raw.update(trials=2, run_dir=str(tmp_path / "run"), **extra)
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.slow
def test_a_segmentation_network_is_pruned_for_latency_with_its_miou_held(tmp_path):
    from edgetune.models.factory import ModelFactory
    from edgetune.models.registry import load_checkpoint
    from edgetune.study import run_study

    outcome = run_study(load_experiment(_experiment(tmp_path))[0])
    base = outcome.baseline
    assert 50 < base["miou"] < 100 and base["top1"] > base["miou"]  # per-pixel top-1 beside it
    for t in outcome.study.trials:
        assert t.state.name == "COMPLETE" and 0 < t.user_attrs["miou"] <= 100
        assert ("miou" in t.user_attrs.get("infeasible", "")) == (t.user_attrs["miou"] < 55)
        model, _ = load_checkpoint(tmp_path / "run" / "trials" / f"{t.number:04d}" / "model.pt",
                                   factory=ModelFactory(f"{EXAMPLE / 'model.py'}:build"))
        with torch.no_grad():
            out = model.eval()(torch.zeros(1, 3, 32, 32))
        assert out.shape == (1, 3, 32, 32)  # still a class score per pixel after pruning
        if t.params["block_1"] >= 1 / 24:
            assert model[0][0].out_channels < 24


@pytest.mark.slow
def test_the_final_stage_bounds_pixel_accuracy_image_by_image_and_measures_test_once(tmp_path):
    import json

    import numpy as np

    from edgetune.study import run_study
    from edgetune.study.records.held import paired_drop

    final = {"candidates": 1, "epochs": 1, "train_subset": 100, "max_accuracy_drop": 5.0, "confidence": 0.9}
    # Pruned enough to be clearly faster than the unpruned network (only such trials are
    # finalists), with no mIoU floor, so that a finalist exists whatever one epoch recovers.
    sweep = {"method": "random", "metric": {"name": "latency_ratio", "goal": "minimize"},
             "parameters": {"block_1": {"min": 0.5, "max": 0.7}, "block_2": {"min": 0.5, "max": 0.7}}}
    outcome = run_study(load_experiment(_experiment(tmp_path, final=final, sweep=sweep))[0])
    root = tmp_path / "run" / "final"
    base = np.load(root / "baseline" / "correct.npy")
    assert base.shape == (150, 32, 32)  # every validation pixel, kept per image
    (number,) = [k for k in outcome.final.records if k != "baseline"]
    record = outcome.final.records[number]
    cand = np.load(root / f"{int(number):04d}" / "correct.npy")
    assert record["final_val_top1"] == pytest.approx(100 * cand.mean())
    again = paired_drop(base, cand, 0.9)
    assert record["paired"]["n"] == 150 and record["final_drop_upper"] == pytest.approx(again.upper)
    assert record["held"] == (again.upper <= 5.0)
    pick = json.loads((root / "pick.json").read_text())
    assert pick["picked"] == (int(number) if record["held"] else None)
    assert 50 < pick["test_top1"]["baseline"] <= 100  # 50 test images, scored after the pick


@pytest.mark.slow
def test_a_loss_that_breaks_its_contract_is_refused_with_its_name(tmp_path):
    from edgetune.study import run_study

    (tmp_path / "bad.py").write_text("import torch\ndef per_pixel(o, t):\n"
                                     "    return torch.nn.functional.cross_entropy(o, t, reduction='none')\n")
    with pytest.raises(ConfigError, match=r"loss function per_pixel returned a tensor of shape \(8, 32, 32\); it must "
                                          r"return a scalar"):
        run_study(load_experiment(_experiment(tmp_path, loss=f"{tmp_path / 'bad.py'}:per_pixel",
                                              finetune={"epochs": 1, "batch_size": 8}))[0])
