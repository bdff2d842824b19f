"""The recipe tried on the network at the sweep's bounds before any trial: a weight the network
does not have fails the study at once with the pruner's key (it used to fail inside every trial
and end with exit 0 and nothing feasible), and `--dry-run` prints the search and what each bound
removes without measuring or writing anything."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edgetune.config.experiment import load_experiment
from edgetune.errors import ConfigError
from edgetune.study import run_study
from tests.helpers import RECIPE, experiment

ROOT = Path(__file__).parents[2]


def _with_recipe(tmp_path, recipe):
    path = experiment(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["recipe"] = recipe
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_weight_the_network_lacks_stops_the_study_before_any_trial(tmp_path):
    recipe = copy.deepcopy(RECIPE)
    recipe["pruners"]["stage_3"]["weights"][1] = "module.layer3.9.conv1.weight"  # ResNet-20 has 3 blocks a stage
    with pytest.raises(ConfigError, match=r"at 'pruners.stage_3.weights'.*'module.layer3.9.conv1.weight' is no "
                                          r"layer of this model; closest layers"):
        run_study(load_experiment(_with_recipe(tmp_path, recipe))[0])
    assert not (tmp_path / "run").exists()  # nothing written: the corrected command starts clean


def test_dry_run_prints_the_search_and_both_bounds_and_writes_nothing(tmp_path):
    path = experiment(tmp_path)
    done = subprocess.run([sys.executable, "-m", "edgetune.cli", "run", str(path), "--dry-run"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "random search, 3 trial(s), space continuous" in out
    assert "pruners.stage_1.desired_sparsity" in out and "0.3 .. 0.9" in out
    # 16 filters at 0.3 and 0.9: Distiller's int(): 4 and 14 removed.
    row = next(line for line in out.splitlines() if "module.layer1.0.conv1.weight" in line)
    assert "-4 filters" in row and "-14 filters" in row
    assert "MMACs" in out and "nothing was written" in out
    assert not (tmp_path / "run").exists()


def _bad_reference(tmp_path):
    (tmp_path / "broken.pt").write_text("not a checkpoint")
    return {"sweep": {"enqueue": ["broken.pt"]}}


def _metric_missing(tmp_path):
    (tmp_path / "m.py").write_text("def score(o, t):\n    return {'agreement': 1.0}\n")
    return {"evaluate": "m.py:score", "sweep": {"constraints": [{"metric": "miou", "min": 1}]}}


# Inputs the dry run once passed and the run then refused or crashed on: each is now refused by
# both, before anything is written, for the same reason.
REFUSED_BY_BOTH = {
    "a precision no runtime has": ({"sweep": {"parameters": {"precision": {"values": ["fp32", "int4"]}}}},
                                   "value 'int4' is not accepted by benchmark.precision"),
    "negative epochs": ({"sweep": {"parameters": {"epochs": {"values": [-1, 0]}}}},
                        "value -1 is not accepted by finetune.epochs"),
    "a negative learning rate": ({"sweep": {"parameters": {"learning_rate": {"min": -1.0, "max": 0.1}}}},
                                 "value -1.0 is not accepted by finetune.learning_rate"),
    "no images to re-estimate on": ({"sweep": {"parameters": {"calibrate.batchnorm_images": {"values": [0, 8]}}}},
                                    "value 0 is not accepted by calibrate.batchnorm_images"),
    "a data root that does not hold the data": ({"data": {"root": "nowhere"}}, "not found. Looked in:\n  .*nowhere"),
    "a validation subset larger than the split": ({"data": {"val_subset": 10**9}},
                                                  "data.val_subset is 1000000000, and the data has 5000 val images"),
    "an unreadable reference": (_bad_reference, "reference .*broken.pt does not fit the student"),
    "a metric the evaluate function does not return": (_metric_missing,
                                                        "names metric 'miou', which neither edgetune nor the evaluate"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", REFUSED_BY_BOTH)
def test_what_the_dry_run_passes_the_run_does_not_refuse_later(tmp_path, case):
    from edgetune.errors import EdgetuneError
    from edgetune.study.runner import dry_run

    change, says = REFUSED_BY_BOTH[case]
    path = experiment(tmp_path, trials=1, epochs=1)
    raw = yaml.safe_load(path.read_text())
    for section, update in (change(tmp_path) if callable(change) else change).items():
        if isinstance(update, dict) and isinstance(raw.get(section), dict):
            for key, value in update.items():
                raw[section][key] = {**raw[section][key], **value} if isinstance(value, dict) and isinstance(
                    raw[section].get(key), dict) else value
        else:
            raw[section] = update
    path.write_text(yaml.safe_dump(raw))
    for stage in (dry_run, run_study):
        with pytest.raises(EdgetuneError, match=says):
            stage(load_experiment(path)[0])
        assert not (tmp_path / "run").exists()
