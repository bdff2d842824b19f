"""Channel pruning: remove a layer's least useful input channels, and the filters upstream that
produced them (Torch-Pruning's dependency graph couples the two).

`channels-l1`/`channels-l2` rank channels by their weights (Distiller's ranked pruners with
`group_type: Channels`). `channels-reconstruct` is the second seed's action and Distiller's
`FMReconstructionChannelPruner`: channels are ranked by the L1 norm of feature maps sampled from
training images, then every dense layer that loses inputs gets new weights by least squares, so
that its output on those samples is reconstructed from the inputs that remain (equation 4.3:
W' = argmin ||Y - W' * X'||).
"""

from __future__ import annotations

from functools import partial

import torch
import torch_pruning as tp
from torch import nn
from torch.nn import functional as F

from edgetune.compress.base import (
    CompressionContext,
    CompressionError,
    CompressionMethod,
    CompressionRecord,
    PrunerOptions,
)
from edgetune.compress.groups import GroupClaims, prune_lowest, scope_args

IN_CHANNELS = (tp.prune_conv_in_channels, tp.prune_linear_in_channels)
POINTS_PER_IMAGE = 10  # output positions sampled per image, as in He et al. 2017 and AMC


def _in_fn(module: nn.Module):
    return tp.prune_conv_in_channels if isinstance(module, nn.Conv2d) else tp.prune_linear_in_channels


def _n_in(module: nn.Module) -> int:
    return module.in_channels if isinstance(module, nn.Conv2d) else module.in_features


def _dense(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d) and module.groups == 1)


class ChannelPruning(CompressionMethod):
    unit = "channels"
    layer_types = (nn.Conv2d, nn.Linear)
    p = 1

    def why_not(self, module: nn.Module) -> str | None:
        reason = super().why_not(module)
        if reason is None and isinstance(module, nn.Conv2d) and module.groups > 1:
            return (f"{self.name} removes input channels, and a grouped or depthwise convolution ties each of them to "
                    "its own outputs; prune the dense convolution after it")
        return reason

    def fits(self, model: nn.Module, module: nn.Module, ctx: CompressionContext) -> str | None:
        node = ctx.graph(model).module2node.get(module)
        if node is not None and not node.inputs:
            return "reads the network's input: its channels are the image's; prune a later layer"
        return None

    def scores(self, model: nn.Module, module: nn.Module, group, ctx: CompressionContext, options: PrunerOptions,
               pruner: str) -> torch.Tensor:
        scorer = tp.importance.MagnitudeImportance(p=self.p, **scope_args(options.scope))
        return scorer(group)

    def rewrite(self, model: nn.Module, group, ctx: CompressionContext, options: PrunerOptions, pruner: str):
        """Before the group is pruned: new weights for the layers that lose inputs (none here)."""
        return lambda: None

    def apply(self, model: nn.Module, pruner: str, weights: list[str], ratio: float, ctx: CompressionContext,
              options: PrunerOptions) -> list[CompressionRecord]:
        records: list[CompressionRecord] = []
        claims = GroupClaims()
        for weight in weights:
            module = self.layer(model, weight, pruner)
            graph = ctx.graph(model)
            n = _n_in(module)
            reason = self.fits(model, module, ctx)
            if reason is not None:
                raise CompressionError(f"{weight} {reason}", key=f"pruners.{pruner}.weights")
            full = graph.get_pruning_group(module, _in_fn(module), idxs=list(range(n)))
            first = claims.claimed_by(full, weight)
            if first is not None:
                records.append(self.record(pruner, weight, n, 0, f"coupled with {first}, pruned with it"))
                continue
            records.append(prune_lowest(
                graph, full, ratio,
                lambda module=module, full=full: self.scores(model, module, full, ctx, options, pruner),
                partial(self.record, pruner, weight, n),
                lambda group: self.rewrite(model, group, ctx, options, pruner),
                keep=partial(options.kept_width, weight, full=n, ctx=ctx)))
        return records


class ChannelsL1(ChannelPruning):
    name = "channels-l1"
    p = 1


