"""Distiller's schedule format as its users wrote it: every unsupported feature named at once,
with what to use instead; the forms edgetune runs (one weight as a string, `Leader`,
LevelPruner, MultiStepMultiGammaLR, several policy epochs) read as Distiller read them."""

import pytest
import torch

from edgetune.config.recipe import parse_schedule
from edgetune.errors import ConfigError

AGP_FILE = {  # the shape of Distiller's examples/agp-pruning and network_surgery schedules
    "version": 1,
    "pruners": {
        "fc_pruner": {"class": "ActivationAPoZRankedFilterPruner_AGP", "initial_sparsity": 0.05,
                      "final_sparsity": 0.87, "weights": "module.conv3.weight"},
        "filter_pruner": {"class": "GradientRankedFilterPruner_AGP", "initial_sparsity": 0.1,
                          "final_sparsity": 0.5, "group_type": "Filters", "weights": ["module.conv1.weight"]},
        "surgeon": {"class": "SplicingPruner", "low_thresh_mult": 0.9, "hi_thresh_mult": 1.1,
                    "sensitivity_multiplier": 0.015, "sensitivities": {"module.conv2.weight": 0.6}},
    },
    "regularizers": {"Filters_groups_regularizer": {"class": "GroupLassoRegularizer",
                                                    "reg_regims": {"module.conv1.weight": [0.0002, "Filters"]}}},
    "quantizers": {"linear_quantizer": {"class": "QuantAwareTrainRangeLinearQuantizer", "bits_activations": 8}},
    "lr_schedulers": {"plateau": {"class": "ReduceLROnPlateau", "patience": 3}},
    "policies": [
        {"pruner": {"instance_name": "fc_pruner"}, "starting_epoch": 0, "ending_epoch": 30, "frequency": 2},
        {"regularizer": {"instance_name": "Filters_groups_regularizer"}, "starting_epoch": 0, "ending_epoch": 30,
         "frequency": 1},
        {"quantizer": {"instance_name": "linear_quantizer"}, "starting_epoch": 0, "ending_epoch": 200,
         "frequency": 1},
    ],
}


def test_every_unsupported_feature_is_named_at_once_with_what_to_use_instead():
    with pytest.raises(ConfigError) as err:
        parse_schedule(AGP_FILE, "agp.yaml")
    text = str(err.value)
    assert "in agp.yaml" in text and "5 Distiller feature(s)" in text
    for key, says in [
        ("quantizers.linear_quantizer.class", "QuantAwareTrainRangeLinearQuantizer is not run: Distiller's quantisers"),
        ("pruners.fc_pruner.class", ("ActivationAPoZRankedFilterPruner_AGP is not supported: edgetune runs gradual "
                                    "pruning (AGP) with L1RankedStructureParameterPruner_AGP")),
        ("pruners.filter_pruner.class", "or the one-shot GradientRankedFilterPruner"),
        ("pruners.surgeon.class", "SplicingPruner is not supported: dynamic network surgery"),
        ("lr_schedulers.plateau.class", "ReduceLROnPlateau is not supported"),
    ]:
        assert f"at '{key}': " in text and says in text, key
    with pytest.raises(ConfigError, match="group_type Rows is not supported: zeroing a matrix's rows"):
        parse_schedule({"pruners": {"fc": {"class": "L1RankedStructureParameterPruner_AGP", "group_type": "Rows",
                                           "initial_sparsity": 0.05, "final_sparsity": 0.5,
                                           "weights": ["module.fc.weight"]}}})
    with pytest.raises(ConfigError, match="ReduceLROnPlateau is not supported: it steps on a validation metric"):
        parse_schedule({"lr_schedulers": {"p": {"class": "ReduceLROnPlateau"}}})


def test_schema_errors_are_listed_together_not_one_per_run():
    raw = {"pruners": {"a": {"class": "L1RankedStructureParameterPruner", "desired_sparsity": 1.5, "weights": ["w"]},
                       "b": {"class": "L1RankedStructureParameterPruner", "desired_sparsity": 0.5, "weights": ["w"],
                             "sparsity": 0.2}}}
    with pytest.raises(ConfigError) as err:
        parse_schedule(raw, "s.yaml")
    text = str(err.value)
    assert "at 'pruners.a.desired_sparsity'" in text and "and at 'pruners.b.sparsity'" in text


def test_distiller_forms_that_run_read_as_distiller_read_them():
    schedule = parse_schedule({
        "pruners": {
            "one": {"class": "L1RankedStructureParameterPruner", "group_type": "Filters", "desired_sparsity": 0.5,
                    "group_dependency": "Leader", "weights": "module.layer1.0.conv1.weight"},
            "level": {"class": "LevelPruner", "desired_sparsity": 0.6, "weights": ["module.fc.weight"]},
        },
        "extensions": {"net_thinner": {"class": "FilterRemover", "thinning_func_str": "remove_filters",
                                       "arch": "resnet56_cifar", "dataset": "cifar10"}},
        "policies": [{"pruner": {"instance_name": "one"}, "epochs": [0, 2, 4]},
                     {"pruner": {"instance_name": "level"}, "epochs": [1]},
                     {"extension": {"instance_name": "net_thinner"}, "epochs": [0]}],
    })
    assert schedule.pruners["one"].weights == ["module.layer1.0.conv1.weight"]
    assert schedule.pruners["level"].method == "magnitude"
    assert schedule.pruner_epoch("one") == 0
    notes = " ".join(schedule.notes())
    assert "net_thinner" in notes and "thinning is implied" in notes and "prunes once, at the first" in notes


def test_multistep_multigamma_multiplies_each_gamma_in_at_its_milestone():
    schedule = parse_schedule({"lr_schedulers": {"training_lr": {
        "class": "MultiStepMultiGammaLR", "milestones": [2, 4, 6], "gammas": [0.1, 0.5, 0.2]}}})
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = schedule.lr_schedulers["training_lr"].build(opt)
    rates = []
    for _ in range(8):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates == pytest.approx([1, 1, 0.1, 0.1, 0.05, 0.05, 0.01, 0.01])
    with pytest.raises(ConfigError, match="pair up one to one"):
        parse_schedule({"lr_schedulers": {"x": {"class": "MultiStepMultiGammaLR", "milestones": [2], "gammas": []}}})
