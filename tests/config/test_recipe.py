from pathlib import Path

import pytest
import torch
import torch_pruning as tp

from edgetune.compress.recipe import apply_pruners
from edgetune.config.recipe import load_schedule, parse_schedule
from edgetune.errors import ConfigError
from edgetune.models import build_model

REPO = Path(__file__).resolve().parents[2]
A2 = REPO / "examples/resnet56-fmnist/resnet56.schedule.yaml"


def test_seed_schedule_parses_with_policies():
    s = load_schedule(A2)
    assert s.pruners["filter_pruner_70"].desired_sparsity == 0.7
    assert s.lr_schedulers["exp_finetuning_lr"].class_ == "ExponentialLR"
    lr_policy = next(p for p in s.policies if p.lr_scheduler)
    assert lr_policy.active(10) and not lr_policy.active(9) and not lr_policy.active(300)


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_filter_thinning_shrinks_every_depth(depth):
    model = build_model(f"resnet{depth}", num_classes=10, in_channels=1)
    n = (depth - 2) // 6
    x = torch.randn(2, 1, 28, 28)
    macs0, params0 = tp.utils.count_ops_and_params(model, x)
    raw = {"version": 1, "pruners": {"p": {"class": "L1RankedStructureParameterPruner", "group_type": "Filters",
           "desired_sparsity": 0.5, "weights": [f"module.layer{s}.{b}.conv1.weight" for s in (1, 2, 3) for b in range(n)]}}}
    apply_pruners(model, parse_schedule(raw), x)
    macs1, params1 = tp.utils.count_ops_and_params(model, x)
    assert macs1 < 0.8 * macs0 and params1 < params0
    assert model.layer1[0].conv1.out_channels == 8 and model.layer1[0].conv2.in_channels == 8
    assert model(x).shape == (2, 10)


def test_channel_pruning_shrinks_inputs():
    model = build_model("resnet20", num_classes=10, in_channels=1)
    raw = {"pruners": {"c": {"class": "L2RankedStructureParameterPruner", "group_type": "Channels",
           "desired_sparsity": 0.25, "weights": ["layer1.0.conv2.weight"]}}}
    apply_pruners(model, parse_schedule(raw), torch.randn(1, 1, 28, 28))
    assert model.layer1[0].conv2.in_channels == 12


@pytest.mark.parametrize("raw, key", [
    ({"pruners": {"p": {"class": "L1RankedStructureParameterPruner", "desired_sparsity": 1.0, "weights": ["a"]}}},
     "desired_sparsity"),
    ({"pruners": {"p": {"class": "L1RankedStructureParameterPruner", "desired_sparsity": 0.5, "weights": ["a"],
                        "oops": 1}}}, "oops"),
    ({"policies": [{"pruner": {"instance_name": "ghost"}, "epochs": [0]}]}, "policies[0].pruner"),
])
def test_malformed_schedule_names_the_key(raw, key):
    with pytest.raises(ConfigError) as err:
        parse_schedule(raw, "my.yaml")
    assert "my.yaml" in str(err.value) and key in str(err.value)


def test_unknown_weight_lists_closest():
    model = build_model("resnet20", num_classes=10, in_channels=1)
    raw = {"pruners": {"p": {"class": "L1RankedStructureParameterPruner", "desired_sparsity": 0.5,
                             "weights": ["module.layer1.0.conv9.weight"]}}}
    with pytest.raises(ConfigError, match=r"layer1\.0\.conv1\.weight"):
        apply_pruners(model, parse_schedule(raw), torch.randn(1, 1, 28, 28))


