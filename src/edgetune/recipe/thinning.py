"""Structured pruning that physically removes filters or channels (Distiller's L1/L2-ranked
structure pruners followed by its thinning), using Torch-Pruning's dependency graph so the
BatchNorm, the next convolution's inputs and residual partners shrink with them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import nn

from edgetune.errors import ConfigError, closest
from edgetune.recipe.schedule import Schedule


def _module_for_weight(modules: dict[str, nn.Module], weight: str, pruner: str) -> nn.Module:
    name = weight.removeprefix("module.")
    owner = name.removesuffix(".weight")
    if not name.endswith(".weight") or owner not in modules or not isinstance(modules[owner], nn.Conv2d):
        convs = [f"{n}.weight" for n, m in modules.items() if isinstance(m, nn.Conv2d)]
        raise ConfigError(
            f"weight '{weight}' matches no convolution; closest: {', '.join(closest(name, convs))}",
            key=f"pruners.{pruner}.weights",
        )
    return modules[owner]


@dataclass(frozen=True)
class ThinningRecord:
    """What one pruner did to one weight: kept with the trial so a user sees what was removed."""

    pruner: str
    weight: str
    before: int
    removed: int
    skipped: str | None = None


def apply_pruners(
    model: nn.Module, schedule: Schedule, example_input: torch.Tensor, names: Iterable[str] | None = None
) -> list[ThinningRecord]:
    """Prune and thin `model` in place by the schedule's pruners (all, or those in `names`).

    Each weight is ranked on its own, as Distiller's structure pruners do, and its group
    (the BatchNorm, the consumers' inputs, residual partners) is removed with it.
    """
    model.eval()
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example_input)
    # Thinning swaps parameters inside modules but never replaces the modules themselves.
    modules = dict(model.named_modules())
    wanted = set(schedule.pruners) if names is None else set(names)
    records: list[ThinningRecord] = []
    for pname, spec in schedule.pruners.items():
        if pname not in wanted:
            continue
        norm_p = 1 if spec.class_.startswith("L1") else 2
        for weight in spec.weights:
            conv = _module_for_weight(modules, weight, pname)
            w = conv.weight.detach()
            if spec.group_type == "Filters":
                n, scores = w.shape[0], w.flatten(1).norm(p=norm_p, dim=1)
                fn = tp.prune_conv_out_channels
            else:
                n, scores = w.shape[1], w.transpose(0, 1).flatten(1).norm(p=norm_p, dim=1)
                fn = tp.prune_conv_in_channels
            # Distiller keeps at least one structure: an empty layer would cut the network.
            k = min(round(spec.desired_sparsity * n), n - 1)
            if k <= 0:
                records.append(ThinningRecord(pname, weight, n, 0))
                continue
            idxs = scores.argsort()[:k].tolist()
            group = graph.get_pruning_group(conv, fn, idxs=idxs)
            if not graph.check_pruning_group(group):
                reason = "a coupled layer would be left with no channels"
                warnings.warn(f"{pname}: {weight} not pruned: {reason}", stacklevel=2)
                records.append(ThinningRecord(pname, weight, n, 0, skipped=reason))
                continue
            group.prune()
            records.append(ThinningRecord(pname, weight, n, k))
    return records
