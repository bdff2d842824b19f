"""A Markdown summary for a README or a paper: the comparison, the front, the strongest
correlations and the importance ranking, with the PNG figures linked."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from edgetune.report.labels import readable
from edgetune.report.sections import Report


def _cell(v: object) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.4g}"
    return str(v).replace("|", "\\|")


def markdown_table(table: pd.DataFrame, rows: int = 20) -> str:
    table = readable(table)
    head = "| " + " | ".join(str(c) for c in table.columns) + " |"
    rule = "|" + "---|" * len(table.columns)
    body = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in table.head(rows).itertuples(index=False)]
    more = [f"\n({len(table) - rows} more rows in the CSV)"] if len(table) > rows else []
    return "\n".join([head, rule, *body, *more])


SHOWN = {"baseline_comparison", "final_pick", "pareto_front", "layer_latency", "listing"}


def render_markdown(report: Report, out_dir: Path) -> list[Path]:
    """`report.md`, linking the figures the png renderer drew into `figures/` beside it."""
    path = out_dir / "report.md"
    lines = [f"# {report.title}", "", report.subtitle, ""]
    for section in report.sections:
        lines += [f"## {section.title}", ""]
        if section.text:
            lines += [section.text, ""]
        for name, table in section.tables.items():
            if name in SHOWN:
                lines += [markdown_table(table), ""]
            elif name == "correlations":
                strongest = table.dropna(subset=["spearman"]).reindex(
                    table["spearman"].abs().sort_values(ascending=False).index).dropna(subset=["spearman"])
                lines += ["Strongest correlations:", "", markdown_table(strongest, 10), ""]
            elif name.startswith("importance_"):
                lines += [f"{name.removeprefix('importance_')}:", "", markdown_table(table), ""]
        lines += [f"![{fig.title}](figures/{fig.name}.png)" + "\n" for fig in section.figures[:4]]
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return [path]


def render_csv(report: Report, out_dir: Path) -> list[Path]:
    """One CSV per table, in `tables/`."""
    tables = out_dir / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in report.tables().items():
        path = tables / f"{name}.csv"
        table.to_csv(path, index=False)
        written.append(path)
    return written
