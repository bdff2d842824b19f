"""What to deploy, in one paragraph: the study's pick, how much faster it is than the network
it started from, what it costs in accuracy (on validation, and on test once measured), its size,
and each reference network beside it with which dominates which.

Read from the trials table (trials.csv's rows, final-stage columns merged), so the report, the
end of `edgetune run` and trials.csv can never disagree (tests/study/test_headline.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from edgetune.metrics.objectives import Objective
from edgetune.study.planning.references import reference_label
from edgetune.study.storage.rundir import RunDir


@dataclass(frozen=True)
class Headline:
    """The pick (None when there is none) and the sentences that say it."""

    picked: int | None
    sentences: list[str]
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


def _number(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def _truthy(value: Any) -> bool:
    return str(value) == "True"


def pick_row(frame: pd.DataFrame) -> pd.Series | None:
    """The final stage's pick; else the study's best feasible trial (`rank` 1, by the results'
    one ranking rule)."""
    trials = frame[frame["trial"].astype(str) != "baseline"]
    if "picked" in trials and trials["picked"].map(_truthy).any():
        return trials[trials["picked"].map(_truthy)].iloc[0]
    if "final_val_top1" in frame and frame["final_val_top1"].notna().any():
        return None  # a final stage ran and picked nothing: say so, do not fall back
    first = trials[pd.to_numeric(trials.get("rank"), errors="coerce") == 1] if "rank" in trials else trials.iloc[:0]
    return first.iloc[0] if len(first) else None


def _accuracy(row: pd.Series) -> tuple[float | None, str]:
    """Validation top-1 (after the final training when there was one) and what it was measured on."""
    final = _number(row.get("final_val_top1"))
    return (final, "validation, after the final training") if final is not None else (_number(row.get("top1")),
                                                                                   "validation")


def measured_on(benchmark: dict[str, Any], row: pd.Series | None = None) -> str:
    """The target in words: runtime, device, threads, batch and the pick's precision."""
    precision = row.get("param.precision") if row is not None and "param.precision" in row else None
    precision = precision if isinstance(precision, str) else benchmark.get("precision", "fp32")
    return (f"{benchmark.get('runtime', 'onnxruntime')} {benchmark.get('device', 'cpu')}, "
            f"{benchmark.get('threads', 1)} thread(s), batch {benchmark.get('batch_size', 1)}, {precision}")


def headline(frame: pd.DataFrame, objectives: list[Objective], benchmark: dict[str, Any] | None = None,
             run_dir: Any = None) -> Headline:
    """`benchmark`: the study's settings; `run_dir`, where the pick's own settings are read (a
    sweep may have searched or fixed its precision)."""
    base = frame[frame["trial"].astype(str) == "baseline"].iloc[0]
    row = pick_row(frame)
    if row is None:
        reason = ("no finalist's loss held at the stated confidence" if "final_val_top1" in frame
                  and frame["final_val_top1"].notna().any() else "no trial met every constraint")
        unpruned = {"latency_ratio": 1.0, "top1": _accuracy(base)[0], "test_top1": _number(base.get("test_top1"))}
        lines = _against_references(frame, base, unpruned, "the unpruned network")
        return Headline(None, [f"Nothing to deploy from this study: {reason} (see the table below and trials.csv).",
                               *lines])
    number = int(float(row["trial"]))
    if run_dir is not None:
        benchmark = RunDir(run_dir).trial_benchmark(number) or benchmark
    where = f" on {measured_on(benchmark, row)}" if benchmark is not None else ""
    ratio = _number(row.get("latency_ratio"))
    acc, on = _accuracy(row)
    base_acc, _ = _accuracy(base)
    figures = {"trial": number, "latency_ratio": ratio, "speedup": 1 / ratio if ratio else None, "top1": acc,
               "baseline_top1": base_acc, "test_top1": _number(row.get("test_top1")),
               "baseline_test_top1": _number(base.get("test_top1")), "macs": _number(row.get("macs")),
               "params": _number(row.get("params")), "onnx_bytes": _number(row.get("onnx_bytes")),
               "latency_ms": _number(row.get("latency_ms"))}
    sentences = [f"Deploy trial {number}: {figures['speedup']:.2f}x faster than the unpruned network "
                 f"({ratio:.3f} of its latency{where}, measured in interleaved rounds)"
                 if ratio else f"Deploy trial {number}"]
    if acc is not None and base_acc is not None:
        sentences[0] += f", top-1 {acc:.2f} % against {base_acc:.2f} % on {on} ({acc - base_acc:+.2f} points)"
    test, base_test = figures["test_top1"], figures["baseline_test_top1"]
    if test is not None and base_test is not None:
        sentences[0] += f", {test:.2f} % against {base_test:.2f} % on test (measured once, after the pick)"
    sizes = [f"{figures['macs'] / 1e6:.1f} M MACs" if figures["macs"] else "",
             f"{figures['params'] / 1e3:.0f} k parameters" if figures["params"] else "",
             f"{figures['onnx_bytes'] / 2**20:.2f} MB of ONNX" if figures["onnx_bytes"] else ""]
    sentences[0] += "; " + ", ".join(s for s in sizes if s) + "." if any(sizes) else "."
    if isinstance(flags := row.get("flags"), str) and flags:
        sentences.append(f"Warning on trial {number}: {flags}.")
    sentences += _why(frame, row, objectives) + _against_references(frame, row, figures, "the pick")
    return Headline(number, sentences, figures)


