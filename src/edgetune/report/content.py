"""What a report contains, decided once: sections of text, tables and figures described as
data. Each renderer (html.py, png.py, markdown.py, csv) draws the same content its own way."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from edgetune.metrics.objectives import Objective
from edgetune.report import analysis
from edgetune.report.labels import LABELS
from edgetune.report.load import RunData
from edgetune.report.sections import Figure, Report, Section
from edgetune.study.planning.references import reference_label
from edgetune.study.records.headline import headline
from edgetune.study.storage.rundir import RunDir
from edgetune.study.trial.clock import STAGES, USEFUL


def _latency_metric(run: RunData) -> str:
    for o in run.objectives:
        if "latency" in o.metric:
            return o.metric
    return "latency_adj_ms" if "latency_adj_ms" in run.frame else "latency_ms"


def _label(metric: str) -> str:
    """An axis in words with its unit (`latency ms (host-adjusted)`, `top-1 %`): the tables' names."""
    if metric in LABELS and LABELS[metric][1] == 1:
        return LABELS[metric][0]
    units = {"_ms": " (ms)", "_mj": " (mJ)"}
    for suffix, unit in units.items():
        if metric.endswith(suffix):
            return metric + unit
    return metric


@dataclass
class _Study:
    """What every section reads: the run's tables and the metrics it will speak of."""

    run: RunData
    bins: int
    latency: str
    metrics: list[str]
    comparison: pd.DataFrame
    feasible: pd.DataFrame
    accuracy: str = "top1"

    @property
    def frame(self) -> pd.DataFrame:
        return self.run.frame

    @property
    def candidates(self) -> pd.DataFrame:
        return self.run.candidates

    @property
    def params(self) -> list[str]:
        return self.run.params

    @property
    def primary(self) -> list[str]:
        return [m for m in (self.latency, self.accuracy) if m in self.metrics]


def build_report(run: RunData, layer_times: Callable[[int], pd.DataFrame | None] | None = None,
                 bins: int = 5) -> Report:
    """`layer_times(trial)` measures per-layer latency of a trial against the baseline (it
    runs the runtime; left out, the section is skipped)."""
    candidates = run.candidates
    metrics = analysis.present(candidates, analysis.REPORT_METRICS)
    feasible = candidates[candidates["feasible"].astype(bool)] if "feasible" in candidates else candidates
    s = _Study(run, bins, _latency_metric(run), metrics, analysis.baseline_comparison(run.frame, run.objectives, metrics),
               feasible)
    pareto, front = _pareto(s)
    sections = [_headline(s), _summary(s), *_final(s), pareto, *_progress(s)]
    if s.params and s.metrics:
        sections += [_correlations(s), _binned(s), _importance(s)]
    sections += [*_screen(s), *_metric_matrix(s), *_stages(s), *_layers(s, layer_times), _listing(s, front)]
    subtitle = f"{run.run_dir} · {len(run.frame) - 1} trials"
    return Report(f"edgetune report: {run.name}", subtitle, sections)


def _headline(s: _Study) -> Section:
    """What to deploy, first: the pick, its speed-up, what it costs, the references beside it."""
    said = headline(s.frame, s.run.objectives, s.run.experiment.get("benchmark") or {}, s.run.run_dir)
    return Section("headline", "What to deploy", said.text)


def _summary(s: _Study) -> Section:
    frame = s.frame
    counted = int((frame["state"] == "COMPLETE").sum())
    repeats = int(frame["duplicate_of"].notna().sum()) if "duplicate_of" in frame else 0
    text = (f"{counted} completed trials ({len(s.candidates)} distinct candidates searched, {len(s.feasible)} feasible"
            + (f", {repeats} repeat(s) of an earlier candidate answered from it" if repeats else "") + "), "
            f"{int((frame['state'] == 'FAIL').sum())} failed, {int((frame['state'] == 'PRUNED').sum())} stopped early. "
            f"Objectives: {', '.join(f'{o.goal} {o.metric}' for o in s.run.objectives)}.")
    text += "".join(f" {line}" for line in _dominance(s))
    return Section("summary", "Baseline, reference and best trials", text, {"baseline_comparison": s.comparison})


