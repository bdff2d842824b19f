"""Norm statistics re-estimated after a structural change, before anything is scored or trained.

Removing filters, channels or whole blocks changes what every later layer sees, but each
BatchNorm keeps the running mean and variance of the unpruned network: the candidate is scored
with statistics that belong to another network, and the screen reads noise (a ResNet-56 with
blocks 6/6/6 and a fifth of its inner filters removed scores 76 % as pruned, 94 % once its
statistics are re-estimated; docs/results.md, "Recover before you train"). EagleEye's adaptive
BatchNorm (Li et al., ECCV 2020): a few forward passes over training images in train mode, no
gradient step, and the re-estimated score ranks candidates the way their fine-tuned scores do.

Only the norm layers switch to training mode, so dropout and the like stay as deployed, and each
batch is weighted by its images (the momentum set to batch / images so far): the first layer's
running mean is the mean over every image whatever the batch sizes; later layers see inputs
normalised by their batch, as in training.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase


def tracked_norms(model: nn.Module) -> list[_NormBase]:
    """The norm layers that keep running statistics (BatchNorm of any rank, SyncBatchNorm, an
    InstanceNorm asked to track): the ones whose statistics a structural change leaves stale."""
    return [m for m in model.modules()
            if isinstance(m, _NormBase) and m.track_running_stats and m.running_mean is not None]


@torch.no_grad()
def reestimate_norms(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> int:
    """Replace every tracked norm layer's running statistics by those of `model` itself on
    `images` (normalised, as the network takes them). Returns how many layers were re-estimated
    (0: the network has none, and it is left as it was). The model's modes are restored."""
    norms = tracked_norms(model)
    if not norms or len(images) == 0:
        return 0
    modes = {m: m.training for m in model.modules()}
    momenta = {m: m.momentum for m in norms}
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        model.eval()
        for m in norms:
            m.reset_running_stats()
            m.train()
        seen = 0
        for start in range(0, len(images), batch_size):
            x = images[start:start + batch_size]
            if len(x) < 2 < len(images):  # one image has no batch variance (BatchNorm1d refuses it)
                break
            for m in norms:
                m.momentum = len(x) / (seen + len(x))
            model(x.to(device))
            seen += len(x)
    finally:
        for m, momentum in momenta.items():
            m.momentum = momentum
        for m, mode in modes.items():
            m.train(mode)
    return len(norms)