def _why(frame: pd.DataFrame, row: pd.Series, objectives: list[Objective]) -> list[str]:
    """The rule that chose it; with several objectives, the front it was chosen from, end to end
    (a front has no single best: the user's own trade-off may point elsewhere along it)."""
    if "picked" in row and _truthy(row["picked"]):
        return []  # the final stage's own sentence (report) and pick.json say why
    # The ranked trials: the feasible search trials (neither a reference, nor a repeat of an
    # earlier candidate, nor a latency not trusted).
    feasible = int(pd.to_numeric(frame["rank"], errors="coerce").notna().sum()) if "rank" in frame else 0
    goal = "lowest" if objectives[0].goal == "minimize" else "highest"
    if len(objectives) == 1 or "pareto" not in frame:
        return [f"Chosen as the {goal} {objectives[0].metric} of {feasible} feasible trial(s)."]
    front = frame[frame["pareto"].map(_truthy)].copy()
    front["_ratio"] = pd.to_numeric(front.get("latency_ratio"), errors="coerce")
    front["_top1"] = pd.to_numeric(front.get("top1"), errors="coerce")
    said = (f"Chosen as the {goal} {objectives[0].metric} on the front of {len(front)} feasible trade-off(s) "
            f"({', '.join(o.metric for o in objectives)})")
    ends = []
    for column, what, pick in (("_ratio", "fastest", "idxmin"), ("_top1", "most accurate", "idxmax")):
        if front[column].notna().any():
            end = front.loc[getattr(front[column], pick)()]
            if int(float(end["trial"])) != int(float(row["trial"])):
                ends.append(f"the {what} is trial {int(float(end['trial']))} ({end['_ratio']:.3f} of the unpruned "
                            f"latency, top-1 {end['_top1']:.2f} %)")
    return [said + ("; " + " and ".join(ends) + ": the Pareto figure shows the rest." if ends else ".")]


def _against_references(frame: pd.DataFrame, row: pd.Series, figures: dict[str, Any], mine_is: str) -> list[str]:
    """Each reference network beside the pick (or the unpruned network when there is none):
    faster or not, more accurate or not, who dominates."""
    if "reference" not in frame:
        return []
    out = []
    refs = frame[frame["reference"].notna() & (frame["reference"].astype(str) != "baseline")
                 & (frame["state"] == "COMPLETE")]
    for _, ref in refs.drop_duplicates("reference").iterrows():
        name = reference_label(str(ref["reference"]))
        ratio = _number(ref.get("latency_ratio"))
        test = _number(ref.get("test_top1"))
        acc, on = (test, "test") if test is not None and figures["test_top1"] is not None else (_accuracy(ref)[0],
                                                                                              "validation")
        mine = figures["test_top1"] if on == "test" else figures["top1"]
        if ratio is None or acc is None or mine is None or figures["latency_ratio"] is None:
            continue
        faster, better = figures["latency_ratio"] < ratio, mine >= acc
        verdict = (f"{mine_is} dominates it" if faster and better else
                   f"it dominates {mine_is}" + (": deploy it instead" if mine_is == "the pick" else "")
                   if not faster and not better else "neither dominates")
        out.append(f"Reference {name}: {ratio:.3f} of the unpruned latency, {acc:.2f} % on {on}; {verdict}.")
    return out
