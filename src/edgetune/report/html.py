"""The report as one self-contained HTML page: plotly figures (plotly.js embedded once, so the
file opens offline and can be mailed), tables as HTML, a table of contents."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from edgetune.errors import MissingExtraError
from edgetune.report.labels import readable
from edgetune.report.sections import Figure, Report

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2rem; } .subtitle { color: #666; margin-top: 0; }
section { margin: 2.5rem 0; } nav a { margin-right: 1rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.8rem 0; display: block; overflow-x: auto; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: right; white-space: nowrap; }
th { background: #f4f4f4; white-space: normal; vertical-align: bottom; } .figure { min-height: 420px; }
"""


def _plotly_figure(fig: Figure):
    import plotly.graph_objects as go

    d = fig.data
    if fig.kind == "scatter":
        out = go.Figure()
        groups = d.groupby(fig.group) if fig.group else [("trials", d)]
        for name, part in groups:
            out.add_trace(go.Scatter(x=part[fig.x], y=part[fig.y[0]], mode="markers", name=str(name),
                                     text=[f"trial {t}" for t in part["trial"]], hovertemplate="%{text}<br>%{x:.4g}, "
                                     "%{y:.4g}<extra></extra>"))
        if fig.line is not None and len(fig.line):
            line = fig.line.sort_values(fig.x)
            out.add_trace(go.Scatter(x=line[fig.x], y=line[fig.y[0]], mode="lines", name="Pareto front",
                                     line={"shape": "hv"}))
        if fig.marks is not None:
            for _, row in fig.marks.iterrows():
                if pd.notna(row.get(fig.x)) and pd.notna(row.get(fig.y[0])):
                    out.add_trace(go.Scatter(x=[row[fig.x]], y=[row[fig.y[0]]], mode="markers+text", name=row["label"],
                                             text=[row["label"]], textposition="top center",
                                             marker={"symbol": "diamond" if str(row["label"]).startswith("final:")
                                                     else "star", "size": 14}))
        for axis, value, label in fig.limits:
            line = {"color": "crimson", "dash": "dash", "width": 1}
            if axis == "y":
                out.add_hline(y=value, line=line, annotation_text=label, annotation_position="bottom right")
            else:
                out.add_vline(x=value, line=line, annotation_text=label, annotation_position="top left")
        if fig.y_range is not None:
            out.update_yaxes(range=list(fig.y_range))
    elif fig.kind == "line":
        out = go.Figure([go.Scatter(x=d[fig.x], y=d[c], name=c,
                                    mode="markers" if c.endswith("trial") else "lines" if c.startswith("best")
                                    else "lines+markers")
                         for c in fig.y])
    elif fig.kind == "bar":
        counts = [f"n={n}" for n in d["n"]] if "n" in d and fig.y != ["n"] else None  # binned means: per-bin count
        out = go.Figure([go.Bar(x=d[fig.x].astype(str), y=d[c], name=c, text=counts if len(fig.y) == 1 else None)
                         for c in fig.y])
        out.update_layout(barmode="stack" if fig.stacked else "group")
    else:
        out = go.Figure(go.Heatmap(z=d.to_numpy(dtype=float), x=[str(c) for c in d.columns],
                                   y=[str(i) for i in d.index], zmin=-1, zmax=1, colorscale="RdBu",
                                   text=d.round(2).to_numpy(), texttemplate="%{text}"))
    out.update_layout(title=fig.title, xaxis_title=fig.x_label, yaxis_title=fig.y_label, template="plotly_white",
                      height=440, margin={"l": 60, "r": 20, "t": 50, "b": 60})
    return out


# Click a column's header to sort the table by it (again to reverse); numbers as numbers.
SORTING = """
document.querySelectorAll('table.sortable th').forEach(function (th) {
  th.style.cursor = 'pointer';
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0], i = Array.prototype.indexOf.call(th.parentNode.children, th);
    var up = th.dataset.order !== 'up'; th.dataset.order = up ? 'up' : 'down';
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[i].textContent, y = b.cells[i].textContent, nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return up ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""


def _table(table: pd.DataFrame) -> str:
    return readable(table).to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="", border=0, escape=True,
                                   classes="sortable")


def render_html(report: Report, out_dir: Path) -> list[Path]:
    """`report.html`: one self-contained page (plotly's script inlined once)."""
    path = out_dir / "report.html"
    try:
        import plotly.io as pio
    except ImportError:
        raise MissingExtraError("plotly", "report") from None
    parts = [f"<h1>{html.escape(report.title)}</h1><p class='subtitle'>{html.escape(report.subtitle)}</p>",
             "<nav>" + "".join(f"<a href='#{s.key}'>{html.escape(s.title)}</a>" for s in report.sections) + "</nav>"]
    first = True
    for section in report.sections:
        parts.append(f"<section id='{section.key}' data-section='{section.key}'><h2>{html.escape(section.title)}</h2>")
        if section.text:
            parts.append(f"<p>{html.escape(section.text)}</p>")
        for fig in section.figures:
            body = pio.to_html(_plotly_figure(fig), full_html=False, include_plotlyjs=first, div_id=f"fig-{fig.name}",
                               config={"displaylogo": False})
            parts.append(f"<div class='figure' data-figure='{fig.name}'>{body}</div>")
            first = False
        for name, table in section.tables.items():
            parts.append(f"<details{' open' if section.key in ('summary', 'pareto', 'layers') else ''}>"
                         f"<summary>{html.escape(name)} ({len(table)} rows)</summary>{_table(table)}</details>")
        parts.append("</section>")
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(report.title)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}<script>{SORTING}</script></body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return [path]
