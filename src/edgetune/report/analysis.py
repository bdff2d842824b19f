"""What a study says, as tables: each function takes the trials frame (one row per trial, the
`param.*` columns and metric columns of trials.csv) and returns a pandas DataFrame. No drawing
here, so every figure and number in a report can be checked on its own."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from edgetune.errors import MissingExtraError
from edgetune.metrics.objectives import Objective
from edgetune.metrics.objectives import pareto_front as front_of
from edgetune.study.planning.references import reference_label

# The metrics a report discusses, in the order people read them; absent ones are skipped.
REPORT_METRICS = ["top1", "top1_before_ft", "latency_ms", "latency_adj_ms", "latency_ratio", "total_latency_ms",
                  "throughput", "energy_mj", "macs", "params", "model_bytes", "macs_ratio", "size_ratio"]


def present(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """Columns that exist and hold at least two distinct numbers."""
    out = []
    for c in columns:
        if c in frame and pd.to_numeric(frame[c], errors="coerce").dropna().nunique() >= 2:
            out.append(c)
    return out


def _numeric(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    return frame[list(columns)].apply(pd.to_numeric, errors="coerce")


def correlations(frame: pd.DataFrame, params: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """Pearson and Spearman correlation of every parameter with every metric, each over the
    trials that have both (the count says how many): the seed's tables 4.1-4.3."""
    data = _numeric(frame, [*params, *metrics])
    rows = []
    for p in params:
        for m in metrics:
            pair = data[[p, m]].dropna()
            n = len(pair)
            varied = n >= 3 and pair[p].nunique() > 1 and pair[m].nunique() > 1
            rows.append({"param": p.removeprefix("param."), "metric": m, "n": n,
                         "pearson": pair[p].corr(pair[m], method="pearson") if varied else np.nan,
                         "spearman": pair[p].corr(pair[m], method="spearman") if varied else np.nan})
    return pd.DataFrame(rows, columns=["param", "metric", "n", "pearson", "spearman"])


# Each cheap score a study records, and the later, dearer ones it is meant to predict: the
# screen is worth trusting when its order of the candidates is theirs.
SCREENS = [("top1_as_pruned", "top1_before_ft"), ("top1_as_pruned", "top1"), ("top1_before_ft", "top1"),
           ("top1_as_pruned", "final_val_top1"), ("top1_before_ft", "final_val_top1"), ("top1", "final_val_top1")]


def screen_pair(frame: pd.DataFrame, cheap: str, later: str) -> pd.DataFrame:
    """The candidates that have both scores, as numbers (the frame's other columns kept). Against
    `top1`, only those fine-tuned: a candidate held back at rung 0 has its rung-0 score there."""
    if "rung" in frame and later == "top1":
        frame = frame[pd.to_numeric(frame["rung"], errors="coerce") != 0]
    frame = frame.assign(**{c: pd.to_numeric(frame[c], errors="coerce") for c in (cheap, later)})
    return frame.dropna(subset=[cheap, later])


def screen_agreement(frame: pd.DataFrame) -> pd.DataFrame:
    """Kendall's tau between each cheap score and each later one over the candidates that have
    both (n says how many, screen_pair which): 1 when the screen orders candidates exactly as the
    later score does, 0 when it tells nothing. Pairs that are the same figure (no fine-tuning) or
    have fewer than three candidates are left out."""
    rows = []
    for cheap, later in SCREENS:
        if cheap not in frame or later not in frame:
            continue
        pair = screen_pair(frame, cheap, later)
        if len(pair) < 3 or (pair[cheap] == pair[later]).all() or pair[cheap].nunique() < 2 or pair[later].nunique() < 2:
            continue
        rows.append({"screen": cheap, "against": later, "n": len(pair),
                     "kendall_tau": pair[cheap].corr(pair[later], method="kendall")})
    return pd.DataFrame(rows, columns=["screen", "against", "n", "kendall_tau"])


