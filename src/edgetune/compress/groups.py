"""What filter and channel pruning share: Torch-Pruning groups, deduplicated, pruned by score."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from edgetune.compress.base import CompressionRecord, count_to_remove


def group_key(group) -> frozenset:
    """Two targets whose groups hold the same layers and handlers are one structure to prune."""
    return frozenset((id(dep.target.module), getattr(dep.handler, "__name__", str(dep.handler))) for dep, _ in group)


def is_output_layer(graph, module: nn.Module) -> bool:
    node = graph.module2node.get(module)
    return node is not None and not node.outputs


def prune_lowest(graph, module: nn.Module, fn, n: int, ratio: float, scores: Callable[[], torch.Tensor],
                 record: Callable[[int, str | None], CompressionRecord],
                 rewrite: Callable[[object], Callable[[], None]] | None = None) -> CompressionRecord:
    """Remove the `ratio` lowest-scored of the `n` structures `fn` addresses in `module`, with
    their group. `rewrite(group)`, called before pruning, returns what to do after it (new
    weights for reconstruction)."""
    k = count_to_remove(ratio, n)
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