FINAL_SHOWN = ["trial", "reference", "latency_ratio", "final_epochs", "final_val_top1", "final_drop",
               "final_drop_upper", "held", "picked", "test_top1"]


def _final(s: _Study) -> list[Section]:
    """The final stage's table: finalists trained again and re-scored on the whole validation
    split, the bound on what each loses, the pick, and test top-1 (taken after the pick)."""
    frame = s.frame
    if "final_val_top1" not in frame:
        return []
    rows = frame[frame["final_val_top1"].notna()]
    table = rows[[c for c in FINAL_SHOWN if c in rows]].reset_index(drop=True)
    pick = RunDir(s.run.run_dir).pick
    blob = json.loads(pick.read_text()) if pick.is_file() else {}
    chosen = blob.get("picked")
    text = ((f"Picked trial {chosen}: " if chosen is not None else "No pick: ") + blob.get("reason", "") + ". "
            "Validation top-1 is on the whole validation split after the final training; the bound is one-sided, "
            "paired on the same images against the unpruned network; test top-1 was measured once, after the pick.")
    if chosen is not None and blob.get("test_top1", {}).get("baseline") is not None:
        test = blob["test_top1"]
        text += f" On test: {test[str(chosen)]:.2f} % against the unpruned {test['baseline']:.2f} %."
    return [Section("final_pick", "Final training and pick", text, {"final_pick": table})]


def _dominance(s: _Study) -> list[str]:
    """For each reference: the feasible trial that beats it on both latency and accuracy, by how
    much, or that none does (and how close the fastest at its accuracy came)."""
    refs = s.comparison[s.comparison["row"].str.startswith("reference")]
    wanted = (s.latency, s.accuracy)
    if not len(refs) or any(m not in s.feasible or m not in refs for m in wanted):
        return []
    trials = s.feasible.assign(_lat=pd.to_numeric(s.feasible[s.latency], errors="coerce"),
                               _acc=pd.to_numeric(s.feasible[s.accuracy], errors="coerce")).dropna(subset=["_lat", "_acc"])
    lines = []
    for _, ref in refs.iterrows():
        lat, acc = float(ref[s.latency]), float(ref[s.accuracy])
        name = ref["row"].removeprefix("reference: ")
        better = trials[(trials["_lat"] <= lat) & (trials["_acc"] >= acc)].sort_values("_lat")
        if len(better):
            b = better.iloc[0]
            lines.append(f"Reference {name} is dominated by trial {b['trial']}: {b['_lat'] / lat:.3f}x its "
                         f"{s.latency}, {b['_acc'] - acc:+.2f} points {s.accuracy}.")
            continue
        close = trials[trials["_acc"] >= acc].sort_values("_lat")
        gap = (f"the fastest trial at least as accurate (trial {close.iloc[0]['trial']}) runs at "
               f"{close.iloc[0]['_lat'] / lat:.3f}x its {s.latency}" if len(close)
               else f"no trial reaches its {s.accuracy} of {acc:.2f}")
        lines.append(f"Reference {name} is not dominated by any feasible trial: {gap}.")
    return lines


def _pareto(s: _Study) -> tuple[Section, pd.DataFrame]:
    candidates, latency, accuracy = s.candidates, s.latency, s.accuracy
    front_objectives = [o for o in s.run.objectives if o.metric in candidates]
    if accuracy in s.metrics and latency in s.metrics:
        front_objectives = [Objective(latency, "minimize"), Objective(accuracy, "maximize")]
    front = analysis.pareto_front(s.feasible, front_objectives) if len(s.feasible) else s.feasible
    shown = [c for c in ["trial", *s.params, *s.metrics] if c in front]
    section = Section("pareto", "Pareto front: accuracy against measured latency",
                      f"{len(front)} trials that no other feasible trial beats on both "
                      f"{' and '.join(o.metric for o in front_objectives)}.",
                      {"pareto_front": front[shown].rename(columns=lambda c: c.removeprefix("param."))})
    if len(front_objectives) == 2:
        x, y = front_objectives[0].metric, front_objectives[1].metric
        points = candidates.assign(status=candidates.get("feasible", True).map({True: "feasible", False: "infeasible"}))
        comparison = s.comparison
        marks = comparison[comparison["row"].str.startswith(("unpruned", "reference"))].rename(columns={"row": "label"})
        if y == s.accuracy:
            marks = pd.concat([marks, _finalists(s, x)], ignore_index=True)
        limits = _limits(s, x, y)
        y_range, hidden = _zoom(points, s.feasible, marks, y, [v for axis, v, _ in limits if axis == "y"])
        title = f"{_label(y)} against {_label(x)}" + (f" (zoomed to the feasible trials: {hidden} outside)"
                                                     if hidden else "")
        section.figures.append(Figure("pareto", title, "scatter", points, x, [y], _label(x), _label(y),
                                      group="status", marks=marks, line=front, limits=limits, y_range=y_range))
    return section, front


