"""Unstructured magnitude pruning (torch.nn.utils.prune): the smallest weights of each layer are
set to zero. Accepted for completeness and flagged in every result: the shapes stay, so a dense
runtime does the same work and the model is no faster (the first seed lost weeks to this)."""

from __future__ import annotations

from torch import nn
from torch.nn.utils import prune

from edgetune.compress.base import CompressionContext, CompressionMethod, CompressionRecord, PrunerOptions


class Magnitude(CompressionMethod):
    name = "magnitude"
    unit = "weights"
    structural = False
    layer_types = (nn.Conv2d, nn.Linear)

    def apply(self, model: nn.Module, pruner: str, weights: list[str], ratio: float, ctx: CompressionContext,
              options: PrunerOptions) -> list[CompressionRecord]:
        records = []
        for weight in weights:
            layer = self.layer(model, weight, pruner)
            n = layer.weight.numel()
            before_zero = int((layer.weight == 0).sum())
            prune.l1_unstructured(layer, "weight", amount=ratio)
            prune.remove(layer, "weight")  # bake the mask in: a plain tensor with zeros
            records.append(CompressionRecord(pruner, weight, n, int((layer.weight == 0).sum()) - before_zero, None,
                                             self.name, self.unit))
        return records
