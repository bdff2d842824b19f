"""The files a user writes: experiment, recipe (a Distiller schedule) and sweep (a W&B sweep),
one strict pydantic tree whose allowed names come from the registries (`edgetune.catalog`).

Importing it imports neither PyTorch nor Optuna: a device worker and a quick `--help` read
these schemas too.
"""

from edgetune.config.base import Strict, config_error, validate
from edgetune.config.benchmark import DEFAULT_INT8, INT8_FORMATS, QUICK_BENCHMARK, BenchmarkSpec
from edgetune.config.experiment import (
    DataSpec,
    ExperimentSpec,
    FinetuneSpec,
    ModelSpec,
    RemoteSpec,
    TrackingSpec,
    load_experiment,
    recipe_of,
    sweep_of,
)
from edgetune.config.recipe import PrunerSpec, Schedule, load_schedule, parse_schedule
from edgetune.config.sweep import ParameterSpec, SweepSpec, load_sweep, parse_sweep

__all__ = ["DEFAULT_INT8", "INT8_FORMATS", "QUICK_BENCHMARK", "BenchmarkSpec", "DataSpec", "ExperimentSpec",
           "FinetuneSpec", "ModelSpec", "ParameterSpec", "PrunerSpec", "RemoteSpec", "Schedule", "Strict",
           "SweepSpec", "TrackingSpec", "config_error", "load_experiment", "load_schedule", "load_sweep",
           "parse_schedule", "parse_sweep", "recipe_of", "sweep_of", "validate"]
