"""`edgetune run`'s flags as a property: over every shipped experiment file, any set of flags
with any values (typer's own bounds applied first, as the command line does) either is refused
with one error naming a flag that was typed, or changes exactly the settings those flags name
and nothing else. A flag once wrote every default of the file back as if set (both custom
examples were refused as soon as one was given); this holds the rule for values no one listed."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgetune.catalog import DATASET_ALIASES
from edgetune.config.experiment import FLAGS, load_experiment
from edgetune.errors import ConfigError

ROOT = Path(__file__).parents[2]
EXAMPLES = sorted(ROOT.glob("examples/*/*experiment.yaml"))

# The flags `edgetune run` maps onto settings (cli/search.py), each with its typer bound.
counts = st.integers(min_value=-5, max_value=10**7)
numbers = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -1.0, 1e-9, 0.01, 0.1])
words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12) | st.sampled_from(
    ["fashion-mnist", "cifar10", "folder", "mnist", "", "resnet20", "notaurl", "sqlite:///x.db"])
SETTINGS = {"trials": (counts, 0), "finetune.epochs": (counts, 0), "finetune.learning_rate": (numbers, None),
            "data.train_subset": (counts, 1), "data.val_subset": (counts, 1), "benchmark.threads": (counts, 1),
            "seed": (counts, None), "torch_threads": (counts, 1), "name": (words, None), "data.name": (words, None),
            "storage": (words, None), "model.name": (words, None)}


def _typed(setting: str) -> str:
    return FLAGS.get(setting, "--" + setting.split(".")[-1].replace("_", "-"))


@st.composite
def flag_sets(draw):
    chosen = draw(st.lists(st.sampled_from(sorted(SETTINGS)), min_size=1, max_size=4, unique=True))
    out = {}
    for setting in chosen:
        values, least = SETTINGS[setting]
        value = draw(values)
        if least is not None and value < least:  # typer refuses it before the experiment is read
            continue
        out[setting] = value
    return out


def _get(spec, dotted: str):
    node = spec
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flags=flag_sets())
def test_flags_are_refused_by_name_or_change_only_what_they_name(example, flags):
    plain, _ = load_experiment(example)
    try:
        spec, _ = load_experiment(example, flags)
    except ConfigError as exc:
        assert any(_typed(k) in str(exc) or k in str(exc) for k in flags), (flags, str(exc))
        return
    for setting, value in flags.items():
        got = _get(spec, setting)
        if isinstance(value, float) and not math.isfinite(value):
            pytest.fail(f"{_typed(setting)} {value} was accepted")
        wanted = DATASET_ALIASES.get(value, value) if setting == "data.name" else value  # `folder` is `image-folder`
        assert got == wanted, (setting, got, value)
    touched = {k.split(".")[0] for k in flags}
    assert spec.model_dump(exclude=touched) == plain.model_dump(exclude=touched)
    for section in touched & {"data", "finetune", "benchmark", "model"}:
        keys = {k.split(".")[1] for k in flags if k.startswith(section + ".")}
        assert _get(spec, section).model_dump(exclude=keys) == _get(plain, section).model_dump(exclude=keys)
