"""Apply a recipe's pruners to a model: each pruner's class names a compression method
(`edgetune.compress`), which really removes filters or channels (Distiller's pruning followed by
its thinning), factorises layers, or, flagged, zeroes weights.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import torch
from torch import nn

from edgetune.compress.base import Batches, CompressionContext, CompressionRecord, PrunerOptions, get_method
from edgetune.compress.blocks import removed_with_block
from edgetune.config.recipe import Schedule


def apply_pruners(
    model: nn.Module, schedule: Schedule, example_input: torch.Tensor, names: Iterable[str] | None = None,
    batches: Batches | None = None, staircases: dict[str, list[int]] | None = None,
) -> list[CompressionRecord]:
    """Compress `model` in place by the schedule's pruners (all, or those in `names`), in the
    order the schedule lists them. `batches(n)` gives n labelled training images to the methods
    that sample data (Taylor ranking, channel reconstruction)."""
    model.eval()
    ctx = CompressionContext(example_input, batches, staircases)
    wanted = set(schedule.applied_pruners()) if names is None else set(names)
    records: list[CompressionRecord] = []
    for pname, spec in schedule.pruners.items():
        if pname not in wanted:
            continue
        method = get_method(spec.method)
        # Layers of a block an earlier pruner removed went with it (depth before width).
        gone = {w: b for w in spec.weights if (b := removed_with_block(model, w)) is not None}
        records += [method.record(pname, w, 0, 0, f"removed with its block {b}") for w, b in gone.items()]
        weights = [w for w in spec.weights if w not in gone]
        if not weights:
            continue
        done = method.apply(model, pname, weights, spec.desired_sparsity, ctx, PrunerOptions.of(spec))
        for r in done:
            if r.skipped and not r.skipped.startswith(("coupled with", "removed with")):
                warnings.warn(f"{pname}: {r.weight} not compressed: {r.skipped}", stacklevel=2)
        records += done
    return records
