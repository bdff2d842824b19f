"""Search spaces over a recipe: grouped (one ratio per pruner, the first seed's four groups)
or per layer (one ratio per pruned weight, the agent's view), and the layer features the RL
agent observes."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from edgetune.config.recipe import Schedule, parse_schedule
from edgetune.config.sweep import ParameterSpec, SweepSpec
from edgetune.errors import ConfigError
from edgetune.search.space.mapping import Target


def layer_name(weight: str) -> str:
    return weight.removeprefix("module.").removesuffix(".weight")


def expand_per_layer(raw: dict[str, Any], schedule: Schedule, sweep: SweepSpec,
                     source: str) -> tuple[dict[str, Any], Schedule, SweepSpec]:
    """Split every pruner into one pruner per weight (named after its layer, policies copied),
    and give each a searched ratio in [per_layer.min, per_layer.max] unless the sweep names it."""
    clash = [name for name in sweep.parameters if name in schedule.pruners]
    if clash:
        raise ConfigError(f"space 'per-layer' replaces the pruners {', '.join(clash)} with one per layer; "
                          "search them per layer (drop these parameters) or use space 'grouped'",
                          source=source, key="space")
    out = copy.deepcopy(raw)
    out["pruners"], policies = {}, []
    for policy in raw.get("policies", []):
        name = (policy.get("pruner") or {}).get("instance_name")
        if name is None:
            policies.append(policy)
            continue
        for weight in raw["pruners"][name]["weights"]:
            policies.append({**copy.deepcopy(policy), "pruner": {"instance_name": layer_name(weight)}})
    params = dict(sweep.parameters)
    for name, pruner in raw.get("pruners", {}).items():
        for weight in pruner["weights"]:
            layer = layer_name(weight)
            out["pruners"][layer] = {**copy.deepcopy(pruner), "weights": [weight]}
            params.setdefault(layer, ParameterSpec(min=sweep.per_layer.min, max=sweep.per_layer.max,
                                                   distribution="uniform"))
    out["policies"] = policies
    return out, parse_schedule(out, f"{source} (per-layer)"), sweep.model_copy(update={"parameters": params})


def layer_features(model: nn.Module, example: torch.Tensor, schedule: Schedule, sweep: SweepSpec,
                   targets: dict[str, Target], fixed: set[str]) -> list[dict[str, Any]]:
    """The second seed's per-layer state: index, type, channels, feature-map size, stride,
    kernel, weight volume and MACs of the convolutions each searched ratio prunes."""
    modules = dict(model.named_modules())
    seen: dict[str, dict[str, float]] = {}

    def hook(name: str):
        def record(mod: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            if isinstance(mod, nn.Linear):  # a 1x1 "convolution" over a 1x1 map, type 2
                seen[name] = {"type": 2.0, "in_channels": mod.in_features, "out_channels": mod.out_features,
                              "height": 1, "width": 1, "stride": 1, "kernel": 1, "weights": mod.weight.numel(),
                              "macs": mod.in_features * mod.out_features}
                return
            h, w = output.shape[-2:]
            seen[name] = {
                "type": 1.0 if mod.groups > 1 else 0.0, "in_channels": mod.in_channels,
                "out_channels": mod.out_channels, "height": inputs[0].shape[-2], "width": inputs[0].shape[-1],
                "stride": mod.stride[0], "kernel": mod.kernel_size[0], "weights": mod.weight.numel(),
                "macs": h * w * mod.out_channels * mod.in_channels // mod.groups * mod.kernel_size[0]
                * mod.kernel_size[1],
            }
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in modules.items() if isinstance(m, nn.Conv2d | nn.Linear)]
    with torch.no_grad():
        model.eval()(example)
    for h in handles:
        h.remove()
    layers = []
    for name, spec in sweep.parameters.items():
        if name in fixed:
            continue
        target = targets[name]
        if target.section != "pruners" or target.field != "desired_sparsity":
            raise ConfigError(f"method 'rl' chooses pruning ratios only, but '{name}' sets "
                              f"{target.section}.{target.field}; fix it with `value:` or drop it", key=f"parameters.{name}")
        convs = [seen[layer_name(w)] for w in schedule.pruners[target.instance].weights]
        first = convs[0]
        layers.append({
            **first, "index": len(layers), "param": name, "min": spec.min, "max": spec.max,
            "weights": sum(c["weights"] for c in convs), "macs": sum(c["macs"] for c in convs),
        })
    return layers
