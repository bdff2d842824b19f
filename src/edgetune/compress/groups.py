"""What filter and channel pruning share: Torch-Pruning groups, deduplicated, pruned by score."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch_pruning as tp
from torch import nn

from edgetune.compress.base import CompressionContext, CompressionMethod, CompressionRecord, count_to_remove


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


def prune_lowest(graph, full, ratio: float, scores: Callable[[], torch.Tensor],
                 record: Callable[[int, str | None], CompressionRecord],
                 rewrite: Callable[[object], Callable[[], None]] | None = None,
                 keep: Callable[[int], int] | None = None) -> CompressionRecord:
    """Remove the `ratio` lowest-scored of the structures of `full` (Torch-Pruning's group of
    every structure its root layer's handler addresses), with their group. `rewrite(group)`,
    called before pruning, returns what to do after it (new weights for reconstruction);
    `keep(width)` rounds the width left (hardware-aware widths)."""
    root = full[0]
    module, fn, n = root.dep.target.module, root.dep.handler, len(root.idxs)
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


def coupled_targets(method: CompressionMethod, model: nn.Module, ctx: CompressionContext) -> dict[str, list[str]]:
    """Targets grouped by the structure they prune: filter pruning of any convolution that
    feeds a residual stream prunes the whole stream, so those are one entry, named by the first
    target. Other methods act on each layer alone."""
    targets = method.targets(model, ctx)
    if method.unit not in ("filters", "channels"):
        return {t: [t] for t in targets}
    graph = ctx.graph(model)
    modules = dict(model.named_modules())
    fn = tp.prune_conv_out_channels if method.unit == "filters" else tp.prune_conv_in_channels
    groups: dict[frozenset, list[str]] = {}
    for t in targets:
        module = modules[t.removesuffix(".weight")]
        groups.setdefault(group_key(graph.get_pruning_group(module, fn, idxs=[0])), []).append(t)
    return {members[0]: members for members in groups.values()}
