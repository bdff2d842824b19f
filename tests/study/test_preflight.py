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
from tests.study.test_study import RECIPE, experiment

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
