"""A network built by the user's own function or class (`model.factory`), not from the registry,
or handed over as an object from Python (`edgetune.tune(model=...)`)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from edgetune.entrypoints import load_entry_point
from edgetune.errors import ConfigError


@dataclass(frozen=True)
class ModelFactory:
    """`ref` names a callable returning an `nn.Module`; `kwargs` are passed to it. Checkpoints of
    its compressed copies record both, and are rebuilt by calling it again. From Python, `make`
    is the callable itself and `ref` only its name."""

    ref: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    make: Callable[..., Any] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, model: nn.Module | Callable[[], nn.Module]) -> ModelFactory:
        """A network object (copied for each build) or a function of no arguments that builds one."""
        if isinstance(model, nn.Module):
            kind = type(model)
            return cls(f"python:{kind.__module__}.{kind.__qualname__}", make=lambda: copy.deepcopy(model))
        if callable(model):
            return cls(f"python:{getattr(model, '__module__', '?')}.{getattr(model, '__qualname__', repr(model))}",
                       make=model)
        raise ConfigError(f"model must be a torch.nn.Module or a function returning one, not a "
                          f"{type(model).__name__}", key="model")

    def build(self) -> nn.Module:
        make = self.make or load_entry_point(self.ref, "model.factory")
        try:
            model = make(**self.kwargs)
        except TypeError as exc:
            raise ConfigError(f"model.factory {self.ref!r} could not be called with model.kwargs "
                              f"{self.kwargs}: {exc}", key="model.kwargs") from None
        if not isinstance(model, nn.Module):
            raise ConfigError(f"model.factory {self.ref!r} returned a {type(model).__name__}; it must return a "
                              "torch.nn.Module", key="model.factory")
        return model

    def describe(self) -> dict[str, Any]:
        return {"factory": self.ref, "kwargs": dict(self.kwargs)}

