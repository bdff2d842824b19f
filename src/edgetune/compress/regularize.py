"""Distiller's regularisers as a term added to the fine-tuning loss (L1, L2, group lasso).

Group lasso (the sum over groups of each group's L2 norm) pushes whole filters or channels
towards zero during fine-tuning, so a structured pruner acting later removes little that
mattered; L1 and L2 act on single weights. Each regulariser adds to the loss while its policy
is active (every epoch without one), as Distiller's scheduler did on each mini-batch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from edgetune.compress.base import CompressionError
from edgetune.config.recipe import RegularizerSpec, Schedule
from edgetune.errors import closest


def _group_norms(weight: torch.Tensor, group: str) -> torch.Tensor:
    if group in ("Filters", "3D", "Rows"):  # a filter of a convolution, a row of a matrix: dim 0
        return weight.flatten(1).norm(dim=1).sum()
    if group == "Channels":
        return weight.transpose(0, 1).flatten(1).norm(dim=1).sum()
    if group == "Cols":
        return weight.flatten(1).norm(dim=0).sum()
    if group == "2D":  # kernels
        return weight.flatten(2).norm(dim=2).sum()
    return weight.norm()  # 4D: the whole tensor


def _term(spec: RegularizerSpec, weight: torch.Tensor, regim: float | tuple[float, str]) -> torch.Tensor:
    if spec.class_ == "GroupLassoRegularizer":
        strength, group = regim  # type: ignore[misc]
        return strength * _group_norms(weight, group)
    if spec.class_ == "L1Regularizer":
        return float(regim) * weight.abs().sum()  # type: ignore[arg-type]
    return float(regim) * weight.pow(2).sum()  # type: ignore[arg-type]


def parameters_of(model: nn.Module, schedule: Schedule) -> dict[str, dict[str, nn.Parameter]]:
    """Each regulariser's weights on `model`; a name the network does not have is refused with
    the regulariser's key and the closest names."""
    names = dict(model.named_parameters())
    out: dict[str, dict[str, nn.Parameter]] = {}
    for reg, spec in schedule.regularizers.items():
        out[reg] = {}
        for weight in spec.reg_regims:
            param = names.get(weight.removeprefix("module."))
            if param is None:
                raise CompressionError(f"weight '{weight}' is not a parameter of this model; closest: "
                                       f"{', '.join(closest(weight.removeprefix('module.'), names))}",
                                       key=f"regularizers.{reg}.reg_regims")
            out[reg][weight] = param
    return out


def regularization(model: nn.Module, schedule: Schedule, epoch: int) -> Callable[[], torch.Tensor] | None:
    """The penalty of the regularisers active at `epoch` on `model` (None when none is): with no
    policies at all every one, else those a policy covering `epoch` names."""
    active = [r for r in schedule.regularizers if not schedule.policies
              or any(p.active(epoch) for p in schedule.policies_naming("regularizer", r))]
    if not active:
        return None
    params = parameters_of(model, schedule)

    def penalty() -> torch.Tensor:
        total = torch.zeros(())
        for reg in active:
            spec = schedule.regularizers[reg]
            for weight, param in params[reg].items():
                total = total.to(param.device) + _term(spec, param, spec.reg_regims[weight])
        return total

    return penalty


def with_penalty(loss: Callable[..., torch.Tensor] | None, penalty: Callable[[], torch.Tensor] | None
                 ) -> Callable[..., torch.Tensor] | None:
    """The fine-tuning loss with the regularisers' penalty added (the loss itself without one)."""
    if penalty is None:
        return loss
    base = loss or nn.functional.cross_entropy
    return lambda outputs, targets: base(outputs, targets) + penalty()
