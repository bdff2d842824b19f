"""Property-based: whatever document a user (or a fuzzer) writes, the experiment, schedule and
sweep schemas and the worker's request answer with edgetune's own error or a valid object,
never another exception (a traceback is a defect). Documents are built from the schemas' own
key names nested at random, with values of every JSON type."""

from pathlib import Path

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgetune.config import benchmark, experiment, recipe, sweep
from edgetune.errors import ConfigError, EdgetuneError

MODELS = [experiment.ExperimentSpec, experiment.ModelSpec, experiment.DataSpec, experiment.FinetuneSpec,
          experiment.FinalSpec, benchmark.BenchmarkSpec, sweep.SweepSpec, sweep.ParameterSpec, sweep.MetricSpec,
          sweep.HyperbandSpec, sweep.ConstraintSpec, recipe.PrunerSpec, recipe.Policy, recipe.Schedule,
          recipe.RegularizerSpec]
KEYS = sorted({name for m in MODELS for name in m.model_fields} | {"class", "instance_name", "xyz", ""})
CLASSES = ["L1RankedStructureParameterPruner", "L1RankedStructureParameterPruner_AGP", "AutomatedGradualPruner",
           "SplicingPruner", "blocks", "filters-l1", "GroupLassoRegularizer", "StepLR", "MultiStepMultiGammaLR",
           "ReduceLROnPlateau", "Filters", "Channels", "Rows"]
SCALARS = (st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=12) | st.sampled_from(CLASSES + ["fp32", "int8", "bayes", "grid", "maximize", "normal"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=6), max_leaves=30)
DOCUMENTS = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=8)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _only_our_errors(call) -> None:
    try:
        call()
    except EdgetuneError:
        pass


@SETTINGS
@given(DOCUMENTS)
def test_any_experiment_document_is_accepted_or_refused_in_our_words(raw):
    _only_our_errors(lambda: experiment.experiment_from(raw, Path("/nonexistent"), "fuzz.yaml"))


@SETTINGS
@given(st.dictionaries(st.sampled_from(["pruners", "policies", "lr_schedulers", "regularizers", "extensions",
                                        "quantizers", "version"]), VALUES, max_size=5))
def test_any_schedule_document_is_accepted_or_refused_in_our_words(raw):
    _only_our_errors(lambda: recipe.parse_schedule(raw, "fuzz.yaml"))


@SETTINGS
@given(DOCUMENTS)
def test_any_sweep_document_is_accepted_or_refused_in_our_words(raw):
    _only_our_errors(lambda: sweep.parse_sweep(raw, "fuzz.yaml"))


@SETTINGS
@given(DOCUMENTS | VALUES)
def test_any_worker_message_gets_an_answer_not_an_exception(tmp_path_factory, payload):
    from edgetune.worker.app import answer

    result = answer(payload, tmp_path_factory.mktemp("results"))
    assert result["error"] and result["metrics"] == {}


def test_the_generator_reaches_the_schemas():
    """The documents above are not all trivially refused: some valid ones come out (a fuzzer
    that only ever hits the first check tests nothing)."""
    valid = 0

    @settings(max_examples=300, deadline=None)
    @given(st.dictionaries(st.sampled_from(["method", "metric", "run_cap", "parameters"]), VALUES, max_size=3))
    def count(raw):
        nonlocal valid
        try:
            sweep.parse_sweep(raw)
            valid += 1
        except EdgetuneError:
            pass

    count()
    assert valid > 0
    with pytest.raises(pydantic.ValidationError):
        sweep.ParameterSpec.model_validate({"distribution": "normal", "min": 1})


def test_a_list_where_a_class_name_belongs_is_refused_in_our_words():
    """Found by Hypothesis: `group_type: []` crashed the Distiller scan (a list is unhashable)."""
    from edgetune.config.recipe import parse_schedule

    with pytest.raises(ConfigError, match="group_type"):
        parse_schedule({"pruners": {"p": {"group_type": [], "class": "L1RankedStructureParameterPruner",
                                          "desired_sparsity": 0.5, "weights": ["conv.weight"]}}})
