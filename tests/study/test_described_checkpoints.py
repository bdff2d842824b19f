"""A bare state dict named in an experiment, as a reference (`enqueue`) or a teacher, told what
it is (`{checkpoint, model}`, or `{checkpoint, factory}`); untold, refused naming those keys."""

import pytest
import torch
import yaml

from edgetune.config.experiment import load_experiment
from edgetune.errors import ConfigError
from edgetune.models import load_checkpoint
from edgetune.study import plan_study, run_study
from tests.helpers import ROOT, experiment, read_csv

pytestmark = pytest.mark.slow


def _bare(tmp_path):
    model, _ = load_checkpoint(ROOT / "models" / "resnet20-fmnist.pt")
    torch.save(model.state_dict(), tmp_path / "bare.pt")
    return tmp_path / "bare.pt"


def test_a_bare_reference_and_teacher_told_what_they_are_are_measured_and_teach(tmp_path):
    _bare(tmp_path)
    path = experiment(tmp_path, trials=1, epochs=1)
    raw = yaml.safe_load(path.read_text())
    raw["sweep"]["enqueue"] = [{"checkpoint": "bare.pt", "model": "resnet20"}]  # relative to the experiment file
    raw["finetune"]["distill"] = {"alpha": 0.5, "teacher": {"checkpoint": "bare.pt", "model": "resnet20",
                                                            "num_classes": 10, "in_channels": 1}}
    path.write_text(yaml.safe_dump(raw))
    outcome = run_study(load_experiment(path)[0])
    reference = next(t for t in outcome.study.trials if t.user_attrs.get("reference"))
    assert reference.user_attrs["reference"] == str(tmp_path / "bare.pt")
    assert reference.state.name == "COMPLETE" and reference.user_attrs["top1"] > 85
    rows = read_csv(tmp_path / "run" / "trials.csv")
    assert all(r["state"] == "COMPLETE" for r in rows[1:])


@pytest.mark.parametrize("where", ["enqueue", "teacher"])
def test_a_bare_checkpoint_not_told_what_it_is_is_refused_naming_the_keys(tmp_path, where):
    _bare(tmp_path)
    path = experiment(tmp_path, trials=1, epochs=1)
    raw = yaml.safe_load(path.read_text())
    if where == "enqueue":
        raw["sweep"]["enqueue"] = ["bare.pt"]
    else:
        raw["finetune"]["distill"] = {"teacher": "bare.pt"}
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"does not record model.*beside checkpoint: in an experiment model:"):
        run_study(load_experiment(path)[0])
    assert not (tmp_path / "run").exists()
    raw["sweep"]["enqueue"] = [{"checkpoint": "bare.pt", "model": "resnet20", "factory": "m.py:build"}]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="give model .* or factory .*, not both"):
        plan_study(load_experiment(path)[0])
