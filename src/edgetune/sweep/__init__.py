"""W&B sweep files: schema, parameter mapping onto a schedule, Optuna samplers."""

from edgetune.config.sweep import SweepSpec, load_sweep, parse_sweep
from edgetune.sweep.mapping import Target, apply, check_ranges, resolve, resolve_all
from edgetune.sweep.space import fixed_values, grid_size, suggest

__all__ = [
    "SweepSpec", "Target", "apply", "check_ranges", "fixed_values", "grid_size", "load_sweep",
    "parse_sweep", "resolve", "resolve_all", "suggest",
]
