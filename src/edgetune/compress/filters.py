"""Filter pruning: remove a layer's lowest-ranked output filters, and with them everything the
dependency graph couples to them (BatchNorm, the consumers' input channels, residual and
concatenation partners), using Torch-Pruning's graph and importance scorers.

Targets that share one coupled group (the convolutions feeding one residual stream) are pruned
once: pruning the stream again for each of them would compound the ratio.
"""

from __future__ import annotations

from functools import partial

import torch
import torch_pruning as tp
from torch import nn

from edgetune.compress.base import (
    CompressionContext,
    CompressionError,
    CompressionMethod,
    CompressionRecord,
    PrunerOptions,
)
from edgetune.compress.groups import GroupClaims, is_output_layer, prune_lowest, scope_args


class FilterPruning(CompressionMethod):
    unit = "filters"
    layer_types = (nn.Conv2d, nn.Linear)
    p = 1

    def importance(self, scope: str) -> tp.importance.Importance:
        return tp.importance.MagnitudeImportance(p=self.p, **scope_args(scope))

    def fits(self, model: nn.Module, module: nn.Module, ctx: CompressionContext) -> str | None:
        if is_output_layer(ctx.graph(model), module):
            return "it produces the network's output: removing its filters would remove classes; prune the layers before it"
        return None

    def prepare(self, model: nn.Module, pruner: str, ctx: CompressionContext, options: PrunerOptions) -> None:
        """Before ranking: Taylor importance needs gradients."""

    def apply(self, model: nn.Module, pruner: str, weights: list[str], ratio: float, ctx: CompressionContext,
              options: PrunerOptions) -> list[CompressionRecord]:
        layers = [(w, self.layer(model, w, pruner)) for w in weights]
        graph = ctx.graph(model)
        for weight, module in layers:
            reason = self.fits(model, module, ctx)
            if reason is not None:
                raise CompressionError(f"{weight}: {reason}", key=f"pruners.{pruner}.weights")
        self.prepare(model, pruner, ctx, options)
        scorer = self.importance(options.scope)
        records: list[CompressionRecord] = []
        claims = GroupClaims()
        # Score every target before pruning any: a pruned group changes its partners' scores.
        plans = []
        for weight, module in layers:
            fn = tp.prune_conv_out_channels if isinstance(module, nn.Conv2d) else tp.prune_linear_out_channels
            n = module.out_channels if isinstance(module, nn.Conv2d) else module.out_features
            full = graph.get_pruning_group(module, fn, idxs=list(range(n)))
            plans.append((weight, n, full, scorer(full)))
        for weight, n, full, scores in plans:
            first = claims.claimed_by(full, weight)
            if first is not None:
                records.append(self.record(pruner, weight, n, 0, f"coupled with {first}, pruned with it"))
                continue
            records.append(prune_lowest(graph, full, ratio, lambda s=scores: s,
                                        partial(self.record, pruner, weight, n),
                                        keep=partial(options.kept_width, weight, full=n, ctx=ctx)))
        return records


class FiltersL1(FilterPruning):
    name = "filters-l1"
    p = 1


class FiltersL2(FilterPruning):
    name = "filters-l2"
    p = 2


class FiltersBatchNorm(FilterPruning):
    """Network slimming: the BatchNorm scale after each filter says how much it contributes."""

    name = "filters-bn"

    def importance(self, scope: str) -> tp.importance.Importance:
        return tp.importance.BNScaleImportance(**scope_args(scope))

    def fits(self, model: nn.Module, module: nn.Module, ctx: CompressionContext) -> str | None:
        reason = super().fits(model, module, ctx)
        if reason is not None:
            return reason
        fn = tp.prune_conv_out_channels if isinstance(module, nn.Conv2d) else tp.prune_linear_out_channels
        group = ctx.graph(model).get_pruning_group(module, fn, idxs=[0])
        if not any(isinstance(dep.target.module, nn.modules.batchnorm._BatchNorm) for dep, _ in group):
            return ("filters-bn ranks filters by the BatchNorm scale that follows them, and this layer has none; "
                    "use filters-l1 or filters-taylor")
        return None


class FiltersTaylor(FilterPruning):
    """First-order Taylor expansion of the loss (Molchanov et al. 2019; Distiller's
    GradientRankedFilterPruner): |weight x gradient| over a batch of training images."""

    name = "filters-taylor"
    samples_images = True

    def importance(self, scope: str) -> tp.importance.Importance:
        return tp.importance.TaylorImportance(**scope_args(scope))

    def prepare(self, model: nn.Module, pruner: str, ctx: CompressionContext, options: PrunerOptions) -> None:
        images, labels = ctx.samples(options.n_samples, pruner)
        was_training = model.training
        model.eval()
        model.zero_grad()
        with torch.enable_grad():
            nn.functional.cross_entropy(model(images), labels).backward()
        model.train(was_training)

    def apply(self, model: nn.Module, pruner: str, weights: list[str], ratio: float, ctx: CompressionContext,
              options: PrunerOptions) -> list[CompressionRecord]:
        try:
            return super().apply(model, pruner, weights, ratio, ctx, options)
        finally:
            model.zero_grad(set_to_none=True)  # no stale gradients into fine-tuning or a saved copy
