"""Trials per hour at experiment-1 settings (the first seed's schedule and figure-3.9 ranges on
ResNet-56, no fine-tuning, top-1 on 2,000 validation images, ONNX Runtime one thread batch 1):
the path before issue #21 beside today's, in one run.

  before  `score_with: pytorch` (PyTorch eager scores each candidate) and
          `benchmark.throughput_stable: null` (throughput timed for the full throughput_seconds);
  now     the defaults: the exported file scores the images in ONNX Runtime on every core, and
          throughput is timed until it is known to 1 %.

`--compare rejection` times instead a constrained search (top-1 at least `--floor`, 90 % by
default) without and with early rejection (`early_stop.reject_confidence: null` against the
default 0.999): a candidate whose top-1 cannot reach the floor stops being scored once a bound on
the images seen says so, and (top-1 being only the floor, not the objective) one surely over it
stops too. Printed beside the speed: how many candidates each path judged feasible, whether every
candidate rejected early was infeasible when scored on every image, and every one accepted early
feasible.

Both use a random sampler with the same seed, so they build exactly the same candidates; the
studies alternate (before, now, before, now...) so a slow spell of the host hits both. Printed:
each path's seconds per trial (first trial's start to last trial's end, over the trials), trials
per hour, the ratio now/before, the mean seconds per stage (study/trial/clock.py), and the largest
top-1 difference between the two paths on the same candidate (must be under 0.05 point).

    python benchmarks/bench_trials_per_hour.py [--trials 15] [--rounds 2] [--compare rejection] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from _common import ROOT, machine

from edgetune.config.experiment import load_experiment
from edgetune.search.base import is_feasible
from edgetune.study import run_study

COMPARISONS = {
    "scoring": {"before": {"score_with": "pytorch", "throughput_stable": None}, "now": {}},
    "rejection": {"before": {"floor": True, "reject_confidence": None}, "now": {"floor": True}},
}
STAGES = ["setup", "prune", "evaluate", "export", "convert", "benchmark"]


def experiment(work: Path, trials: int, path: dict, floor: float = 90.0, as_pruned: bool = True) -> Path:
    raw = yaml.safe_load((ROOT / "experiments" / "exp1.experiment.yaml").read_text())
    sweep = yaml.safe_load((ROOT / "examples" / "resnet56-fmnist" / "figure3.9.sweep.yaml").read_text())
    sweep["method"] = "random"
    raw.update(model={"checkpoint": str(ROOT / "models" / "resnet56-fmnist.pt")}, sweep=sweep, trials=trials,
               recipe=str(ROOT / "examples" / "resnet56-fmnist" / "resnet56-table3.2.schedule.yaml"),
               run_dir=str(work / "run"))
    if not as_pruned:
        raw["calibrate"] = {"score_as_pruned": False}
    if path.get("floor"):
        sweep["constraints"] = [{"metric": "top1", "min": floor}]
    if "reject_confidence" in path:
        sweep["early_stop"] = {"reject_confidence": path["reject_confidence"]}
    if "score_with" in path:
        raw["score_with"] = path["score_with"]
    if "throughput_stable" in path:
        raw["benchmark"]["throughput_stable"] = path["throughput_stable"]
    out = work / "experiment.yaml"
    out.write_text(yaml.safe_dump(raw))
    return out


def one_study(trials: int, path: dict, floor: float, as_pruned: bool = True) -> pd.DataFrame:
    with tempfile.TemporaryDirectory(prefix="edgetune-tph-") as tmp:
        outcome = run_study(load_experiment(experiment(Path(tmp), trials, path, floor, as_pruned))[0])
        done = [t for t in outcome.study.get_trials() if t.state.name == "COMPLETE"]
        span = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)).total_seconds()
        rows = [{"trial": t.number, "params": json.dumps(t.params, sort_keys=True), "top1": t.user_attrs["top1"],
                 **{s: t.user_attrs.get(f"seconds_{s}", 0.0) for s in STAGES},
                 "seconds_trial": t.user_attrs.get("seconds_trial"), "span": span, "n": len(done),
                 "feasible": is_feasible(t), "rejected": bool(t.user_attrs.get("rejected_early")),
                 "accepted": bool(t.user_attrs.get("accepted_early")),
                 "top1_images": t.user_attrs.get("top1_images"), "top1_as_pruned": t.user_attrs.get("top1_as_pruned"),
                 "top1_before_ft": t.user_attrs.get("top1_before_ft")}
                for t in done]
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--compare", choices=sorted(COMPARISONS), default="scoring")
    parser.add_argument("--floor", type=float, default=90.0, help="top-1 floor of --compare rejection")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--rows", type=Path, help="write every trial of every study here (CSV)")
    parser.add_argument("--skip-as-pruned", action="store_true",
                        help="calibrate.score_as_pruned: false in every study (the first pass over the images)")
    args = parser.parse_args()
    print(machine())
    paths = COMPARISONS[args.compare]
    runs: dict[str, list[pd.DataFrame]] = {name: [] for name in paths}
    for r in range(args.rounds):
        for name, path in paths.items():
            runs[name].append(one_study(args.trials, path, args.floor, not args.skip_as_pruned))
            print(f"round {r + 1}: {name} done", flush=True)
    if args.rows:
        pd.concat([f.assign(path=name, round=i) for name, frames in runs.items() for i, f in enumerate(frames)]
                  ).to_csv(args.rows, index=False)
    summary = {}
    for name, frames in runs.items():
        per_trial = [f["span"].iloc[0] / f["n"].iloc[0] for f in frames]
        summary[name] = {"seconds_per_trial": float(np.median(per_trial)), "per_round": per_trial,
                         "trials_per_hour": 3600 / float(np.median(per_trial)),
                         **{f"mean_{s}_s": float(pd.concat(frames)[s].mean()) for s in STAGES}}
    ratio = float(np.median([a / b for a, b in zip([f["span"].iloc[0] / f["n"].iloc[0] for f in runs["now"]],
                                                   [f["span"].iloc[0] / f["n"].iloc[0] for f in runs["before"]],
                                                   strict=True)]))
    same = runs["before"][0].merge(runs["now"][0], on=["trial", "params"], suffixes=("_before", "_now"))
    diff = float((same["top1_before"] - same["top1_now"]).abs().max())
    print(f"\n{args.trials} trials per study, {args.rounds} alternating rounds per path")
    print(f"{'path':<8} {'s/trial':>8} {'trials/h':>9} " + " ".join(f"{s:>9}" for s in STAGES))
    for name, s in summary.items():
        print(f"{name:<8} {s['seconds_per_trial']:>8.2f} {s['trials_per_hour']:>9.0f} "
              + " ".join(f"{s[f'mean_{x}_s']:>9.3f}" for x in STAGES))
    print(f"\nnow / before, seconds per trial (median of the rounds' ratios): {ratio:.3f} "
          f"({1 / ratio:.2f}x the trials per hour)")
    verdicts = {}
    if args.compare == "rejection":  # top-1 of a rejected candidate counts only the images it saw
        print("before: without early rejection (reject_confidence: null); now: with it (0.999)")
        rejected, accepted = same[same["rejected_now"]], same[same["accepted_now"]]
        verdicts = {"feasible_before": int(same["feasible_before"].sum()), "feasible_now": int(same["feasible_now"].sum()),
                    "rejected_now": len(rejected), "rejected_but_feasible": int(rejected["feasible_before"].sum()),
                    "accepted_now": len(accepted), "accepted_but_infeasible": int((~accepted["feasible_before"]).sum()),
                    "same_verdicts": int((same["feasible_before"] == same["feasible_now"]).sum())}
        print(f"feasible: {verdicts['feasible_before']} without rejection, {verdicts['feasible_now']} with; "
              f"rejected early: {verdicts['rejected_now']}, of which feasible when scored on every image: "
              f"{verdicts['rejected_but_feasible']}; accepted early: {verdicts['accepted_now']}, of which infeasible "
              f"on every image: {verdicts['accepted_but_infeasible']}; "
              f"same verdict on {verdicts['same_verdicts']} of {len(same)}")
        whole = ~same["rejected_now"] & ~same["accepted_now"]
        diff = float((same.loc[whole, "top1_before"] - same.loc[whole, "top1_now"]).abs().max()) if whole.any() else 0.0
    print(f"same candidates compared: {len(same)} of {args.trials}; largest top-1 difference {diff:.3f} point"
          + (" (candidates scored on every image in both)" if verdicts else ""))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "compare": args.compare, "paths": paths,
                                         "score_as_pruned": not args.skip_as_pruned,
                                         "summary": summary, "ratio": ratio, "top1_max_diff": diff,
                                         "matched": len(same), **verdicts}, indent=2, default=str))


if __name__ == "__main__":
    main()
