"""Every shipped example runs as a newcomer runs it: as it is and with flags added. A flag once
turned every default of the file into a setting (data.name beside data.factory) and refused
both custom examples as soon as any flag was given."""

import subprocess
import sys
from pathlib import Path

import pytest

from edgetune.config.experiment import load_experiment

ROOT = Path(__file__).parents[2]
CUSTOM = [ROOT / "examples" / "custom-model" / "experiment.yaml", ROOT / "examples" / "segmentation" / "experiment.yaml"]


@pytest.mark.parametrize("example", CUSTOM, ids=lambda p: p.parent.name)
@pytest.mark.parametrize("flags", [{"run_dir": Path("elsewhere")}, {"trials": 1}, {"finetune.epochs": 0},
                                   {"data.val_subset": 100}])
def test_a_flag_on_a_custom_example_is_accepted_and_changes_only_itself(example, flags):
    plain, _ = load_experiment(example)
    spec, _ = load_experiment(example, flags)
    assert spec.data.factory == plain.data.factory and "name" not in spec.data.model_fields_set
    assert spec.model_dump(exclude={"run_dir", "trials", "finetune", "data"}) == plain.model_dump(
        exclude={"run_dir", "trials", "finetune", "data"})


@pytest.mark.slow
@pytest.mark.parametrize("example", CUSTOM, ids=lambda p: p.parent.name)
@pytest.mark.parametrize("flags", [[], ["--run-dir", "flagged", "--trials", "1", "--epochs", "0"]],
                         ids=["as-is", "with-flags"])
def test_the_custom_examples_run_from_the_command_line(tmp_path, example, flags):
    done = subprocess.run([sys.executable, "-m", "edgetune.cli", "run", str(example), *flags], cwd=tmp_path,
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = tmp_path / ("flagged" if flags else Path("runs") / example.parent.name)
    assert (run / "trials.csv").is_file()
    report = subprocess.run([sys.executable, "-m", "edgetune.cli", "report", str(run), "--format", "md"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert report.returncode == 0, report.stdout[-3000:] + report.stderr[-3000:]
