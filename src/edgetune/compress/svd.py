"""Truncated SVD of fully connected layers: W (out x in) ~ U_r S_r V_r^T becomes two linears,
in -> r (S^1/2 V^T) and r -> out (U S^1/2, with the bias); r keeps the fraction 1 - ratio of the
smaller dimension."""

from __future__ import annotations

import math

import torch
from torch import nn

from edgetune.compress.base import (
    CompressionContext,
    CompressionMethod,
    CompressionRecord,
    Factorized,
    PrunerOptions,
    replace_module,
)


class TruncatedSvd(CompressionMethod):
    name = "svd"
    unit = "rank"
    layer_types = (nn.Linear,)

    def why_not(self, module: nn.Module) -> str | None:
        if isinstance(module, nn.Conv2d):
            return "svd factorises Linear layers; use tucker for convolutions"
        return super().why_not(module)

    def apply(self, model: nn.Module, pruner: str, weights: list[str], ratio: float, ctx: CompressionContext,
              options: PrunerOptions) -> list[CompressionRecord]:
        records = []
        for weight in weights:
            linear = self.layer(model, weight, pruner)
            full = min(linear.in_features, linear.out_features)
            rank = max(1, math.ceil((1.0 - ratio) * full))
            if ratio <= 0:
                records.append(self.record(pruner, weight, full, 0, None))
                continue
            if rank * (linear.in_features + linear.out_features) >= linear.in_features * linear.out_features:
                records.append(CompressionRecord(
                    pruner, weight, full, 0, f"rank {rank} would cost more multiply-adds than the "
                    f"{linear.out_features}x{linear.in_features} layer", self.name, self.unit))
                continue
            u, s, vh = torch.linalg.svd(linear.weight.detach().double(), full_matrices=False)
            root = s[:rank].sqrt()
            down = nn.Linear(linear.in_features, rank, bias=False)
            up = nn.Linear(rank, linear.out_features, bias=linear.bias is not None)
            down.weight.data = (root[:, None] * vh[:rank]).to(linear.weight.dtype)
            up.weight.data = (u[:, :rank] * root[None, :]).to(linear.weight.dtype)
            if linear.bias is not None:
                up.bias.data = linear.bias.detach().clone()
            replace_module(model, weight, Factorized(down, up))
            ctx.invalidate()
            records.append(self.record(pruner, weight, full, full - rank, None))
        return records