def _finalists(s: _Study, x: str) -> pd.DataFrame:
    """The final stage's re-scored finalists as marks on the front: top-1 on the whole validation
    split after the final training, with the bound on what each may lose in its label."""
    frame = s.frame
    if "final_val_top1" not in frame or x not in frame:
        return pd.DataFrame(columns=["label", x, s.accuracy])
    rows = frame[frame["final_val_top1"].notna()]
    rows = rows[~rows.get("state", pd.Series("", index=rows.index)).eq("BASELINE")]
    labels = []
    for _, r in rows.iterrows():
        name = (reference_label(str(r["reference"])) if isinstance(r.get("reference"), str) and r["reference"]
                else f"trial {r['trial']}")
        bound = r.get("final_drop_upper")
        labels.append(f"final: {name}" + (f" (loses at most {bound:.2f})" if pd.notna(bound) else ""))
    return pd.DataFrame({"label": labels, x: rows[x].to_numpy(), s.accuracy: rows["final_val_top1"].to_numpy()})


def _limits(s: _Study, x: str, y: str) -> list[tuple[str, float, str]]:
    """The study's constraints on the two axes, and the protocol's accuracy floor."""
    sweep = s.run.sweep
    out = []
    for c in sweep.get("constraints") or []:
        axis = "x" if c.get("metric") == x else "y" if c.get("metric") == y else None
        for bound in ("min", "max"):
            if axis and c.get(bound) is not None:
                out.append((axis, float(c[bound]), f"{c['metric']} {bound} {c[bound]:g}"))
    protocol, base = sweep.get("protocol") or {}, s.run.baseline.get(y)
    if protocol.get("name") == "accuracy-guaranteed" and y == s.accuracy and base is not None:
        drop = float(protocol.get("max_accuracy_drop", 1.0))
        out.append(("y", base - drop, f"at most {drop:g} point(s) below the unpruned network"))
    return out


def _zoom(points: pd.DataFrame, feasible: pd.DataFrame, marks: pd.DataFrame, y: str, floors: list[float]
          ) -> tuple[tuple[float, float] | None, int]:
    """A y range around the feasible trials, the references and the constraint lines, so that one
    ruined candidate does not flatten the front; how many trials fall outside it."""
    shown = [*pd.to_numeric(feasible.get(y), errors="coerce").dropna().tolist(),
             *pd.to_numeric(marks.get(y), errors="coerce").dropna().tolist(), *floors]
    if len(shown) < 2:
        return None, 0
    low, high = min(shown), max(shown)
    pad = max(0.15 * (high - low), 0.25)
    span = (low - pad, high + pad)
    values = pd.to_numeric(points[y], errors="coerce").dropna()
    hidden = int(((values < span[0]) | (values > span[1])).sum())
    return (span, hidden) if hidden else (None, 0)


