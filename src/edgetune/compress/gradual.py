"""Distiller's automated gradual pruning (AGP; Zhu and Gupta 2017) during fine-tuning.

At the start of each epoch its policy covers, a gradual pruner's target sparsity follows
Distiller's cubic ramp from `initial_sparsity` to `final_sparsity`; the lowest-L1 filters (or
input channels, or single weights for AutomatedGradualPruner) of each named weight up to that
sparsity are masked, and the mask is applied again after every optimizer step, so the network
learns around what it will lose. When fine-tuning ends the masked structures are removed for
real by the pruner's one-shot method at `final_sparsity` (ranked by the named weight alone, so
the zeroed filters are the ones cut): the exported network is smaller, not merely sparse. A run
shorter than the ramp is thinned to `final_sparsity` all the same.
"""

from __future__ import annotations

import torch
from torch import nn

from edgetune.config.recipe import Policy, PrunerSpec, Schedule


def target_sparsity(spec: PrunerSpec, policy: Policy | None, epoch: int) -> float:
    """Distiller's AGP ramp: final + (initial - final) * (1 - (epoch - start) / span)**3, where
    span = ((end - start - 1) // frequency) * frequency; final once the span is over."""
    initial = spec.initial_sparsity or 0.0
    final = spec.final_sparsity if spec.final_sparsity is not None else spec.desired_sparsity
    start = (policy.starting_epoch or 0) if policy is not None else 0
    end = policy.ending_epoch if policy is not None and policy.ending_epoch is not None else start + 1
    freq = max(policy.frequency if policy is not None else 1, 1)
    span = ((end - start - 1) // freq) * freq
    if span <= 0 or epoch >= start + span:
        return final
    return final + (initial - final) * (1.0 - (epoch - start) / span) ** 3


class GradualMasks:
    """The masks of a schedule's gradual pruners on one network, kept between epochs."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.names = schedule.gradual_pruners()
        self.masks: dict[str, tuple[nn.Parameter, torch.Tensor]] = {}
        self.sparsity: dict[str, float] = {}  # each pruner's target at its latest active epoch

    def __bool__(self) -> bool:
        return bool(self.names)

    def at_epoch(self, model: nn.Module, epoch: int) -> dict[str, float]:
        """The pruners whose policy acts at `epoch` move along their ramp; every mask is taken
        again from the network as it is (a one-shot pruner may have replaced its layers; what
        was masked is zero, so it stays the lowest). Returns the targets that moved."""
        moved = {}
        for name in self.names:
            policy = self.schedule.policy_of(name)
            if policy is None or policy.active(epoch):
                moved[name] = self.sparsity[name] = target_sparsity(self.schedule.pruners[name], policy, epoch)
        self.masks = {}
        for name, sparsity in self.sparsity.items():
            spec = self.schedule.pruners[name]
            for weight in spec.weights:
                param = model.get_parameter(weight.removeprefix("module."))
                self.masks[weight] = (param, _mask(param.detach(), sparsity, spec.family))
        self.apply()
        return moved

    @torch.no_grad()
    def apply(self) -> None:
        """Zero what is masked: after each optimizer step, as Distiller's mask_weights does."""
        for param, mask in self.masks.values():
            param.mul_(mask.to(param.device))


def _mask(weight: torch.Tensor, sparsity: float, family: str) -> torch.Tensor:
    """Keep-mask: the lowest-L1 filters (dim 0), input channels (dim 1) or weights, Distiller's
    int(sparsity * n) of them."""
    if family == "magnitude":
        scores, shape = weight.abs().flatten(), (-1,)
    else:
        dim = 0 if family == "filters" else 1
        scores = weight.abs().transpose(0, dim).flatten(1).sum(1)
        shape = tuple(-1 if d == dim else 1 for d in range(weight.dim()))
    k = min(int(sparsity * scores.numel()), scores.numel() - 1)
    keep = torch.ones_like(scores)
    if k > 0:
        keep[torch.argsort(scores)[:k]] = 0.0
    return keep.reshape(shape) if family != "magnitude" else keep.reshape(weight.shape)