def test_seed_schedule_thins_resnet56_and_onnx_shrinks(tmp_path):
    import numpy as np
    import onnxruntime as ort

    x = torch.randn(1, 1, 28, 28)
    sizes, model = [], None
    for prune in (False, True):
        model = build_model("resnet56", num_classes=10, in_channels=1).eval()
        if prune:
            apply_pruners(model, load_schedule(A2), x)
        path = tmp_path / f"m{int(prune)}.onnx"
        torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["x"])
        sizes.append(path.stat().st_size)
    assert model.layer1[0].conv1.out_channels == 5  # 16 filters, 70 % removed
    # Distiller's count, int(fraction * filters): 0.4 of 64 removes 25 (not 26), 0.2 removes 12.
    assert model.layer3[2].conv1.out_channels == 39 and model.layer3[1].conv1.out_channels == 52
    assert sizes[1] < 0.85 * sizes[0]
    sess = ort.InferenceSession(str(tmp_path / "m1.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"x": x.numpy()})[0]
    np.testing.assert_allclose(got, model(x).detach().numpy(), rtol=1e-3, atol=1e-4)


def test_dissertation_labels_schedule_matches_dataset_labels():
    a = load_schedule(A2)
    b = load_schedule(A2.with_name("resnet56-table3.2.schedule.yaml"))
    mapping = {"filter_pruner_layer_1": "filter_pruner_70", "filter_pruner_layer_2": "filter_pruner_60",
               "filter_pruner_layer_3.1": "filter_pruner_20", "filter_pruner_layer_3.2": "filter_pruner_40"}
    assert set(b.pruners) == set(mapping)
    for new, old in mapping.items():
        assert b.pruners[new] == a.pruners[old]


@pytest.mark.parametrize("cls, kwargs, lr_after_2", [
    ("ExponentialLR", {"gamma": 0.5}, 0.025),
    ("StepLR", {"step_size": 2, "gamma": 0.1}, 0.01),
    ("MultiStepLR", {"milestones": [1], "gamma": 0.1}, 0.01),
    ("CosineAnnealingLR", {"T_max": 4}, 0.05),
])
def test_lr_schedulers_build_from_the_schedule(cls, kwargs, lr_after_2):
    sched = parse_schedule({"lr_schedulers": {"s": {"class": cls, **kwargs}}}).lr_schedulers["s"]
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    built = sched.build(opt)
    for _ in range(2):
        opt.step()
        built.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(lr_after_2)


@pytest.mark.parametrize("raw, message", [
    ({"class": "ExponentialLR", "gama": 0.9}, "takes no argument 'gama'; it accepts: gamma"),
    ({"class": "StepLR"}, "step_size"),
    ({"class": "ReduceLROnPlateau"}, "class"),
])
def test_lr_scheduler_arguments_are_checked_at_load(raw, message):
    with pytest.raises(ConfigError, match=message) as err:
        parse_schedule({"lr_schedulers": {"decay": raw}}, "my.yaml")
    assert "lr_schedulers.decay" in str(err.value)


def test_pruners_act_at_their_policy_epoch():
    from edgetune.study.trial.candidate import _pruning_plan

    raw = {
        "pruners": {name: {"class": "L1RankedStructureParameterPruner", "desired_sparsity": 0.5, "weights": ["w"]}
                    for name in ("early", "late", "never_named", "beyond")},
        "policies": [{"pruner": {"instance_name": "early"}, "epochs": [0]},
                     {"pruner": {"instance_name": "late"}, "starting_epoch": 2, "ending_epoch": 5},
                     {"pruner": {"instance_name": "beyond"}, "epochs": [40]}],
    }
    schedule = parse_schedule(raw)
    # As in Distiller, a pruner no policy names does not act, and the study says so.
    assert _pruning_plan(schedule, epochs=4) == {0: ["early"], 2: ["late"], 3: ["beyond"]}
    assert "pruner never_named is in no policy, so it is not applied (as in Distiller)" in schedule.notes()
    # Without fine-tuning every pruner acts at once (the seed's experiment 1).
    assert _pruning_plan(schedule, epochs=0) == {0: ["early", "late", "beyond"]}
    # A schedule with no policies at all is a one-shot recipe: every pruner acts.
    bare = parse_schedule({"pruners": raw["pruners"]})
    assert _pruning_plan(bare, epochs=2) == {0: ["early", "late", "never_named", "beyond"]} and not bare.notes()


def test_thinning_reports_what_each_weight_lost():
    model = build_model("resnet20", num_classes=10, in_channels=1)
    raw = {"pruners": {
        "p": {"class": "L1RankedStructureParameterPruner", "desired_sparsity": 0.5,
              "weights": ["module.layer1.0.conv1.weight", "module.layer1.1.conv1.weight"]},
        # Every filter of the last stage's stream: one residual group, pruned once, not 3 times.
        "stream": {"class": "filters-l1", "desired_sparsity": 0.25,
                   "weights": [f"module.layer3.{i}.conv2.weight" for i in range(3)]}}}
    records = apply_pruners(model, parse_schedule(raw), torch.randn(1, 1, 28, 28))
    assert [(r.weight, r.before, r.removed) for r in records] == [
        ("module.layer1.0.conv1.weight", 16, 8), ("module.layer1.1.conv1.weight", 16, 8),
        ("module.layer3.0.conv2.weight", 64, 16), ("module.layer3.1.conv2.weight", 64, 0),
        ("module.layer3.2.conv2.weight", 64, 0)]
    assert records[-1].skipped == "coupled with module.layer3.0.conv2.weight, pruned with it"
    assert model.fc.in_features == 48
    # The stem reads the image: its input channels cannot go, and the error says so.
    stem = {"pruners": {"stem": {"class": "L1RankedStructureParameterPruner", "group_type": "Channels",
                                 "desired_sparsity": 0.9, "weights": ["module.conv1.weight"]}}}
    with pytest.raises(ConfigError, match="module.conv1.weight reads the network's input"):
        apply_pruners(model, parse_schedule(stem), torch.randn(1, 1, 28, 28))
