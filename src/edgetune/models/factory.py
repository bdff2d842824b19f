"""A network built by the user's own function or class (`model.factory`), not from the registry,
or handed over as an object from Python (`edgetune.tune(model=...)`)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from edgetune.entrypoints import Named, load_entry_point
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
    def of(cls, model: nn.Module | Callable[[], nn.Module], key: str = "model") -> ModelFactory:
        """A network object (copied for each build) or a function of no arguments that builds one;
        `edgetune.named(net, "resnet20")` gives it the name a study records it by."""
        given = model.name if isinstance(model, Named) else None
        target = model.target if isinstance(model, Named) else model
        if isinstance(target, nn.Module):
            kind = type(target)
            return cls(f"python:{given or f'{kind.__module__}.{kind.__qualname__}'}",
                       make=lambda: copy.deepcopy(target))
        if callable(target):
            name = given or f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"
            return cls(f"python:{name}", make=target)
        raise ConfigError(f"{key} must be a torch.nn.Module or a function returning one, not a "
                          f"{type(target).__name__}", key=key)

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

