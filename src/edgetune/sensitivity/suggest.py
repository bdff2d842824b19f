"""From sensitivity curves to a recipe: where pruning pays, which layers behave alike, and a
Distiller-format schedule with a W&B-format sweep that `edgetune run` takes as they are."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import yaml

from edgetune.errors import ConfigError


def payoff(frame: pd.DataFrame, max_drop: float) -> pd.DataFrame:
    """Per layer: the largest latency saving among its ratios that cost at most `max_drop`
    points of top-1 (without fine-tuning), and the milliseconds saved per point lost there."""
    rows = []
    for layer, curve in frame.groupby("layer"):
        ok = curve[(curve["top1_drop"] <= max_drop) & (curve["ratio"] > 0)]
        if ok.empty:
            rows.append({"layer": layer, "ratio": 0.0, "latency_saved_ms": 0.0, "top1_drop": 0.0,
                         "ms_per_point": 0.0, "macs_ratio": 1.0})
            continue
        best = ok.loc[ok["latency_saved_ms"].idxmax()]
        rows.append({"layer": layer, "ratio": best["ratio"], "latency_saved_ms": best["latency_saved_ms"],
                     "top1_drop": best["top1_drop"], "macs_ratio": best["macs_ratio"],
                     "ms_per_point": best["latency_saved_ms"] / max(best["top1_drop"], 0.1)})
    return pd.DataFrame(rows).sort_values("latency_saved_ms", ascending=False).reset_index(drop=True)


@dataclass
class Group:
    name: str
    weights: list[str]
    max_ratio: float  # the largest tested ratio at which the group's mean drop stays within max_drop
    mean_drop: float  # at max_ratio
    latency_saved_ms: float  # mean over the group, each layer alone at max_ratio


@dataclass
class Suggestion:
    groups: list[Group]
    excluded: dict[str, str] = field(default_factory=dict)  # layer -> why


def suggest(frame: pd.DataFrame, n_groups: int, max_drop: float, min_saving_ms: float = 0.0) -> Suggestion:
    """Cluster the layers' curves (top-1 drop and latency saved against ratio, each scaled by
    its spread over all layers) with Ward's hierarchical clustering into `n_groups`. Left out,
    with the reason: layers that lose more than `max_drop` at the smallest tested ratio, and
    layers that were measured no faster (or less than `min_saving_ms` faster) at any ratio they
    can afford: pruning them costs accuracy and buys no time on this device."""
    from scipy.cluster.hierarchy import fcluster, linkage

    if n_groups < 1:
        raise ConfigError(f"--groups must be at least 1, got {n_groups}", key="groups")
    drops = frame.pivot(index="layer", columns="ratio", values="top1_drop")
    saved = frame.pivot(index="layer", columns="ratio", values="latency_saved_ms")
    nonzero = [r for r in drops.columns if r > 0]
    if not nonzero:
        raise ConfigError("the analysis holds no ratio above 0; run it with a --range that does", key="range")
    excluded: dict[str, str] = {}
    first = nonzero[0]
    for layer, drop in drops[first].items():
        if drop > max_drop:
            excluded[layer] = f"loses {drop:.1f} points of top-1 already at ratio {first:g}"
    pays = payoff(frame, max_drop).set_index("layer")
    for layer in drops.index:
        saving, ratio = pays.loc[layer, "latency_saved_ms"], pays.loc[layer, "ratio"]
        if layer not in excluded and (saving <= 0 or saving < min_saving_ms):
            excluded[layer] = (f"measured no faster at any ratio it can afford (best: {saving:+.4f} ms at {ratio:g})"
                               if saving <= 0 else f"saves only {saving:.4f} ms at its best affordable ratio ({ratio:g})")
    kept = [layer for layer in drops.index if layer not in excluded]
    if not kept:
        return Suggestion([], excluded)
    scale_d = float(np.nanstd(drops.loc[kept, nonzero].to_numpy())) or 1.0
    scale_s = float(np.nanstd(saved.loc[kept, nonzero].to_numpy())) or 1.0
    features = np.hstack([np.nan_to_num(drops.loc[kept, nonzero].to_numpy() / scale_d),
                          np.nan_to_num(saved.loc[kept, nonzero].to_numpy() / scale_s)])
    k = min(n_groups, len(kept))
    labels = np.ones(len(kept), dtype=int) if k == 1 else fcluster(linkage(features, method="ward"), k, "maxclust")
    groups = []
    for label in sorted(set(labels)):
        members = [layer for layer, lab in zip(kept, labels, strict=True) if lab == label]
        mean_drop = drops.loc[members, nonzero].mean()
        affordable = [r for r in nonzero if mean_drop[r] <= max_drop]
        max_ratio = max(affordable) if affordable else first
        groups.append(Group("", [f"{m}.weight" for m in members], float(max_ratio), float(mean_drop[max_ratio]),
                            float(saved.loc[members, max_ratio].mean())))
    # Most robust first: the group that takes the most pruning is group 1.
    groups.sort(key=lambda g: (-g.max_ratio, g.mean_drop))
    for i, g in enumerate(groups, 1):
        g.name = f"sensitivity_group_{i}"
    return Suggestion(groups, excluded)


def schedule_yaml(s: Suggestion, method: str, source: str, max_drop: float) -> str:
    """A Distiller-format schedule: one pruner per group at half its affordable ratio (the
    sweep searches the whole range), pruned at epoch 0, an exponential LR decay as the seed's."""
    header = [f"# Suggested by `edgetune recipe suggest` from {source}: {len(s.groups)} groups of layers with",
              "# similar sensitivity; each group's range ends where pruning it alone (no fine-tuning) cost",
              f"# {max_drop:g} points of top-1 on average."]
    for g in s.groups:
        header.append(f"#   {g.name}: {len(g.weights)} layers, up to {g.max_ratio:g} (mean drop {g.mean_drop:.2f}, "
                      f"{g.latency_saved_ms:.4f} ms saved per layer alone)")
    if s.excluded:
        header.append("# Left out:")
        header += [f"#   {layer}: {why}" for layer, why in sorted(s.excluded.items())]
    body = {
        "version": 1,
        "pruners": {g.name: {"class": method, "desired_sparsity": round(g.max_ratio / 2, 4),
                             "weights": [f"module.{w}" for w in g.weights]} for g in s.groups},
        "lr_schedulers": {"exp_finetuning_lr": {"class": "ExponentialLR", "gamma": 0.95}},
        "policies": [*({"pruner": {"instance_name": g.name}, "epochs": [0]} for g in s.groups),
                     {"lr_scheduler": {"instance_name": "exp_finetuning_lr"}, "starting_epoch": 0, "ending_epoch": 400,
                      "frequency": 1}],
    }
    return "\n".join(header) + "\n" + yaml.safe_dump(body, sort_keys=False)


def sweep_yaml(s: Suggestion, metric: str = "Latency", goal: str = "minimize") -> str:
    body = {"method": "bayes", "metric": {"name": metric, "goal": goal},
            "parameters": {g.name: {"min": 0.0, "max": round(g.max_ratio, 4)} for g in s.groups}}
    return "# Suggested by `edgetune recipe suggest`: one range per group of its schedule.\n" + yaml.safe_dump(
        body, sort_keys=False)
