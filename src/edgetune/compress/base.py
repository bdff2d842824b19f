"""One small interface for every compression action, and the registry that names them.

A method compresses the layers a recipe's pruner names, by one ratio: the fraction of filters,
channels, rank or weights to take away (Distiller's `desired_sparsity`; the second seed's
`1 - a`). Structured methods really shrink the network; `magnitude` only zeroes weights and
says so, because a dense runtime runs zeros at full cost.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from edgetune.catalog import COMPRESSION_METHODS, load_plugin
from edgetune.compress.widths import snap_width
from edgetune.config.recipe import PrunerSpec
from edgetune.errors import ConfigError, closest


def state_hash(model: nn.Module, h: Any = None) -> Any:
    """The network's weights and shape hashed (names and bytes of every tensor, into `h` when
    given): equal hashes, the same function, so what was computed for one holds for the other."""
    h = h if h is not None else hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h


class CompressionError(ConfigError):
    """A method was asked to compress a layer it cannot handle; says which and why."""


@dataclass(frozen=True)
class CompressionRecord:
    """What one pruner did to one layer, kept with the trial so users see what changed."""

    pruner: str
    weight: str
    before: int
    removed: int
    skipped: str | None = None
    method: str = ""
    unit: str = "filters"  # filters, channels, rank or weights


Batches = Callable[[int], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class CompressionContext:
    """What methods may need beyond the weights: an input to trace the dependency graph with,
    and labelled training images (Taylor importance, feature-map sampling)."""

    example: torch.Tensor
    batches: Batches | None = None
    # Measured staircases (edgetune.hardware.widths) by weight, for `round_to: measured`.
    staircases: dict[str, list[int]] | None = None
    _graph: object | None = field(default=None, repr=False)
    _graph_of: int | None = field(default=None, repr=False)

    def graph(self, model: nn.Module):
        """Torch-Pruning's dependency graph, rebuilt only after a method replaced modules."""
        import torch_pruning as tp

        if self._graph is None or self._graph_of != id(model):
            model.eval()
            self._graph = tp.DependencyGraph().build_dependency(model, example_inputs=self.example)
            self._graph_of = id(model)
        return self._graph

    def invalidate(self) -> None:
        self._graph = None

    def samples(self, n: int, pruner: str) -> tuple[torch.Tensor, torch.Tensor]:
        if self.batches is None:
            raise CompressionError("this method samples training images, but none were given",
                                   key=f"pruners.{pruner}")
        return self.batches(n)


@dataclass(frozen=True)
class PrunerOptions:
    """Per-pruner settings beyond the ratio (from the recipe)."""

    scope: str = "group"  # rank over the coupled group (Torch-Pruning) or the named layer (Distiller)
    n_samples: int = 256  # training images that Taylor ranking and channel reconstruction sample
    round_to: int | str | None = None  # kept widths: a multiple, or "measured" (the device's staircase)
    width: int | None = None  # keep this many per layer (at most the layer's width), whatever the ratio
    blocks: int | None = None  # depth pruning: keep this many removable blocks per named module

    @classmethod
    def of(cls, spec: PrunerSpec) -> PrunerOptions:
        """A recipe pruner's settings."""
        return cls(scope=spec.method_and_scope()[1], n_samples=spec.n_samples or 256, round_to=spec.round_to,
                   width=spec.width, blocks=spec.blocks)

    def kept_width(self, weight: str, requested: int, full: int, ctx: CompressionContext) -> int:
        """The width a layer keeps when `requested` is asked for, after rounding (compress/widths.py)."""
        if self.width is not None:
            requested = min(self.width, full)
        if self.round_to is None:
            return requested
        staircase = (ctx.staircases or {}).get(weight.removeprefix("module."))
        try:
            return snap_width(requested, full, self.round_to, staircase)
        except ValueError as exc:
            raise CompressionError(f"{weight}: {exc}", key="round_to") from None