def binned_means(frame: pd.DataFrame, param: str, metric: str, bins: int = 5) -> pd.DataFrame:
    """The metric's mean, spread and count in equal-width bins of the parameter (figure 4.1)."""
    data = _numeric(frame, [param, metric]).dropna()
    if data.empty:
        return pd.DataFrame(columns=["param", "lo", "hi", "mean", "std", "n"])
    lo, hi = float(data[param].min()), float(data[param].max())
    edges = np.linspace(lo, hi, bins + 1) if hi > lo else np.array([lo, lo + 1e-12])
    which = np.clip(np.searchsorted(edges, data[param].to_numpy(), side="right") - 1, 0, len(edges) - 2)
    rows = []
    for b in range(len(edges) - 1):
        values = data[metric].to_numpy()[which == b]
        rows.append({"param": param.removeprefix("param."), "lo": edges[b], "hi": edges[b + 1],
                     "mean": float(values.mean()) if len(values) else np.nan,
                     "std": float(values.std(ddof=1)) if len(values) > 1 else np.nan, "n": len(values)})
    return pd.DataFrame(rows)


def pareto_front(frame: pd.DataFrame, objectives: Sequence[Objective]) -> pd.DataFrame:
    """Rows no other row beats on every objective (ties kept), sorted by the first objective."""
    cols = [o.metric for o in objectives]
    data = _numeric(frame, cols).dropna()
    keep = front_of([(i, [float(v) for v in row]) for i, row in zip(data.index, data[cols].to_numpy(), strict=True)],
                    list(objectives))
    return frame.loc[keep].sort_values(cols[0], ascending=objectives[0].goal == "minimize")


def best_so_far(frame: pd.DataFrame, metric: str, goal: str) -> pd.DataFrame:
    """Each trial's value and the best *feasible* value seen up to it, in trial order (figure
    4.3): a trial that broke a constraint (or whose latency was not to be trusted) is drawn, but
    never becomes the best; the line starts at the first feasible trial."""
    columns = ["trial", metric, *(["feasible"] if "feasible" in frame else [])]
    data = frame[columns].copy()
    data[metric] = pd.to_numeric(data[metric], errors="coerce")
    data = data.dropna(subset=[metric]).sort_values("trial")
    feasible = (data["feasible"].astype(str) == "True") if "feasible" in data else pd.Series(True, index=data.index)
    eligible = data[metric].where(feasible)
    best = (eligible.cummin() if goal == "minimize" else eligible.cummax()).ffill()
    return pd.DataFrame({"trial": data["trial"].to_numpy(), "value": data[metric].to_numpy(), "best": best.to_numpy(),
                         "feasible": feasible.to_numpy()})


def metric_matrix(frame: pd.DataFrame, metrics: Sequence[str], method: str = "spearman") -> pd.DataFrame:
    """Correlation of the metrics with each other (the second seed's figure 6.1): does MAC count
    predict latency on this device?"""
    return _numeric(frame, metrics).corr(method=method)


def importances(frame: pd.DataFrame, params: Sequence[str], metric: str, goal: str = "minimize",
                methods: Sequence[str] = ("fanova", "ped-anova", "random-forest"), seed: int = 0) -> pd.DataFrame:
    """How much each parameter explains the metric, by Optuna's fANOVA and PED-ANOVA (on an
    in-memory study rebuilt from the rows) and a random forest's impurity importance; each
    method's column sums to 1."""
    import optuna

    data = frame[[*params, metric]].copy()
    data[metric] = pd.to_numeric(data[metric], errors="coerce")
    data = data.dropna()
    table = pd.DataFrame(index=[p.removeprefix("param.") for p in params])
    if len(data) < 4:
        return table.reset_index(names="param")
    numeric = {p: pd.api.types.is_numeric_dtype(data[p]) for p in params}
    distributions = {
        p.removeprefix("param."): (optuna.distributions.FloatDistribution(float(data[p].min()), float(data[p].max()))
                                   if numeric[p] else optuna.distributions.CategoricalDistribution(
                                       sorted(data[p].astype(str).unique())))
        for p in params}
    study = optuna.create_study(direction=goal)
    for _, row in data.iterrows():
        values = {p.removeprefix("param."): (float(row[p]) if numeric[p] else str(row[p])) for p in params}
        study.add_trial(optuna.trial.create_trial(params=values, distributions=distributions, value=float(row[metric])))
    evaluators = {"fanova": lambda: optuna.importance.FanovaImportanceEvaluator(seed=seed),
                  "ped-anova": lambda: optuna.importance.PedAnovaImportanceEvaluator()}
    for method in methods:
        if method == "random-forest":
            try:
                from sklearn.ensemble import RandomForestRegressor
            except ImportError:
                raise MissingExtraError("scikit-learn", "report") from None

            x = np.column_stack([data[p].to_numpy(float) if numeric[p] else
                                 pd.Categorical(data[p].astype(str)).codes for p in params])
            forest = RandomForestRegressor(n_estimators=200, random_state=seed).fit(x, data[metric].to_numpy(float))
            table[method] = forest.feature_importances_ / max(forest.feature_importances_.sum(), 1e-12)
        else:
            scores = optuna.importance.get_param_importances(study, evaluator=evaluators[method](), normalize=True)
            table[method] = pd.Series(scores)
    table = table.fillna(0.0)
    return table.sort_values(next(iter(methods)), ascending=False).reset_index(names="param")


