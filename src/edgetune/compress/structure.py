"""What a compressed network looks like, as plain data, so a checkpoint can rebuild it.

Pruning changes layer widths and factorisation replaces layers; the registry builds only the
original architecture. A checkpoint therefore records every convolution, linear, BatchNorm and
factorised layer with its constructor arguments, and loading rebuilds those on top of the
original before the weights go in. It stays weights-only: no pickled code, just numbers.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from edgetune.compress.base import Factorized
from edgetune.errors import EdgetuneError


def _spec(module: nn.Module) -> dict[str, Any] | None:
    if isinstance(module, nn.Identity):  # a residual block removed by depth pruning
        return {"type": "Identity"}
    if isinstance(module, Factorized):
        return {"type": "Factorized"}
    if isinstance(module, nn.Conv2d):
        return {"type": "Conv2d", "in_channels": module.in_channels, "out_channels": module.out_channels,
                "kernel_size": list(module.kernel_size), "stride": list(module.stride),
                "padding": list(module.padding), "dilation": list(module.dilation), "groups": module.groups,
                "bias": module.bias is not None}
    if isinstance(module, nn.Linear):
        return {"type": "Linear", "in_features": module.in_features, "out_features": module.out_features,
                "bias": module.bias is not None}
    if isinstance(module, nn.BatchNorm2d):
        return {"type": "BatchNorm2d", "num_features": module.num_features, "eps": module.eps,
                "momentum": module.momentum, "affine": module.affine}
    return None


def describe_structure(model: nn.Module) -> list[list[Any]]:
    """[name, spec] for every layer whose shape compression can change, parents first."""
    return [[name, spec] for name, module in model.named_modules() if name and (spec := _spec(module)) is not None]


def _build(spec: dict[str, Any]) -> nn.Module:
    args = {k: v for k, v in spec.items() if k != "type"}
    kind = spec["type"]
    if kind == "Factorized":
        return Factorized()
    if kind == "Identity":
        return nn.Identity()
    if kind == "Conv2d":
        return nn.Conv2d(**{k: tuple(v) if isinstance(v, list) else v for k, v in args.items()})
    if kind == "Linear":
        return nn.Linear(**args)
    if kind == "BatchNorm2d":
        return nn.BatchNorm2d(**args)
    raise EdgetuneError(f"checkpoint structure names an unknown layer type '{kind}'")


def rebuild_structure(model: nn.Module, structure: list[list[Any]]) -> nn.Module:
    """Reshape a freshly built architecture to the recorded compressed one (weights come after)."""
    current = dict(model.named_modules())
    for name, spec in structure:
        existing = current.get(name)
        if existing is not None and _spec(existing) == spec:
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        if isinstance(parent, Factorized) and child.isdigit():
            parent.add_module(child, _build(spec))
        else:
            setattr(parent, child, _build(spec))
        current = dict(model.named_modules())
    return model
