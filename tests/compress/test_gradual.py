"""Distiller's gradual pruning (AGP): its cubic ramp to the letter, masks that stay applied
through training, and at the end a network thinned for real to `final_sparsity`."""

import copy

import pytest
import torch
import yaml

from edgetune.compress.gradual import GradualMasks, target_sparsity
from edgetune.config.recipe import parse_schedule
from edgetune.models.registry import build_model

AGP = {
    "pruners": {"agp": {"class": "L1RankedStructureParameterPruner_AGP", "group_type": "Filters",
                        "initial_sparsity": 0.05, "final_sparsity": 0.5,
                        "weights": ["module.layer1.0.conv1.weight", "module.layer1.1.conv1.weight"]}},
    "policies": [{"pruner": {"instance_name": "agp"}, "starting_epoch": 0, "ending_epoch": 10, "frequency": 2}],
}


def test_the_ramp_is_distillers_cubic_over_its_span():
    schedule = parse_schedule(AGP)
    spec, policy = schedule.pruners["agp"], schedule.policy_of("agp")
    span = ((10 - 0 - 1) // 2) * 2  # Distiller: 8
    for epoch in (0, 2, 4, 6, 8):
        assert target_sparsity(spec, policy, epoch) == pytest.approx(0.5 + (0.05 - 0.5) * (1 - epoch / span) ** 3)
    assert target_sparsity(spec, policy, 0) == pytest.approx(0.05) and target_sparsity(spec, policy, 9) == 0.5
    assert spec.desired_sparsity == 0.5  # what the end thinning (and the latency predictor) use


def test_masks_zero_the_lowest_filters_and_hold_through_training_steps():
    schedule = parse_schedule(AGP)
    model = build_model("resnet20", num_classes=10, in_channels=1)
    masks = GradualMasks(schedule)
    moved = masks.at_epoch(model, 2)
    assert moved == {"agp": pytest.approx(0.5 - 0.45 * (1 - 2 / 8) ** 3)}
    conv = model.layer1[0].conv1
    zeroed = (conv.weight.detach().abs().flatten(1).sum(1) == 0).sum().item()
    assert zeroed == int(moved["agp"] * 16)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.randn(4, 1, 28, 28)).sum().backward()
    opt.step()
    masks.apply()  # the training loop's step hook
    assert (conv.weight.detach().abs().flatten(1).sum(1) == 0).sum().item() == zeroed
    assert masks.at_epoch(model, 3) == {}  # frequency 2: the policy does not act at epoch 3


def test_a_gradual_recipe_is_rejected_without_its_final_sparsity_and_one_shot_ones_without_a_ramp():
    from edgetune.errors import ConfigError

    bad = copy.deepcopy(AGP)
    del bad["pruners"]["agp"]["final_sparsity"]
    with pytest.raises(ConfigError, match="give `final_sparsity`"):
        parse_schedule(bad)
    with pytest.raises(ConfigError, match="prunes once: give desired_sparsity"):
        parse_schedule({"pruners": {"p": {"class": "L1RankedStructureParameterPruner", "final_sparsity": 0.5,
                                          "weights": ["w"]}}})


@pytest.mark.slow
def test_a_study_ramps_masks_during_fine_tuning_and_exports_the_thinned_network(tmp_path):
    """A Distiller-style schedule (AGP + group lasso) through a whole trial."""
    from edgetune.config.experiment import load_experiment
    from edgetune.models.registry import load_checkpoint
    from edgetune.study import run_study
    from tests.helpers import experiment

    path = experiment(tmp_path, trials=1, epochs=2)
    raw = yaml.safe_load(path.read_text())
    raw["recipe"] = {"version": 1, "pruners": {"agp": {**AGP["pruners"]["agp"], "weights": [
        f"module.layer{s}.{b}.conv1.weight" for s in (1, 2) for b in range(3)]}},
        # and Distiller's group lasso on the stage it leaves alone, in the same fine-tuning
        "regularizers": {"lasso": {"class": "GroupLassoRegularizer",
                                   "reg_regims": {"module.layer3.0.conv1.weight": [0.001, "Filters"]}}},
        "policies": [{"pruner": {"instance_name": "agp"}, "starting_epoch": 0, "ending_epoch": 2, "frequency": 1},
                     {"regularizer": {"instance_name": "lasso"}, "starting_epoch": 0, "ending_epoch": 2}]}
    raw["sweep"]["parameters"] = {"agp": {"values": [0.25, 0.5]}}  # sets final_sparsity
    path.write_text(yaml.safe_dump(raw))
    outcome = run_study(load_experiment(path)[0])
    (trial,) = outcome.study.trials
    final = trial.params["agp"]
    model, _ = load_checkpoint(tmp_path / "run" / "trials" / "0000" / "model.pt")
    assert model.layer1[0].conv1.out_channels == 16 - int(final * 16)  # thinned, not merely masked
    assert model.layer2[1].conv1.out_channels == 32 - int(final * 32)
    assert trial.user_attrs["macs"] < outcome.baseline["macs"]
