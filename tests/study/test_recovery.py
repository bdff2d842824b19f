"""Recovery before training inside a study: every pruned candidate's norm statistics are
re-estimated before it is scored, its score as pruned is kept beside, the setting turns it off,
and a study begun before re-estimation existed goes on without it (its trials are not mixed)."""

import csv
import sqlite3
from pathlib import Path

import pytest
import torch

from edgetune.config.experiment import load_experiment
from edgetune.errors import ConfigError
from edgetune.models import load_checkpoint
from edgetune.study import run_study
from tests.helpers import ROOT, experiment

pytestmark = pytest.mark.slow


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "trials.csv") as fh:
        return list(csv.DictReader(fh))[1:]


def _bn_means(path: Path) -> torch.Tensor:
    model, _ = load_checkpoint(path)
    return next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d) and m.num_features == 16
                ).running_mean  # the stem's, which no pruner here changes in width


def test_candidates_are_scored_after_their_statistics_are_re_estimated(tmp_path):
    spec, _ = load_experiment(experiment(tmp_path, trials=2, epochs=0))
    run_study(spec)
    rows = _rows(tmp_path / "run")
    assert len(rows) == 2
    unpruned = _bn_means(ROOT / "models" / "resnet20-fmnist.pt")
    for row in rows:
        assert int(row["norms_reestimated"]) == 21  # every BatchNorm of ResNet-20, its shortcuts' included
        assert row["top1_as_pruned"] and float(row["top1_before_ft"]) == float(row["top1"])
        # What the trial saved holds the pruned network's own statistics, not the unpruned one's.
        saved = _bn_means(tmp_path / "run" / "trials" / f"{int(row['trial']):04d}" / "model.pt")
        assert not torch.allclose(saved, unpruned)


def test_re_estimation_off_scores_the_network_as_pruned(tmp_path):
    spec, _ = load_experiment(experiment(tmp_path, trials=1, epochs=0, calibrate={"batchnorm": False}))
    run_study(spec)
    row = _rows(tmp_path / "run")[0]
    assert not row.get("top1_as_pruned") and not row.get("norms_reestimated")


def test_a_study_begun_before_re_estimation_resumes_without_it(tmp_path):
    spec, _ = load_experiment(experiment(tmp_path, trials=1, epochs=0))
    run_study(spec)
    with sqlite3.connect(tmp_path / "run" / "study.db") as db:  # as the studies before it were
        db.execute("DELETE FROM study_user_attributes WHERE key = 'calibrate'")
    spec, _ = load_experiment(experiment(tmp_path, trials=2, epochs=0))
    run_study(spec)
    first, second = _rows(tmp_path / "run")
    assert first["norms_reestimated"] and not second["norms_reestimated"]


def test_re_estimation_asked_without_training_images_is_refused(tmp_path):
    # A one-image training split: nothing to estimate batch statistics from.
    spec, _ = load_experiment(experiment(tmp_path, trials=1, epochs=0, train_subset=1,
                                         calibrate={"batchnorm": True}))
    with pytest.raises(ConfigError, match="calibrate.batchnorm"):
        run_study(spec)
    assert not (tmp_path / "run").exists()


def test_reconstruction_when_asked_refits_the_layers_that_lost_inputs(tmp_path):
    spec, _ = load_experiment(experiment(tmp_path, trials=1, epochs=0, calibrate={"reconstruct": True}))
    run_study(spec)
    row = _rows(tmp_path / "run")[0]
    # RECIPE cuts the first convolution of layer1's and layer3's blocks: their second ones re-fitted.
    assert int(row["layers_refitted"]) == 6 and int(row["norms_reestimated"]) == 21


def test_a_searched_recovery_setting_leaves_the_candidate_fine_tuned(tmp_path):
    """Searching `calibrate.reconstruct` replaced the trial's workbench, which then read as a
    reference's: the candidate was measured with its fine-tuning turned off."""
    import yaml

    path = experiment(tmp_path, trials=1, epochs=1)
    raw = yaml.safe_load(path.read_text())
    raw["sweep"]["parameters"]["calibrate.reconstruct"] = {"values": [True]}
    path.write_text(yaml.safe_dump(raw))
    run_study(load_experiment(path)[0])
    row = _rows(tmp_path / "run")[0]
    assert int(row["layers_refitted"]) == 6 and float(row["finetune_seconds"]) > 0 and row["rung"] == "1"
