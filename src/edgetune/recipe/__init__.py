"""Recipes: Distiller-format compression schedules, validated and applied on current PyTorch."""

from edgetune.recipe.schedule import Schedule, load_schedule
from edgetune.recipe.thinning import apply_pruners

__all__ = ["Schedule", "apply_pruners", "load_schedule"]