class ChannelsL2(ChannelPruning):
    name = "channels-l2"
    p = 2


class _Enough(Exception):
    """Raised from a hook once every wanted input is captured: the rest of the forward is waste."""


class ChannelsReconstruct(ChannelPruning):
    name = "channels-reconstruct"
    samples_images = True

    def _inputs(self, model: nn.Module, modules: list[nn.Module], ctx: CompressionContext, options: PrunerOptions,
                pruner: str) -> dict[nn.Module, torch.Tensor]:
        images, _ = ctx.samples(options.n_samples, pruner)
        seen: dict[nn.Module, torch.Tensor] = {}
        wanted = set(modules)

        def capture(mod: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            seen[mod] = inputs[0].detach()
            if wanted <= seen.keys():
                raise _Enough

        handles = [m.register_forward_pre_hook(capture) for m in modules]
        try:
            with torch.no_grad():
                model.eval()(images)
        except _Enough:
            pass
        finally:
            for h in handles:
                h.remove()
        return seen

    def scores(self, model: nn.Module, module: nn.Module, group, ctx: CompressionContext, options: PrunerOptions,
               pruner: str) -> torch.Tensor:
        # One pass captures the inputs of the ranked layer and of every dense layer that will
        # lose these channels; `rewrite` reuses them (inputs come from the network as pruned so
        # far, so each reconstruction also absorbs the error of the layers before it).
        consumers = [dep.target.module for dep, _ in group if dep.handler in IN_CHANNELS and _dense(dep.target.module)]
        self._seen = self._inputs(model, [module, *consumers], ctx, options, pruner)
        x = self._seen[module]
        return x.abs().mean(dim=[d for d in range(x.dim()) if d != 1])

    def rewrite(self, model: nn.Module, group, ctx: CompressionContext, options: PrunerOptions, pruner: str):
        consumers = {dep.target.module: sorted(idxs) for dep, idxs in group
                     if dep.handler in IN_CHANNELS and _dense(dep.target.module)}
        inputs, self._seen = self._seen, {}
        gen = torch.Generator().manual_seed(0)
        new = {}
        for module, removed in consumers.items():
            if module not in inputs:  # not on the forward path of these images
                continue
            kept = sorted(set(range(_n_in(module))) - set(removed))
            new[module] = least_squares(module, inputs[module], kept, gen)

        def finish() -> None:
            for module, weight in new.items():
                if module.weight.shape == weight.shape:
                    module.weight.data.copy_(weight)

        return finish


def least_squares(module: nn.Module, x: torch.Tensor, kept: list[int], gen: torch.Generator) -> torch.Tensor:
    """Weights over the `kept` inputs that best reproduce `module`'s output on `x` (bias aside)."""
    w = module.weight.detach().double()
    if isinstance(module, nn.Linear):
        rows = x.double().flatten(1)
        target = rows @ w.T
        a = rows[:, kept]
        shape = (w.shape[0], len(kept))
    else:
        patches = F.unfold(x.double(), module.kernel_size, module.dilation, module.padding, module.stride)
        n, d, positions = patches.shape
        pick = torch.randint(positions, (n, min(POINTS_PER_IMAGE, positions)), generator=gen)
        rows = patches.gather(2, pick.unsqueeze(1).expand(n, d, pick.shape[1])).permute(0, 2, 1).reshape(-1, d)
        target = rows @ w.flatten(1).T
        per = module.kernel_size[0] * module.kernel_size[1]
        a = rows.reshape(len(rows), w.shape[1], per)[:, kept, :].reshape(len(rows), -1)
        shape = (w.shape[0], len(kept), *module.kernel_size)
    # A touch of ridge keeps the solve stable when sampled features are collinear (dead ReLUs).
    gram = a.T @ a
    ridge = 1e-6 * gram.diagonal().mean().clamp_min(1e-12) * torch.eye(len(gram), dtype=gram.dtype)
    solution = torch.linalg.solve(gram + ridge, a.T @ target)
    return solution.T.reshape(shape).to(module.weight.dtype)