def _progress(s: _Study) -> list[Section]:
    sections = []
    first, candidates, latency = s.run.objectives[0], s.candidates, s.latency
    if first.metric in s.frame:
        progress = analysis.best_so_far(candidates, first.metric, first.goal)
        drawn = pd.DataFrame({"trial": progress["trial"],
                              "feasible trial": progress["value"].where(progress["feasible"]),
                              "infeasible trial": progress["value"].where(~progress["feasible"]),
                              "best feasible": progress["best"]})
        sections.append(Section("progress", "Best so far", f"Best {first.metric} after each trial ({first.goal}), "
                                "over the feasible trials only: an infeasible one is drawn apart and never counts.",
                                {"best_so_far": progress},
                                [Figure("best_so_far", f"best feasible {first.metric} so far", "line", drawn,
                                        "trial", ["feasible trial", "infeasible trial", "best feasible"], "trial",
                                        _label(first.metric))]))
    if latency in s.metrics:
        hist = analysis.runs_per_bin(candidates, latency, bins=min(20, max(5, len(candidates) // 3)))
        hist["band"] = [f"{lo:.3g}-{hi:.3g}" for lo, hi in zip(hist["lo"], hist["hi"], strict=True)]
        sections.append(Section("histogram", f"Trials per {latency} band", "",
                                {"runs_per_latency": hist},
                                [Figure("runs_per_latency", f"trials per {latency} band", "bar", hist, "band", ["n"],
                                        _label(latency), "trials")]))
    return sections


def finetuned_overhead(table: pd.DataFrame) -> tuple[int, float, float] | None:
    """Over the trials that fine-tuned (references and repeats do not, and would count as all
    overhead): how many, the overhead's share of their summed seconds, and its median share."""
    if "seconds_finetune" not in table:
        return None
    tuned = table[pd.to_numeric(table["seconds_finetune"], errors="coerce") > 0]
    if not len(tuned):
        return None
    useful = sum(tuned[c].fillna(0.0).sum() for c in (f"seconds_{u}" for u in USEFUL) if c in tuned)
    return len(tuned), float(1 - useful / tuned["seconds_trial"].sum()), float(tuned["overhead_share"].median())


def _stages(s: _Study) -> list[Section]:
    """Where each trial's time went, stage by stage; the overhead is all but recovery, training
    and scoring."""
    columns = [f"seconds_{name}" for name in STAGES if f"seconds_{name}" in s.frame]
    timed = s.frame[s.frame["seconds_trial"].notna()] if "seconds_trial" in s.frame else s.frame.iloc[:0]
    if not columns or not len(timed):
        return []
    table = timed[["trial", *columns, "seconds_trial", "overhead_share"]].reset_index(drop=True)
    drawn = table[["trial", *columns]].rename(columns=lambda c: c.removeprefix("seconds_")).fillna(0.0)
    share = pd.to_numeric(table["overhead_share"], errors="coerce")
    text = (f"Seconds per stage of each trial; the overhead (everything but fine-tuning and evaluating) is "
            f"{share.median():.0%} of a trial at the median, {share.max():.0%} at most.")
    tuned = finetuned_overhead(table)
    if tuned is not None:
        text += (f" Over the {tuned[0]} fine-tuned trials it is {tuned[1]:.1%} of their summed time "
                 f"({tuned[2]:.1%} at the median).")
    return [Section("stages", "Where the time went", text, {"stage_seconds": table},
                    [Figure("stage_seconds", "seconds per stage", "bar", drawn, "trial",
                            [c.removeprefix("seconds_") for c in columns], "trial", "seconds", stacked=True)])]


def _screen(s: _Study) -> list[Section]:
    """How far the cheap scores (as pruned, after re-estimating norm statistics, after a short
    fine-tuning) can be trusted to rank candidates as the dearer ones do."""
    agreement = analysis.screen_agreement(s.candidates)
    if agreement.empty:
        return []
    text = ("Kendall's tau between each cheap score and a later one over the candidates that have both: 1 means "
            "the cheap score orders the candidates exactly as the later one, 0 that it tells nothing. "
            "top1_as_pruned is scored with the unpruned network's norm statistics, top1_before_ft after they "
            "were re-estimated, top1 after fine-tuning, final_val_top1 after the final stage's training.")
    section = Section("screen", "How well the screen predicted", text, {"screen_agreement": agreement})
    pairs = [(a, b) for a, b in (("top1_before_ft", "top1"), ("top1", "final_val_top1"))
             if ((agreement["screen"] == a) & (agreement["against"] == b)).any()]
    for cheap, later in pairs:
        data = analysis.screen_pair(s.candidates, cheap, later)[["trial", cheap, later]]
        tau = agreement[(agreement["screen"] == cheap) & (agreement["against"] == later)]["kendall_tau"].iloc[0]
        section.figures.append(Figure(f"screen-{cheap}-{later}", f"{_label(later)} against {_label(cheap)} "
                                      f"(Kendall tau {tau:.2f})", "scatter", data, cheap, [later], _label(cheap),
                                      _label(later)))
    return [section]


def _correlations(s: _Study) -> Section:
    corr = analysis.correlations(s.candidates, s.params, s.metrics)
    heat = corr.pivot(index="param", columns="metric", values="spearman").reindex(
        index=[p.removeprefix("param.") for p in s.params], columns=s.metrics)
    return Section("correlations", "Parameter-metric correlation",
                   "Pearson and Spearman coefficients over completed trials; n counts the trials "
                   "that have both values.", {"correlations": corr},
                   [Figure("correlations", "Spearman correlation, parameter with metric", "heatmap",
                           heat, x_label="metric", y_label="parameter")])


def _binned(s: _Study) -> Section:
    binned = Section("binned", "Binned means", f"Mean of each metric in {s.bins} equal-width bins of each "
                     "parameter (with the trial count per bin).")
    for p in s.params:
        if not pd.api.types.is_numeric_dtype(s.candidates[p]):
            continue
        for m in s.primary:
            table = analysis.binned_means(s.candidates, p, m, s.bins)
            table["bin"] = [f"{lo:.2f}-{hi:.2f}" for lo, hi in zip(table["lo"], table["hi"], strict=True)]
            name = f"binned_{p.removeprefix('param.')}_{m}"
            binned.tables[name] = table
            binned.figures.append(Figure(name, f"mean {m} by {p.removeprefix('param.')}", "bar", table, "bin",
                                         ["mean"], p.removeprefix("param."), _label(m)))
    return binned


def _importance(s: _Study) -> Section:
    goal = {o.metric: o.goal for o in s.run.objectives}
    importance = Section("importance", "Parameter importance",
                         "fANOVA and PED-ANOVA (Optuna) and a random forest's impurity importance; each column "
                         "sums to 1.")
    for m in s.primary:
        table = analysis.importances(s.candidates, s.params, m,
                                     goal.get(m, "maximize" if m == s.accuracy else "minimize"))
        if len(table.columns) > 1:
            importance.tables[f"importance_{m}"] = table
            importance.figures.append(Figure(f"importance_{m}", f"importance for {m}", "bar", table, "param",
                                             [c for c in table.columns if c != "param"], "parameter", "importance"))
    return importance


def _metric_matrix(s: _Study) -> list[Section]:
    matrix_metrics = analysis.present(s.candidates, ["macs", "params", "model_bytes", s.latency, "total_latency_ms",
                                                     "throughput", "energy_mj", s.accuracy])
    if len(matrix_metrics) < 2:
        return []
    matrix = analysis.metric_matrix(s.candidates, list(dict.fromkeys(matrix_metrics)))
    return [Section("metric_matrix", "Metric correlation",
                    "Spearman correlation between metrics: how well MACs, parameters or size predict "
                    "the latency measured on the device.", {"metric_matrix": matrix.reset_index(names="metric")},
                    [Figure("metric_matrix", "Spearman correlation between metrics", "heatmap", matrix)])]


def _best_rows(s: _Study) -> pd.DataFrame:
    return s.comparison[s.comparison["row"].str.startswith("trial ")]


def _layers(s: _Study, layer_times: Callable[[int], pd.DataFrame | None] | None) -> list[Section]:
    best = _best_rows(s)
    number = int(best.iloc[0]["row"].split()[1]) if len(best) else None
    layers = layer_times(number) if layer_times is not None and number is not None else None
    if layers is None:
        return []
    top = layers.head(15)
    return [Section("layers", f"Per-layer latency: trial {number} against the baseline",
                    "Mean time per inference of each ONNX node, measured now by the runtime's profiler "
                    "on the baseline's and the trial's files (single thread).",
                    {"layer_latency": layers},
                    [Figure("layer_latency", f"per-layer latency, trial {number} and baseline", "bar",
                            top, "layer", ["baseline_ms", "trial_ms"], "layer", "ms")])]


def _listing(s: _Study, front: pd.DataFrame) -> Section:
    best = _best_rows(s)
    chosen = list(dict.fromkeys([*best["row"].str.split().str[1].tolist(), *front["trial"].astype(str).tolist()]))
    return Section("listing", "Chosen trials", "The best trials and the Pareto front with their parameters "
                   "and metrics.", {"listing": analysis.listing(s.frame, chosen, s.params, s.metrics)})
