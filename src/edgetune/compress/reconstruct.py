"""What a removed structure fed, re-fitted by least squares before anything is trained.

When filters or channels are removed, every convolution or linear layer that read them loses
inputs and its output drifts from what the rest of the network expects. ThiNet (Luo et al.
2017) and He et al. (2017) re-fit such a layer's weights on calibration images so that, from the
inputs it now has (the pruned network's), it reproduces the output the unpruned network's layer
of the same name gave: a least-squares problem per layer, no gradient step. This generalises
`channels-reconstruct` (which re-fits inside its own pruning) to every structural method, after
the whole recipe acted: depth pruning included, since the targets are the unpruned network's.

Only layers whose input width changed and whose output width did not are re-fitted (the
unpruned layer's output then lines up channel for channel); others are left as they are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

POINTS_PER_IMAGE = 10  # output positions sampled per image, as in He et al. 2017 and AMC
RIDGE = 1e-4  # relative to the Gram matrix's mean diagonal: stable where sampled inputs are collinear


def _fed_by_removed(pruned: nn.Module, unpruned: nn.Module) -> dict[str, tuple[nn.Module, nn.Module]]:
    """name -> (pruned layer, unpruned layer) for the dense layers that lost inputs only."""
    theirs = dict(unpruned.named_modules())
    out = {}
    for name, mine in pruned.named_modules():
        other = theirs.get(name)
        if not isinstance(mine, nn.Conv2d | nn.Linear) or type(other) is not type(mine):
            continue
        if isinstance(mine, nn.Conv2d) and (mine.groups != 1 or other.groups != 1):
            continue  # a depthwise layer's inputs are its outputs: nothing to re-fit
        n_in = mine.in_channels if isinstance(mine, nn.Conv2d) else mine.in_features
        n_in_before = other.in_channels if isinstance(other, nn.Conv2d) else other.in_features
        n_out = mine.weight.shape[0]
        if n_in < n_in_before and n_out == other.weight.shape[0]:
            out[name] = (mine, other)
    return out


def _capture(model: nn.Module, modules: dict[str, nn.Module], images: torch.Tensor, outputs: bool
             ) -> dict[str, torch.Tensor]:
    """Each named module's input (or output) on `images`, in eval mode."""
    seen: dict[str, torch.Tensor] = {}

    def hook(name: str):
        def grab(_module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            seen[name] = (output if outputs else inputs[0]).detach()
        return grab

    handles = [m.register_forward_hook(hook(n)) for n, m in modules.items()]
    was = model.training
    try:
        with torch.no_grad():
            model.eval()(images)
    finally:
        model.train(was)
        for h in handles:
            h.remove()
    return seen


def _rows(layer: nn.Module, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) as least-squares rows: one per image for a linear layer, sampled output
    positions of each image for a convolution (its input patches against its output there)."""
    if isinstance(layer, nn.Linear):
        return x.double().flatten(1), y.double().flatten(1)
    patches = F.unfold(x.double(), layer.kernel_size, layer.dilation, layer.padding, layer.stride)
    n, d, positions = patches.shape
    pick = torch.randint(positions, (n, min(POINTS_PER_IMAGE, positions)), generator=gen)
    a = patches.gather(2, pick.unsqueeze(1).expand(n, d, pick.shape[1])).permute(0, 2, 1).reshape(-1, d)
    target = y.double().flatten(2).gather(2, pick.unsqueeze(1).expand(n, y.shape[1], pick.shape[1]))
    return a, target.permute(0, 2, 1).reshape(-1, y.shape[1])


def reconstruct_consumers(pruned: nn.Module, unpruned: nn.Module, images: torch.Tensor, seed: int = 0) -> int:
    """Re-fit, in place, every dense layer of `pruned` that lost inputs so that it reproduces the
    unpruned network's same-named layer on `images`; returns how many were re-fitted."""
    layers = _fed_by_removed(pruned, unpruned)
    if not layers:
        return 0
    inputs = _capture(pruned, {n: m for n, (m, _) in layers.items()}, images, outputs=False)
    targets = _capture(unpruned, {n: o for n, (_, o) in layers.items()}, images, outputs=True)
    gen = torch.Generator().manual_seed(seed)
    done = 0
    for name, (layer, _) in layers.items():
        if name not in inputs or name not in targets:  # not on the forward path of these images
            continue
        a, target = _rows(layer, inputs[name], targets[name], gen)
        if layer.bias is not None:
            target = target - layer.bias.detach().double()
        gram = a.T @ a
        ridge = RIDGE * gram.diagonal().mean().clamp_min(1e-12) * torch.eye(len(gram), dtype=gram.dtype)
        solution = torch.linalg.solve(gram + ridge, a.T @ target)
        with torch.no_grad():
            layer.weight.copy_(solution.T.reshape(layer.weight.shape).to(layer.weight.dtype))
        done += 1
    return done
