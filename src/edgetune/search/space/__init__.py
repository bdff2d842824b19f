"""The search space a sweep file describes (its schema is config.sweep): each parameter's
distribution and Optuna suggestion (parameters.py), where a value lands on the schedule or the
fine-tuning (mapping.py), and a recipe's grouped or per-layer ratios and the layer features the
RL agent observes (recipe.py). The strategies that sample it are the modules beside this one."""

from edgetune.config.sweep import SweepSpec, load_sweep, parse_sweep
from edgetune.search.space.mapping import Target, apply, check_ranges, resolve, resolve_all
from edgetune.search.space.parameters import fixed_values, grid_size, suggest

__all__ = [
    "SweepSpec", "Target", "apply", "check_ranges", "fixed_values", "grid_size", "load_sweep",
    "parse_sweep", "resolve", "resolve_all", "suggest",
]
