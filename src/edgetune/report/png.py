"""The report's figures as PNG files (matplotlib, no display needed), for papers and READMEs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from edgetune.plotting import pyplot, save
from edgetune.report.sections import Figure, Report


def _draw(fig: Figure, ax) -> None:
    d = fig.data
    if fig.kind == "scatter":
        groups = d.groupby(fig.group) if fig.group else [("trials", d)]
        for name, part in groups:
            ax.scatter(part[fig.x], part[fig.y[0]], s=18, alpha=0.75, label=str(name))
        if fig.line is not None and len(fig.line):
            line = fig.line.sort_values(fig.x)
            ax.step(line[fig.x], line[fig.y[0]], where="post", color="black", lw=1, label="Pareto front")
        if fig.marks is not None:
            for _, row in fig.marks.iterrows():
                if pd.notna(row.get(fig.x)) and pd.notna(row.get(fig.y[0])):
                    final = str(row["label"]).startswith("final:")  # re-scored after the final training
                    ax.scatter([row[fig.x]], [row[fig.y[0]]], marker="D" if final else "*", s=60 if final else 160,
                               label=row["label"])
        for axis, value, label in fig.limits:
            (ax.axhline if axis == "y" else ax.axvline)(value, color="crimson", ls="--", lw=1, label=label)
        if fig.y_range is not None:
            ax.set_ylim(*fig.y_range)
        # Beside the axes, not over them: the points people look for sit in every corner.
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    elif fig.kind == "line":
        for c in fig.y:
            ax.plot(d[fig.x], d[c], marker="o" if not c.startswith("best") else None, ms=3,
                    lw=0 if c.endswith("trial") else 2 if c.startswith("best") else 1, label=c)
        ax.legend(fontsize=8)
    elif fig.kind == "bar":
        x = np.arange(len(d))
        width = 0.8 if fig.stacked else 0.8 / max(len(fig.y), 1)
        bottom = np.zeros(len(d))
        for i, c in enumerate(fig.y):
            values = pd.to_numeric(d[c], errors="coerce").fillna(0.0).to_numpy() if fig.stacked else \
                pd.to_numeric(d[c], errors="coerce")
            ax.bar(x if fig.stacked else x + i * width - 0.4 + width / 2, values, width, label=c,
                   bottom=bottom if fig.stacked else None)
            if fig.stacked:
                bottom = bottom + values
        ax.set_xticks(x, d[fig.x].astype(str), rotation=45 if len(d) > 5 else 0, ha="right" if len(d) > 5 else "center",
                      fontsize=7)
        if len(fig.y) > 1:
            ax.legend(fontsize=8)
    else:
        values = d.to_numpy(dtype=float)
        image = ax.imshow(values, cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
        ax.set_xticks(range(d.shape[1]), [str(c) for c in d.columns], rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(d.shape[0]), [str(i) for i in d.index], fontsize=7)
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6)
        ax.figure.colorbar(image, ax=ax)
    ax.set_title(fig.title, fontsize=10)
    ax.set_xlabel(fig.x_label)
    ax.set_ylabel(fig.y_label)


def render_png(report: Report, out_dir: Path) -> list[Path]:
    """One PNG per figure, in `figures/` (the Markdown page links them)."""
    plt = pyplot()
    figures = out_dir / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    written = []
    for fig in report.figures():
        figure, ax = plt.subplots(figsize=(9.5 if fig.kind == "scatter" else 7, 4.2), dpi=110)
        _draw(fig, ax)
        written.append(save(figure, figures / f"{fig.name}.png"))
    return written
