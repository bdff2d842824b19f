"""Architectures a user registers by name at run time (`@register_model`), beside the built-in ones
edgetune.catalog.ARCHITECTURES lists; its own module so user code and the checkpoint loader
(registry.py) both import it, not each other."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Make `fn(num_classes=, in_channels=) -> nn.Module` buildable as `name` (a checkpoint saved
    from it records the name), beside and before the built-in architectures."""
    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        MODELS[name] = fn
        return fn

    return wrap
