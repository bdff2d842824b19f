"""What filter and channel pruning share: Torch-Pruning groups, deduplicated, pruned by score."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from edgetune.compress.base import CompressionRecord, count_to_remove


def group_key(group) -> frozenset:
    """Two targets whose groups hold the same layers and handlers are one structure to prune."""
    return frozenset((id(dep.target.module), getattr(dep.handler, "__name__", str(dep.handler))) for dep, _ in group)


class GroupClaims:
    """Targets whose groups hold the same layers are one structure: the first named prunes it,
    the others are recorded as pruned with it (pruning a residual stream once per convolution
    feeding it would compound the ratio)."""

    def __init__(self) -> None:
        self._first: dict[frozenset, str] = {}

    def claimed_by(self, group, weight: str) -> str | None:
        """None when `weight` is the first to claim `group`; else the weight that did."""
        key = group_key(group)
        if key in self._first:
            return self._first[key]
        self._first[key] = weight
        return None


def scope_args(scope: str) -> dict:
    """Torch-Pruning scorer settings: "layer" ranks the named layer alone (Distiller), "group"
    averages the normalised scores of every coupled layer."""
    if scope == "layer":
        return {"group_reduction": "first", "normalizer": None}
    return {"group_reduction": "mean", "normalizer": "mean"}


def is_output_layer(graph, module: nn.Module) -> bool:
    node = graph.module2node.get(module)
    return node is not None and not node.outputs


def prune_lowest(graph, module: nn.Module, fn, n: int, ratio: float, scores: Callable[[], torch.Tensor],
                 record: Callable[[int, str | None], CompressionRecord],
                 rewrite: Callable[[object], Callable[[], None]] | None = None,
                 keep: Callable[[int], int] | None = None) -> CompressionRecord:
    """Remove the `ratio` lowest-scored of the `n` structures `fn` addresses in `module`, with
    their group. `rewrite(group)`, called before pruning, returns what to do after it (new
    weights for reconstruction); `keep(width)` rounds the width left (hardware-aware widths)."""
    k = count_to_remove(ratio, n)
    if keep is not None:
        k = n - keep(n - k)
    if k <= 0:
        return record(0, None)
    idxs = torch.argsort(scores())[:k].tolist()
    group = graph.get_pruning_group(module, fn, idxs=idxs)
    if not graph.check_pruning_group(group):
        return record(0, "a coupled layer would be left with no channels")
    finish = rewrite(group) if rewrite is not None else (lambda: None)
    group.prune()
    finish()
    return record(k, None)
