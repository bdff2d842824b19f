"""Model registry: architectures by name, built for the data's channels and classes."""

from edgetune.models.registry import (
    build_model,
    list_models,
    load_checkpoint,
    register_model,
    save_checkpoint,
)

__all__ = ["build_model", "list_models", "load_checkpoint", "register_model", "save_checkpoint"]