class CompressionMethod(ABC):
    """One way to compress layers. A caller may assume: `apply` changes the network in place and
    returns records of what it removed from each layer (a layer left alone says why), the
    network still runs and exports afterwards, and a structural method really removes what it counts
    (the exported file is smaller, not zeroed). An implementation must say through `why_not` and
    `fits` which layers it cannot take, in words for the user, and declare its family and whether
    it samples images or keeps a width in its catalog row (`MethodTraits`), which a test checks
    against these attributes."""

    name: str
    unit: str = "filters"
    structural: bool = True  # False: weights are zeroed in place, shapes stay, no dense speed-up
    samples_images: bool = False  # ranks or fits on sampled training images (n_samples applies)
    layer_types: tuple[type[nn.Module], ...] = (nn.Conv2d,)

    def why_not(self, module: nn.Module) -> str | None:
        """None when this method can compress `module`; otherwise the reason, for the user."""
        if not isinstance(module, self.layer_types):
            kinds = " or ".join(t.__name__ for t in self.layer_types)
            return f"{self.name} compresses {kinds} layers, not {type(module).__name__}"
        return None

    def fits(self, model: nn.Module, module: nn.Module, ctx: CompressionContext) -> str | None:
        """Beyond the layer's type: why this layer, where it sits in the network, cannot be compressed."""
        return None

    def targets(self, model: nn.Module, ctx: CompressionContext) -> list[str]:
        """Every weight this method can compress in `model`: what a per-layer search spans when a
        recipe names none."""
        return [f"{name}.weight" for name, m in model.named_modules()
                if name and self.why_not(m) is None and self.fits(model, m, ctx) is None]

    @abstractmethod
    def apply(self, model: nn.Module, pruner: str, weights: list[str], ratio: float, ctx: CompressionContext,
              options: PrunerOptions) -> list[CompressionRecord]:
        """Compress the named layers of `model` in place by `ratio`."""

    def record(self, pruner: str, weight: str, before: int, removed: int, skipped: str | None = None
               ) -> CompressionRecord:
        return CompressionRecord(pruner, weight, before, removed, skipped, self.name, self.unit)

    def layer(self, model: nn.Module, weight: str, pruner: str) -> nn.Module:
        """The module that owns `weight` (Distiller's `module.` prefix accepted), checked."""
        modules = dict(model.named_modules())
        owner = weight.removeprefix("module.").removesuffix(".weight")
        module = modules.get(owner) if weight.endswith(".weight") else None
        if module is None:
            fits = [f"{n}.weight" for n, m in modules.items() if self.why_not(m) is None]
            raise CompressionError(f"weight '{weight}' is no layer of this model; closest layers {self.name} "
                                   f"can compress: {', '.join(closest(owner, fits))}", key=f"pruners.{pruner}.weights")
        reason = self.why_not(module)
        if reason is not None:
            raise CompressionError(f"{weight}: {reason}", key=f"pruners.{pruner}.weights")
        return module


def count_to_remove(ratio: float, n: int) -> int:
    """Distiller's count to the letter, `int(fraction_to_prune * num_filters)` (it floors: 0.4 of
    64 filters removes 25, not 26), so its schedules remove what they removed there; at least one
    structure stays, or the layer would cut the network."""
    return max(0, min(int(ratio * n), n - 1))


def get_method(name: str) -> CompressionMethod:
    return load_plugin(COMPRESSION_METHODS, name, "compression method", "class")  # type: ignore[return-value]


class Factorized(nn.Sequential):
    """A layer replaced by its low-rank factors (Tucker: 1x1 -> kxk -> 1x1; SVD: two linears).
    Its own type, so a saved structure can say where a factorisation stands."""


def replace_module(model: nn.Module, weight: str, new: nn.Module) -> None:
    """Put `new` where the layer owning `weight` was."""
    path = weight.removeprefix("module.").removesuffix(".weight")
    parent_name, _, child = path.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)
