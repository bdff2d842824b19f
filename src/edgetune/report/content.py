"""What a report contains, decided once: sections of text, tables and figures described as
data. Each renderer (html.py, png.py, markdown.py, csv) draws the same content its own way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from edgetune.report import analysis
from edgetune.report.load import RunData

FigureKind = Literal["scatter", "line", "bar", "heatmap"]


@dataclass
class Figure:
    name: str  # file stem and element id: figures/<name>.png
    title: str
    kind: FigureKind
    data: pd.DataFrame
    x: str = ""
    y: list[str] = field(default_factory=list)
    x_label: str = ""
    y_label: str = ""
    group: str = ""  # scatter: a column whose values colour the points
    marks: pd.DataFrame | None = None  # scatter: labelled reference points (column "label")
    line: pd.DataFrame | None = None  # scatter: the Pareto front, drawn through its points


@dataclass
class Section:
    key: str
    title: str
    text: str = ""
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)


@dataclass
class Report:
    title: str
    subtitle: str
    sections: list[Section]

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: t for s in self.sections for name, t in s.tables.items()}

    def figures(self) -> list[Figure]:
        return [f for s in self.sections for f in s.figures]


def _latency_metric(run: RunData) -> str:
    for o in run.objectives:
        if "latency" in o.metric:
            return o.metric
    return "latency_adj_ms" if "latency_adj_ms" in run.frame else "latency_ms"


def _label(metric: str) -> str:
    units = {"_ms": " (ms)", "top1": " (%)", "top1_before_ft": " (%)", "_mj": " (mJ)"}
    for suffix, unit in units.items():
        if metric.endswith(suffix):
            return metric + unit
    return metric


def build_report(run: RunData, layer_times: Callable[[int], pd.DataFrame | None] | None = None,
                 bins: int = 5) -> Report:
    """`layer_times(trial)` measures per-layer latency of a trial against the baseline (it
    runs the runtime; left out, the section is skipped)."""
    frame, params = run.frame, run.params
    candidates = run.candidates
    latency = _latency_metric(run)
    accuracy = "top1"
    metrics = analysis.present(candidates, analysis.REPORT_METRICS)
    primary = [m for m in (latency, accuracy) if m in metrics]
    goal = {o.metric: o.goal for o in run.objectives}
    first = run.objectives[0]
    sections: list[Section] = []

    comparison = analysis.baseline_comparison(frame, run.objectives, metrics)
    feasible = candidates[candidates["feasible"].astype(bool)] if "feasible" in candidates else candidates
    counted = int((frame["state"] == "COMPLETE").sum())
    text = (f"{counted} completed trials ({len(candidates)} searched, {len(feasible)} feasible), "
            f"{int((frame['state'] == 'FAIL').sum())} failed, {int((frame['state'] == 'PRUNED').sum())} stopped early. "
            f"Objectives: {', '.join(f'{o.goal} {o.metric}' for o in run.objectives)}.")
    sections.append(Section("summary", "Baseline, reference and best trials", text,
                            {"baseline_comparison": comparison}))

    front_objectives = [o for o in run.objectives if o.metric in candidates]
    if accuracy in metrics and latency in metrics:
        from edgetune.objectives import Objective

        front_objectives = [Objective(latency, "minimize"), Objective(accuracy, "maximize")]
    front = analysis.pareto_front(feasible, front_objectives) if len(feasible) else feasible
    shown = [c for c in ["trial", *params, *metrics] if c in front]
    section = Section("pareto", "Pareto front: accuracy against measured latency",
                      f"{len(front)} trials that no other feasible trial beats on both "
                      f"{' and '.join(o.metric for o in front_objectives)}.",
                      {"pareto_front": front[shown].rename(columns=lambda c: c.removeprefix("param."))})
    if len(front_objectives) == 2:
        x, y = front_objectives[0].metric, front_objectives[1].metric
        points = candidates.assign(status=candidates.get("feasible", True).map({True: "feasible", False: "infeasible"}))
        marks = comparison[comparison["row"].str.startswith(("unpruned", "reference"))].rename(columns={"row": "label"})
        section.figures.append(Figure("pareto", f"{y} against {x}", "scatter", points, x, [y], _label(x), _label(y),
                                      group="status", marks=marks, line=front))
    sections.append(section)

    if first.metric in frame:
        progress = analysis.best_so_far(candidates, first.metric, first.goal)
        sections.append(Section("progress", "Best so far", f"Best {first.metric} after each trial ({first.goal}).",
                                {"best_so_far": progress},
                                [Figure("best_so_far", f"best {first.metric} so far", "line", progress, "trial",
                                        ["value", "best"], "trial", _label(first.metric))]))
    if latency in metrics:
        hist = analysis.runs_per_bin(candidates, latency, bins=min(20, max(5, len(candidates) // 3)))
        hist["band"] = [f"{lo:.3g}-{hi:.3g}" for lo, hi in zip(hist["lo"], hist["hi"], strict=True)]
        sections.append(Section("histogram", f"Trials per {latency} band", "",
                                {"runs_per_latency": hist},
                                [Figure("runs_per_latency", f"trials per {latency} band", "bar", hist, "band", ["n"],
                                        _label(latency), "trials")]))

    if params and metrics:
        corr = analysis.correlations(candidates, params, metrics)
        heat = corr.pivot(index="param", columns="metric", values="spearman").reindex(
            index=[p.removeprefix("param.") for p in params], columns=metrics)
        sections.append(Section("correlations", "Parameter-metric correlation",
                                "Pearson and Spearman coefficients over completed trials; n counts the trials "
                                "that have both values.", {"correlations": corr},
                                [Figure("correlations", "Spearman correlation, parameter with metric", "heatmap",
                                        heat, x_label="metric", y_label="parameter")]))
        binned = Section("binned", "Binned means", f"Mean of each metric in {bins} equal-width bins of each "
                         "parameter (with the trial count per bin).")
        for p in params:
            if not pd.api.types.is_numeric_dtype(candidates[p]):
                continue
            for m in primary:
                table = analysis.binned_means(candidates, p, m, bins)
                table["bin"] = [f"{lo:.2f}-{hi:.2f}" for lo, hi in zip(table["lo"], table["hi"], strict=True)]
                name = f"binned_{p.removeprefix('param.')}_{m}"
                binned.tables[name] = table
                binned.figures.append(Figure(name, f"mean {m} by {p.removeprefix('param.')}", "bar", table, "bin",
                                             ["mean"], p.removeprefix("param."), _label(m)))
        sections.append(binned)
        importance = Section("importance", "Parameter importance",
                             "fANOVA and PED-ANOVA (Optuna) and a random forest's impurity importance; each column "
                             "sums to 1.")
        for m in primary:
            table = analysis.importances(candidates, params, m, goal.get(m, "maximize" if m == accuracy else "minimize"))
            if len(table.columns) > 1:
                importance.tables[f"importance_{m}"] = table
                importance.figures.append(Figure(f"importance_{m}", f"importance for {m}", "bar", table, "param",
                                                 [c for c in table.columns if c != "param"], "parameter", "importance"))
        sections.append(importance)

    matrix_metrics = analysis.present(candidates, ["macs", "params", "model_bytes", latency, "total_latency_ms",
                                                   "throughput", "energy_mj", accuracy])
    if len(matrix_metrics) >= 2:
        matrix = analysis.metric_matrix(candidates, list(dict.fromkeys(matrix_metrics)))
        sections.append(Section("metric_matrix", "Metric correlation",
                                "Spearman correlation between metrics: how well MACs, parameters or size predict "
                                "the latency measured on the device.", {"metric_matrix": matrix.reset_index(names="metric")},
                                [Figure("metric_matrix", "Spearman correlation between metrics", "heatmap", matrix)]))

    best = comparison[comparison["row"].str.startswith("trial ")]
    number = int(best.iloc[0]["row"].split()[1]) if len(best) else None
    layers = layer_times(number) if layer_times is not None and number is not None else None
    if layers is not None:
        top = layers.head(15)
        sections.append(Section("layers", f"Per-layer latency: trial {number} against the baseline",
                                "Mean time per inference of each ONNX node, measured now by the runtime's profiler "
                                "on the baseline's and the trial's files (single thread).",
                                {"layer_latency": layers},
                                [Figure("layer_latency", f"per-layer latency, trial {number} and baseline", "bar",
                                        top, "layer", ["baseline_ms", "trial_ms"], "layer", "ms")]))

    chosen = list(dict.fromkeys([*best["row"].str.split().str[1].tolist(), *front["trial"].astype(str).tolist()]))
    sections.append(Section("listing", "Chosen trials", "The best trials and the Pareto front with their parameters "
                            "and metrics.", {"listing": analysis.listing(frame, chosen, params, metrics)}))
    subtitle = f"{run.run_dir} · {len(frame) - 1} trials"
    return Report(f"edgetune report: {run.name}", subtitle, sections)
