"""Tucker-2 decomposition of convolutions (the second seed's equations 4.4-4.7): the kernel is
factorised along its input and output channels by TensorLy's partial Tucker, and the layer
becomes a 1x1 convolution into R3 channels, the kxk core from R3 to R4 channels, and a 1x1
convolution back out. The ranks keep the fraction 1 - ratio of each channel dimension, rounded
up as in the seed's R = ceil(a x I). HOSVD, the seed's solver, starts TensorLy's HOOI and one
sweep refines it: more sweeps cost seconds per large layer for tenths of a percent of error."""

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


def conv_macs_per_position(c_in: int, c_out: int, kernel: tuple[int, ...]) -> int:
    return c_in * c_out * math.prod(kernel)


class Tucker(CompressionMethod):
    name = "tucker"
    unit = "rank"

    def why_not(self, module: nn.Module) -> str | None:
        reason = super().why_not(module)
        if reason is None and module.groups > 1:
            return ("tucker factorises the input-output channel coupling of a dense convolution; a grouped or "
                    "depthwise convolution has none to factorise")
        return reason

    def apply(self, model: nn.Module, pruner: str, weights: list[str], ratio: float, ctx: CompressionContext,
              options: PrunerOptions) -> list[CompressionRecord]:
        import tensorly as tl
        from tensorly.decomposition import partial_tucker

        tl.set_backend("numpy")
        records = []
        for weight in weights:
            conv = self.layer(model, weight, pruner)
            c_out, c_in = conv.out_channels, conv.in_channels
            r_in, r_out = (max(1, math.ceil((1.0 - ratio) * c)) for c in (c_in, c_out))
            before = c_in + c_out
            original = conv_macs_per_position(c_in, c_out, conv.kernel_size)
            factored = c_in * r_in + conv_macs_per_position(r_in, r_out, conv.kernel_size) + r_out * c_out
            if ratio <= 0:
                records.append(self.record(pruner, weight, before, 0, None))
                continue
            if factored >= original:
                records.append(CompressionRecord(
                    pruner, weight, before, 0, f"ranks {r_in}/{r_out} would cost {factored} MACs per position "
                    f"against {original} undecomposed", self.name, self.unit))
                continue
            w = conv.weight.detach().double().numpy()
            (core, (u_out, u_in)), _ = partial_tucker(w, rank=[r_out, r_in], modes=[0, 1], init="svd", n_iter_max=1)
            first = nn.Conv2d(c_in, r_in, 1, bias=False)
            middle = nn.Conv2d(r_in, r_out, conv.kernel_size, conv.stride, conv.padding, conv.dilation, bias=False)
            last = nn.Conv2d(r_out, c_out, 1, bias=conv.bias is not None)
            dtype = conv.weight.dtype
            first.weight.data = torch.from_numpy(u_in.T.copy()).to(dtype)[:, :, None, None]
            middle.weight.data = torch.from_numpy(core.copy()).to(dtype)
            last.weight.data = torch.from_numpy(u_out.copy()).to(dtype)[:, :, None, None]
            if conv.bias is not None:
                last.bias.data = conv.bias.detach().clone()
            replace_module(model, weight, Factorized(first, middle, last))
            ctx.invalidate()
            records.append(CompressionRecord(pruner, weight, before, (c_in - r_in) + (c_out - r_out), None,
                                             self.name, self.unit))
        return records