def baseline_comparison(frame: pd.DataFrame, objectives: Sequence[Objective], metrics: Sequence[str],
                        best: int = 3) -> pd.DataFrame:
    """The unpruned baseline, each reference recipe (mean and spread over its repeats, before
    and after fine-tuning) and the best searched trials, side by side (table 4.4)."""
    rows = []
    base = frame[frame["state"] == "BASELINE"]
    if len(base):
        rows.append({"row": "unpruned baseline", "n": 1, **{m: base.iloc[0].get(m) for m in metrics}})
    done = frame[frame["state"] == "COMPLETE"]
    if "reference" in done:
        for name, group in done[done["reference"].notna()].groupby("reference"):
            numbers = _numeric(group, [m for m in metrics if m in group])
            rows.append({"row": f"reference: {reference_label(str(name))}", "n": len(group), **numbers.mean().to_dict(),
                         **{f"{m}_std": v for m, v in numbers.std(ddof=1).items() if len(group) > 1}})
        done = done[done["reference"].isna()]
    if "feasible" in done:
        done = done[done["feasible"].astype(bool)]
    first = objectives[0]
    ranked = done.assign(_key=pd.to_numeric(done[first.metric], errors="coerce")).dropna(subset=["_key"])
    ranked = ranked.sort_values("_key", ascending=first.goal == "minimize").head(best)
    for _, r in ranked.iterrows():
        rows.append({"row": f"trial {r['trial']}", "n": 1, **{m: r.get(m) for m in metrics}})
    table = pd.DataFrame(rows)
    return table[[c for c in ["row", "n", *metrics, *[f"{m}_std" for m in metrics]] if c in table]]


def listing(frame: pd.DataFrame, trials: Sequence[int | str], params: Sequence[str],
            metrics: Sequence[str]) -> pd.DataFrame:
    """Chosen trials with their parameters and metrics (the seed's appendix A.1)."""
    chosen = frame[frame["trial"].astype(str).isin([str(t) for t in trials])]
    out = chosen[["trial", *[c for c in [*params, *metrics] if c in chosen]]]
    return out.rename(columns={p: p.removeprefix("param.") for p in params})


def runs_per_bin(frame: pd.DataFrame, metric: str, bins: int = 20) -> pd.DataFrame:
    """How many trials landed in each band of the metric (figure 4.2: runs per latency)."""
    values = pd.to_numeric(frame[metric], errors="coerce").dropna().to_numpy()
    if len(values) == 0:
        return pd.DataFrame(columns=["lo", "hi", "n"])
    counts, edges = np.histogram(values, bins=bins)
    return pd.DataFrame({"lo": edges[:-1], "hi": edges[1:], "n": counts})


def layer_latency(baseline: Sequence, trial: Sequence) -> pd.DataFrame:
    """Per-layer times (runtime LayerTime lists) of a trial against the baseline, by layer name;
    layers removed or fused away in one of them show as missing on that side."""
    b = pd.DataFrame([(t.name, t.op_type, t.ms) for t in baseline], columns=["layer", "op", "baseline_ms"])
    c = pd.DataFrame([(t.name, t.op_type, t.ms) for t in trial], columns=["layer", "op_trial", "trial_ms"])
    table = b.merge(c, on="layer", how="outer")
    table["op"] = table["op"].fillna(table.pop("op_trial"))
    table["ratio"] = table["trial_ms"] / table["baseline_ms"]
    return table.sort_values("baseline_ms", ascending=False, na_position="last").reset_index(drop=True)
