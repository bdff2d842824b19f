"""The W&B sweep file: every distribution, the parameter mapping, the seed's own sweeps."""

from pathlib import Path

import optuna
import pytest

from edgetune.config.experiment import FinetuneSpec
from edgetune.config.recipe import load_schedule
from edgetune.errors import ConfigError
from edgetune.metrics.table import resolve_metric
from edgetune.search.base import SearchContext, get_strategy
from edgetune.search.space import apply, check_ranges, load_sweep, parse_sweep, resolve_all, suggest
from edgetune.search.space.parameters import grid_size, grid_space

EXAMPLES = Path(__file__).parents[2] / "examples" / "resnet56-fmnist"
FT_FIELDS = {"finetune": list(FinetuneSpec.model_fields), "benchmark": ["precision", "threads"]}

SPACE = {
    "method": "random",
    "metric": {"name": "Top1", "goal": "maximize"},
    "parameters": {
        "c": {"value": 3},
        "cat": {"values": ["Filters", "Channels"]},
        "u": {"min": 0.1, "max": 0.9},
        "i": {"min": 35, "max": 120},
        "iu": {"distribution": "int_uniform", "min": 2, "max": 4},
        "q": {"distribution": "q_uniform", "min": 0.0, "max": 1.0, "q": 0.25},
        "lg": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
    },
}


def make_sampler(sweep, seed: int):
    """The sweep's strategy's sampler, unconstrained (as a study asks for it)."""
    directions = [o.goal for o in sweep.objective_list()]
    return get_strategy(sweep.method).sampler(SearchContext(sweep, seed, directions))


def test_every_distribution_is_inferred_and_sampled_in_range():
    sweep = parse_sweep(SPACE)
    kinds = {n: p.distribution for n, p in sweep.parameters.items()}
    assert kinds == {"c": "constant", "cat": "categorical", "u": "uniform", "i": "int_uniform",
                     "iu": "int_uniform", "q": "q_uniform", "lg": "log_uniform_values"}
    study = optuna.create_study(sampler=make_sampler(sweep, seed=0))
    seen = []
    for _ in range(30):
        trial = study.ask()
        v = suggest(trial, sweep)
        study.tell(trial, 0.0)
        seen.append(v)
        assert v["c"] == 3
        assert v["cat"] in ("Filters", "Channels")
        assert 0.1 <= v["u"] <= 0.9
        assert isinstance(v["i"], int) and 35 <= v["i"] <= 120
        assert v["iu"] in (2, 3, 4)
        assert v["q"] in (0.0, 0.25, 0.5, 0.75, 1.0)
        assert 1e-4 <= v["lg"] <= 1e-1
    # Log-uniform puts about a third of its draws below 1e-3 (a linear draw would put ~1 %).
    assert sum(v["lg"] < 1e-3 for v in seen) >= 5


def test_float_bounds_stay_float_and_int_bounds_stay_int():
    sweep = parse_sweep({"parameters": {"a": {"min": 0.0, "max": 1.0}, "b": {"min": 0, "max": 1}}})
    assert sweep.parameters["a"].distribution == "uniform"
    assert sweep.parameters["b"].distribution == "int_uniform"


def test_bayes_is_gp_for_numbers_tpe_with_categories_grid_is_grid():
    numeric = parse_sweep({"method": "bayes", "parameters": {"u": {"min": 0.0, "max": 1.0}}})
    assert isinstance(make_sampler(numeric, 0), optuna.samplers.GPSampler)
    categorical = parse_sweep({"method": "bayes", "parameters": {"c": {"values": ["a", "b"]}}})
    assert isinstance(make_sampler(categorical, 0), optuna.samplers.TPESampler)
    # A one-element `values` is a fixed setting (figure 3.11), not a categorical dimension.
    fixed = parse_sweep({"method": "bayes", "parameters": {"u": {"min": 0.0, "max": 1.0}, "f": {"values": [0.9]}}})
    assert isinstance(make_sampler(fixed, 0), optuna.samplers.GPSampler)
    grid = parse_sweep({"method": "grid", "parameters": {"c": {"values": [1, 2]}, "i": {"min": 1, "max": 3},
                                                         "q": {"distribution": "q_uniform", "min": 0, "max": 1,
                                                               "q": 0.5}}})
    assert isinstance(make_sampler(grid, 0), optuna.samplers.GridSampler)
    assert grid_space(grid)["q"] == [0.0, 0.5, 1.0]
    assert grid_size(grid) == 2 * 3 * 3


