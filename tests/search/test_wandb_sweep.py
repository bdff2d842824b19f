"""W&B's sweep keys with W&B's semantics (wandb/sweeps params.py and config/schema.json): each
distribution draws what W&B's would, the keys W&B's schema rejects are refused, and the keys
about where a sweep runs are read and named as unused."""

import math

import numpy as np
import optuna
import pytest
from scipy import stats

from edgetune.config.sweep import parse_sweep
from edgetune.errors import ConfigError
from edgetune.search.space import suggest
from edgetune.search.space.parameters import applied, distribution


def _draws(param: dict, n: int = 4000) -> np.ndarray:
    sweep = parse_sweep({"method": "random", "parameters": {"x": param}})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    return np.array([suggest(study.ask(), sweep)["x"] for _ in range(n)])


def _same_distribution(draws: np.ndarray, cdf) -> None:
    """A Kolmogorov-Smirnov test against W&B's own CDF: a wrong mapping fails it by far."""
    assert stats.kstest(draws, cdf).pvalue > 0.001


def test_log_uniform_bounds_are_natural_logs_and_the_values_form_takes_values():
    x = _draws({"distribution": "log_uniform", "min": math.log(1e-4), "max": math.log(1e-1)})
    assert 1e-4 <= x.min() and x.max() <= 1e-1
    _same_distribution(np.log(x), stats.uniform(math.log(1e-4), math.log(1e3)).cdf)
    v = _draws({"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1})
    _same_distribution(np.log(v), stats.uniform(math.log(1e-4), math.log(1e3)).cdf)


def test_inverse_log_uniform_as_w_and_b_defines_it():
    # inv_log_uniform: log(1/X) ~ U(min, max)
    x = _draws({"distribution": "inv_log_uniform", "min": 1.0, "max": 4.0})
    _same_distribution(np.log(1 / x), stats.uniform(1.0, 3.0).cdf)
    # inv_log_uniform_values: log(1/X) ~ U(log(1/max), log(1/min))
    v = _draws({"distribution": "inv_log_uniform_values", "min": 0.01, "max": 0.5})
    _same_distribution(np.log(1 / v), stats.uniform(math.log(2), math.log(100) - math.log(2)).cdf)


@pytest.mark.parametrize("param, cdf", [
    ({"distribution": "normal", "mu": 2.0, "sigma": 0.5}, stats.norm(2.0, 0.5).cdf),
    ({"distribution": "normal"}, stats.norm(0, 1).cdf),  # W&B's defaults
    ({"distribution": "log_normal", "mu": -1.0, "sigma": 0.3}, stats.lognorm(s=0.3, scale=math.exp(-1.0)).cdf),
    ({"distribution": "beta", "a": 2.0, "b": 5.0}, stats.beta(2.0, 5.0).cdf),
])
def test_unbounded_priors_draw_from_their_distribution(param, cdf):
    _same_distribution(_draws(param), cdf)


def test_q_variants_round_to_multiples_of_q_and_stay_ints_when_q_is():
    x = _draws({"distribution": "q_log_uniform_values", "min": 8, "max": 512, "q": 8}, 500)
    assert all(isinstance(v, (int, np.integer)) for v in x) and set(x % 8) == {0}
    assert 8 <= x.min() and x.max() <= 512
    n = _draws({"distribution": "q_normal", "mu": 0.0, "sigma": 1.0, "q": 0.5}, 500)
    assert np.allclose(n / 0.5, np.round(n / 0.5))
    b = _draws({"distribution": "q_beta", "a": 1.0, "b": 1.0, "q": 0.1}, 500)
    assert set(np.round(b, 9)) <= {round(0.1 * k, 9) for k in range(11)}


def test_probabilities_weight_the_values():
    x = _draws({"values": ["a", "b", "c"], "probabilities": [0.7, 0.2, 0.1]})
    share = {v: float(np.mean(x == v)) for v in "abc"}
    assert share == pytest.approx({"a": 0.7, "b": 0.2, "c": 0.1}, abs=0.03)
    spec = parse_sweep({"parameters": {"x": {"values": [1, 2], "probabilities": [0.5, 0.5]}}}).parameters["x"]
    assert spec.distribution == "categorical_w_probabilities" and applied(spec, 0.999999) == 2


def test_the_trial_records_the_value_the_candidate_got_beside_the_sampled_one():
    sweep = parse_sweep({"parameters": {"x": {"distribution": "normal", "mu": 5.0, "sigma": 1.0}}})
    trial = optuna.create_study().ask()
    value = suggest(trial, sweep)["x"]
    assert trial.user_attrs["applied_params"] == {"x": value} and 0 < trial.params["x"] < 1  # the quantile


@pytest.mark.parametrize("param, message", [
    ({"min": 0.0, "max": 1.0, "q": 0.1}, "distribution 'uniform' takes min, max, not q"),
    ({"values": [1, 2], "min": 0, "max": 3}, "distribution 'categorical' takes values, not max, min"),
    ({"distribution": "normal", "min": 0, "max": 1}, "takes mu, sigma, not max, min"),
    ({"values": [1, 2], "probabilities": [0.9]}, "`probabilities` has 1 entries for 2 `values`"),
    ({"values": [1, 2], "probabilities": [0.5, 0.6]}, "add up to 1"),
    ({"distribution": "q_log_uniform_values", "min": 0, "max": 8}, "needs `min` > 0"),
    ({"distribution": "beta", "a": -1}, "greater than or equal to 0"),
])
def test_what_w_and_b_rejects_is_refused_with_the_parameter(param, message):
    with pytest.raises(ConfigError, match=message) as err:
        parse_sweep({"parameters": {"x": param}}, "sweep.yaml")
    assert "sweep.yaml" in str(err.value) and "parameters.x" in str(err.value)


def test_nested_parameters_become_dotted_names():
    sweep = parse_sweep({"parameters": {"finetune": {"parameters": {"epochs": {"values": [1, 2]},
                                                                    "distill": {"parameters": {
                                                                        "alpha": {"min": 0.1, "max": 0.9}}}}}}})
    assert set(sweep.parameters) == {"finetune.epochs", "finetune.distill.alpha"}


def test_bookkeeping_keys_are_read_and_named_as_unused():
    sweep = parse_sweep({"program": "train.py", "command": ["${env}", "python", "${program}"], "entity": "me",
                         "project": "p", "name": "n", "description": "d", "method": "random",
                         "early_terminate": {"type": "hyperband", "min_iter": 2, "strict": False},
                         "parameters": {"x": {"min": 0.0, "max": 1.0}}})
    assert sweep.unused() == ["program", "command", "name", "description", "project", "entity",
                              "early_terminate.strict (Optuna's Hyperband has no lenient mode)"]


def test_early_terminate_is_optunas_hyperband_over_epochs():
    by_min = parse_sweep({"early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 2}}).early_terminate
    assert by_min.resources(epochs=8) == (2, 8)
    by_max = parse_sweep({"early_terminate": {"type": "hyperband", "max_iter": 27, "s": 2}}).early_terminate
    assert by_max.resources(epochs=1) == (3, 27)  # 27 / 3**2
    for bad, message in (({"type": "hyperband"}, "needs `min_iter`, or `max_iter` and `s`"),
                         ({"type": "hyperband", "min_iter": 1, "eta": 2.5}, "whole eta")):
        with pytest.raises(ConfigError, match=message):
            parse_sweep({"early_terminate": bad})
    with pytest.raises(ConfigError, match="early_terminate .* and early_stop"):
        parse_sweep({"early_terminate": {"type": "hyperband", "min_iter": 1}, "early_stop": {"method": "median"}})


def test_metric_target_and_impute():
    assert parse_sweep({"metric": {"name": "top1", "goal": "maximize", "target": 93.0, "impute": "worst"}}
                       ).metric.target == 93.0
    with pytest.raises(ConfigError, match="impute: 'best' gives a failed candidate a value it did not earn"):
        parse_sweep({"metric": {"name": "top1", "impute": "best"}})


def test_every_distribution_has_a_search_space():
    from edgetune.config.sweep import DISTRIBUTIONS

    examples = {"constant": {"value": 1}, "categorical": {"values": [1, 2]},
                "categorical_w_probabilities": {"values": [1, 2], "probabilities": [0.5, 0.5]},
                "int_uniform": {"min": 1, "max": 3}}
    for name in DISTRIBUTIONS:
        raw = {"distribution": name, **examples.get(name, {"min": 1, "max": 2} if "uniform" in name else {})}
        spec = parse_sweep({"parameters": {"x": raw}}).parameters["x"]
        if name != "constant":
            assert distribution(spec) is not None


def test_a_range_is_checked_on_the_values_a_candidate_can_get_not_on_the_raw_bounds(tmp_path):
    from edgetune.config.recipe import parse_schedule
    from edgetune.search.space import check_ranges, resolve_all

    raw = {"version": 1, "pruners": {"p": {"class": "L1RankedStructureParameterPruner", "group_type": "Filters",
                                           "desired_sparsity": 0.5, "weights": ["conv1.weight"]}},
           "policies": [{"pruner": {"instance_name": "p"}, "epochs": [0]}]}
    schedule = parse_schedule(raw)
    fine = parse_sweep({"parameters": {"p": {"distribution": "log_uniform", "min": math.log(0.1), "max": math.log(0.8)}}})
    check_ranges(raw, resolve_all(fine.parameters, schedule, {}), fine)  # e^-2.3 .. e^-0.22: fine as sparsities
    wide = parse_sweep({"parameters": {"p": {"distribution": "normal", "mu": 0.5, "sigma": 0.5}}}, "s.yaml")
    with pytest.raises(ConfigError, match="parameters.p"):  # its tails leave [0, 1)
        check_ranges(raw, resolve_all(wide.parameters, schedule, {}), wide, "s.yaml")
