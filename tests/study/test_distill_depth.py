"""Distillation and depth pruning inside a study: both searchable, both recorded per trial;
the teacher is the one named (of the same classes), and a reference fine-tuned beside the
search learns from the unpruned network, not from itself."""

from __future__ import annotations

import copy

import pytest
import torch
import yaml

from edgetune.config.experiment import load_experiment
from edgetune.study import run_study
from tests.helpers import RECIPE, ROOT, experiment, five_class_checkpoint, read_csv


def _answers_class_3(tmp_path):
    """The shipped ResNet-20 with its classifier made to answer class 3 whatever it sees."""
    from edgetune.models import load_checkpoint, save_checkpoint

    model, meta = load_checkpoint(ROOT / "models" / "resnet20-fmnist.pt")
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.copy_(torch.nn.functional.one_hot(torch.tensor(3), 10).float() * 10)
    path = tmp_path / "class-3.pt"
    save_checkpoint(path, model, meta)
    return path


@pytest.mark.slow
def test_a_study_searches_depth_width_and_distillation(tmp_path):
    recipe = copy.deepcopy(RECIPE)
    recipe["pruners"]["depth"] = {"class": "blocks", "desired_sparsity": 0.0, "weights": ["layer1", "layer2"]}
    recipe["policies"].insert(0, {"pruner": {"instance_name": "depth"}, "epochs": [0]})
    path = experiment(tmp_path, trials=3, epochs=1, recipe=recipe)
    raw = yaml.safe_load(path.read_text())
    raw["sweep"]["parameters"] = {"depth_blocks": {"values": [0, 1]}, "stage_3": {"min": 0.3, "max": 0.6},
                                  "finetune.distill.alpha": {"values": [0.0, 0.7]}}
    raw["finetune"]["distill"] = {"temperature": 4.0}
    path.write_text(yaml.safe_dump(raw))
    spec, _ = load_experiment(path)
    run_study(spec)
    rows = read_csv(tmp_path / "run" / "trials.csv")[1:]
    assert len(rows) == 3 and all(r["state"] == "COMPLETE" for r in rows), [r.get("error") for r in rows]
    for r in rows:
        saved = yaml.safe_load((tmp_path / "run" / "trials" / f"{int(r['trial']):04d}" / "recipe.yaml").read_text())
        assert saved["finetune"]["distill"] == {"alpha": float(r["param.finetune.distill.alpha"]), "temperature": 4.0,
                                                "teacher": None}
        assert saved["schedule"]["pruners"]["depth"]["blocks"] == int(float(r["param.depth_blocks"]))
    by_depth = {int(float(r["param.depth_blocks"])): float(r["macs"]) for r in rows}
    if len(by_depth) == 2:  # fewer blocks kept, fewer MACs
        assert by_depth[0] < by_depth[1]


def test_a_teacher_of_other_classes_is_refused_naming_both_before_any_trial(tmp_path):
    from edgetune.errors import ConfigError

    path = experiment(tmp_path, trials=1, epochs=1)
    raw = yaml.safe_load(path.read_text())
    raw["finetune"]["distill"] = {"alpha": 0.5, "teacher": str(five_class_checkpoint(tmp_path))}
    path.write_text(yaml.safe_dump(raw))
    spec, _ = load_experiment(path)
    with pytest.raises(ConfigError, match=r"teacher .*five-classes.pt does not fit the student \(model resnet20: "
                                          r"10 classes, \(1, 28, 28\) images\)") as caught:
        run_study(spec)
    assert caught.value.key == "finetune.distill.teacher"
    assert not (tmp_path / "run" / "trials").exists()


@pytest.mark.slow
def test_the_named_teacher_is_the_one_the_candidates_learn_from(tmp_path):
    """A teacher that always answers class 3, distilled at alpha 1, drags the student's top-1
    towards chance; the unpruned network as teacher keeps it: so the named one was used."""
    biased = _answers_class_3(tmp_path)
    top1 = {}
    for name, teacher in (("unpruned", None), ("biased", str(biased))):
        (tmp_path / name).mkdir()
        path = experiment(tmp_path / name, trials=1, epochs=1, train_subset=2048)
        raw = yaml.safe_load(path.read_text())
        raw["sweep"]["parameters"] = {"stage_1": {"value": 0.3}, "stage_3": {"value": 0.3}}
        raw["finetune"].update(learning_rate=0.02, distill={"alpha": 1.0, "temperature": 1.0, "teacher": teacher})
        path.write_text(yaml.safe_dump(raw))
        spec, _ = load_experiment(path)
        run_study(spec)
        row = read_csv(tmp_path / name / "run" / "trials.csv")[1]
        top1[name] = float(row["top1"])
    assert top1["unpruned"] > 80 and top1["biased"] < top1["unpruned"] - 30, top1


@pytest.mark.slow
def test_a_fine_tuned_reference_learns_from_the_unpruned_network_not_from_itself(tmp_path):
    """A reference whose classifier answers class 3 whatever it sees, fine-tuned with
    distillation at alpha 1: taught by the unpruned network it recovers; taught by itself (it
    stands in the baseline's place while it is measured) it would stay at chance."""
    broken = _answers_class_3(tmp_path)
    path = experiment(tmp_path, trials=0, epochs=1, train_subset=2048)
    raw = yaml.safe_load(path.read_text())
    raw["sweep"].update(enqueue=[str(broken)], reference_finetune=True)
    raw["finetune"].update(learning_rate=0.02, distill={"alpha": 1.0, "temperature": 1.0})
    path.write_text(yaml.safe_dump(raw))
    spec, _ = load_experiment(path)
    outcome = run_study(spec)
    ref = next(t for t in outcome.study.trials if t.user_attrs.get("reference"))
    assert ref.user_attrs["top1_before_ft"] < 20, ref.user_attrs  # the broken classifier, as enqueued
    assert ref.user_attrs["top1"] > 80, ref.user_attrs  # taught by the unpruned network