@pytest.mark.parametrize("raw, key", [
    ({"method": "hyperband"}, "method"),
    ({"parameters": {"a": {"min": 1.0}}}, "parameters.a"),
    ({"parameters": {"a": {"min": 2.0, "max": 1.0}}}, "parameters.a"),
    ({"parameters": {"a": {"distribution": "log_uniform_values", "min": 0.0, "max": 1.0}}}, "parameters.a"),
    ({"parameters": {"a": {"distribution": "normal", "min": 0.0, "max": 1.0}}}, "parameters.a"),
    ({"parameters": {"a": {"distribution": "poisson", "mu": 1.0}}}, "parameters.a.distribution"),
    ({"parameters": {"a": {"min": 0.0, "max": 1.0, "step": 0.1}}}, "parameters.a.step"),
    ({"metric": {"name": "Latency", "goal": "lowest"}}, "metric.goal"),
    ({"early_terminate": {"type": "hyperband"}}, "early_terminate"),
])
def test_malformed_sweep_names_the_key(raw, key):
    with pytest.raises(ConfigError, match=f"at '{key}'"):
        parse_sweep(raw, "s.yaml")


def test_grid_refuses_continuous_parameters():
    with pytest.raises(ConfigError, match="needs a finite set"):
        grid_space(parse_sweep({"method": "grid", "parameters": {"u": {"min": 0.0, "max": 1.0}}}))


def test_metric_names_case_insensitive_and_unknown_is_an_error():
    assert resolve_metric("Latency") == "latency_adj_ms"
    assert resolve_metric("Top1") == "top1"
    assert resolve_metric("LATENCY_P99_MS") == "latency_p99_ms"
    # The seed's "total latency" is end to end (image in, result out); FLOPs stay FLOPs.
    assert resolve_metric("Total_Latency") == resolve_metric("total_latency_ms") == "total_latency_ms"
    assert resolve_metric("flops") == "flops"
    with pytest.raises(ConfigError, match="unknown metric 'Top-1'.*top1"):
        resolve_metric("Top-1", "s.yaml")


def test_mapping_covers_every_naming_rule():
    raw = {
        "pruners": {
            "filter_pruner_layer_3": {"class": "L1RankedStructureParameterPruner", "desired_sparsity": 0.1,
                                      "weights": ["module.layer3.0.conv1.weight"]},
            "filter_pruner_layer_3.1": {"class": "L1RankedStructureParameterPruner", "desired_sparsity": 0.2,
                                        "weights": ["module.layer3.1.conv1.weight"]},
        },
        "lr_schedulers": {"exp_finetuning_lr": {"class": "ExponentialLR", "gamma": 0.95}},
    }
    from edgetune.config.recipe import parse_schedule

    schedule = parse_schedule(raw)
    values = {
        "filter_pruner_layer_3.1": 0.5,                           # a pruner's name, dots included
        "filter_pruner_layer_3_group_type": "Channels",           # <pruner>_<field>
        "pruners.filter_pruner_layer_3.desired_sparsity": 0.3,    # dotted path
        "lr_schedulers.exp_finetuning_lr.gamma": 0.5,             # dotted path into an LR scheduler
        "exp_finetuning_lr_gamma": 0.5,                           # <scheduler>_<kwarg>
        "epochs": 7, "learning_rate": 0.2, "finetune.batch_size": 64,
        "precision": "int8", "benchmark.threads": 2,                # settings outside the schedule
    }
    targets = resolve_all(values, schedule, FT_FIELDS)
    new, over = apply(raw, targets, values)
    assert new.pruners["filter_pruner_layer_3.1"].desired_sparsity == 0.5
    assert new.pruners["filter_pruner_layer_3"].desired_sparsity == 0.3
    assert new.pruners["filter_pruner_layer_3"].group_type == "Channels"
    # The compression method itself is a searchable field, validated like any other.
    method = {"filter_pruner_layer_3.1_class": "tucker"}
    chosen, _ = apply(raw, resolve_all(method, schedule, FT_FIELDS), method)
    assert chosen.pruners["filter_pruner_layer_3.1"].method_and_scope() == ("tucker", "group")
    bad = {"filter_pruner_layer_3.1_class": "tuker"}
    with pytest.raises(ConfigError, match="unknown pruner class 'tuker'; did you mean tucker"):
        apply(raw, resolve_all(bad, schedule, FT_FIELDS), bad)
    assert new.lr_schedulers["exp_finetuning_lr"].kwargs() == {"gamma": 0.5}
    assert over == {"finetune": {"epochs": 7, "learning_rate": 0.2, "batch_size": 64},
                    "benchmark": {"precision": "int8", "threads": 2}}
    assert raw["pruners"]["filter_pruner_layer_3.1"]["desired_sparsity"] == 0.2  # the base is untouched


