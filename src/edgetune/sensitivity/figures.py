"""Sensitivity figures: one per layer (top-1 and measured latency against the ratio) and two
overview heatmaps (layers x ratios), PNG through matplotlib."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from edgetune.plotting import pyplot, save


def draw(frame: pd.DataFrame, out_dir: Path, baseline_top1: float) -> list[Path]:
    plt = pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for layer, curve in frame.groupby("layer"):
        fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=100)
        ax.plot(curve["ratio"], curve["top1"], marker="o", ms=3, color="tab:blue", label="top-1 (no fine-tuning)")
        ax.axhline(baseline_top1, color="tab:blue", lw=0.6, ls="--")
        ax.set_xlabel("pruning ratio")
        ax.set_ylabel("top-1 %", color="tab:blue")
        twin = ax.twinx()
        twin.plot(curve["ratio"], curve["latency_ratio"], marker="s", ms=3, color="tab:red", label="latency ratio")
        twin.plot(curve["ratio"], curve["macs_ratio"], ls=":", color="tab:gray", label="MACs ratio")
        twin.set_ylabel("x baseline", color="tab:red")
        ax.set_title(f"{layer} ({int(curve['members'].iloc[0])} coupled)", fontsize=9)
        fig.legend(fontsize=7, loc="lower left")
        written.append(save(fig, out_dir / f"layer-{re.sub(r'[^A-Za-z0-9_.-]', '_', layer)}.png"))
    for column, title, cmap in (("top1_drop", "top-1 points lost (no fine-tuning)", "Reds"),
                                ("latency_ratio", "measured latency, x baseline", "RdBu")):
        grid = frame.pivot(index="layer", columns="ratio", values=column)
        fig, ax = plt.subplots(figsize=(1.6 + 0.45 * grid.shape[1], 1.2 + 0.22 * grid.shape[0]), dpi=100)
        image = ax.imshow(grid.to_numpy(dtype=float), aspect="auto", cmap=cmap,
                          **({"vmin": 0.8, "vmax": 1.2} if column == "latency_ratio" else {}))
        ax.set_xticks(range(grid.shape[1]), [f"{r:g}" for r in grid.columns], fontsize=7, rotation=90)
        ax.set_yticks(range(grid.shape[0]), list(grid.index), fontsize=7)
        ax.set_xlabel("pruning ratio")
        ax.set_title(title, fontsize=9)
        fig.colorbar(image, ax=ax)
        written.append(save(fig, out_dir / f"overview-{column}.png"))
    return written