def test_unknown_parameter_lists_accepted_names():
    schedule = load_schedule(EXAMPLES / "resnet56.schedule.yaml")
    with pytest.raises(ConfigError, match="'filter_pruner_7'.*filter_pruner_70"):
        resolve_all({"filter_pruner_7": None}, schedule, FT_FIELDS, "s.yaml")


def test_range_the_schedule_cannot_take_fails_before_any_trial():
    import yaml

    path = EXAMPLES / "resnet56-table3.2.schedule.yaml"
    raw, schedule = yaml.safe_load(path.read_text()), load_schedule(path)
    sweep = parse_sweep({"parameters": {"filter_pruner_layer_1": {"min": 0.0, "max": 1.0}}})
    targets = resolve_all(sweep.parameters, schedule, FT_FIELDS)
    with pytest.raises(ConfigError, match=r"value 1.0 is not accepted by pruners.filter_pruner_layer_1"):
        check_ranges(raw, targets, sweep, "s.yaml")


@pytest.mark.parametrize("sweep_file, schedule_file", [
    ("figure3.4.sweep.yaml", "figure3.2.schedule.yaml"),
    ("figure3.9.sweep.yaml", "resnet56-table3.2.schedule.yaml"),
    ("figure3.10.sweep.yaml", "resnet56-table3.2.schedule.yaml"),
    ("figure3.11.sweep.yaml", "resnet56-table3.2.schedule.yaml"),
])
def test_seed_sweeps_run_unchanged_against_their_schedules(sweep_file, schedule_file):
    import yaml

    sweep = load_sweep(EXAMPLES / sweep_file)
    raw = yaml.safe_load((EXAMPLES / schedule_file).read_text())
    schedule = load_schedule(EXAMPLES / schedule_file)
    targets = resolve_all(sweep.parameters, schedule, FT_FIELDS)
    check_ranges(raw, targets, sweep)
    resolve_metric(sweep.metric.name)
    study = optuna.create_study(sampler=make_sampler(sweep, 0), direction=sweep.metric.goal)
    trial = study.ask()
    new, over = apply(raw, targets, suggest(trial, sweep))
    ft = over.get("finetune", {})
    if sweep_file == "figure3.11.sweep.yaml":
        assert new.pruners["filter_pruner_layer_3.1"].desired_sparsity == 0.4657
        assert 35 <= ft["epochs"] <= 120 and 0.1 <= ft["learning_rate"] <= 0.5
    elif sweep_file == "figure3.4.sweep.yaml":
        assert new.pruners["layer_1_conv_pruner"].group_type in ("Channels", "Filters")
    else:
        assert 0.0 <= new.pruners["filter_pruner_layer_3.1"].desired_sparsity <= 0.99
