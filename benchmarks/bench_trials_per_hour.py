"""Trials per hour at experiment-1 settings (the first seed's schedule and figure-3.9 ranges on
ResNet-56, no fine-tuning, top-1 on 2,000 validation images, ONNX Runtime one thread batch 1):
the path before issue #21 beside today's, in one run.

  before  `score_with: pytorch` (PyTorch eager scores each candidate) and
          `benchmark.throughput_stable: null` (throughput timed for the full throughput_seconds);
  now     the defaults: the exported file scores the images in ONNX Runtime on every core, and
          throughput is timed until it is known to 1 %.

Both use a random sampler with the same seed, so they build exactly the same candidates; the
studies alternate (before, now, before, now...) so a slow spell of the host hits both. Printed:
each path's seconds per trial (first trial's start to last trial's end, over the trials), trials
per hour, the ratio now/before, the mean seconds per stage (study/clock.py), and the largest
top-1 difference between the two paths on the same candidate (must be under 0.05 point).

    python benchmarks/bench_trials_per_hour.py [--trials 15] [--rounds 2] [--json out.json]
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
from edgetune.study import run_study

PATHS = {"before": {"score_with": "pytorch", "throughput_stable": None}, "now": {}}
STAGES = ["setup", "prune", "evaluate", "export", "convert", "benchmark"]


def experiment(work: Path, trials: int, path: dict) -> Path:
    raw = yaml.safe_load((ROOT / "experiments" / "exp1.experiment.yaml").read_text())
    sweep = yaml.safe_load((ROOT / "examples" / "resnet56-fmnist" / "figure3.9.sweep.yaml").read_text())
    sweep["method"] = "random"
    raw.update(model={"checkpoint": str(ROOT / "models" / "resnet56-fmnist.pt")}, sweep=sweep, trials=trials,
               recipe=str(ROOT / "examples" / "resnet56-fmnist" / "resnet56-table3.2.schedule.yaml"),
               run_dir=str(work / "run"))
    if "score_with" in path:
        raw["score_with"] = path["score_with"]
    if "throughput_stable" in path:
        raw["benchmark"]["throughput_stable"] = path["throughput_stable"]
    out = work / "experiment.yaml"
    out.write_text(yaml.safe_dump(raw))
    return out


def one_study(trials: int, path: dict) -> pd.DataFrame:
    with tempfile.TemporaryDirectory(prefix="edgetune-tph-") as tmp:
        outcome = run_study(load_experiment(experiment(Path(tmp), trials, path))[0])
        done = [t for t in outcome.study.get_trials() if t.state.name == "COMPLETE"]
        span = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)).total_seconds()
        rows = [{"trial": t.number, "params": json.dumps(t.params, sort_keys=True), "top1": t.user_attrs["top1"],
                 **{s: t.user_attrs.get(f"seconds_{s}", 0.0) for s in STAGES},
                 "seconds_trial": t.user_attrs.get("seconds_trial"), "span": span, "n": len(done)} for t in done]
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(machine())
    runs: dict[str, list[pd.DataFrame]] = {name: [] for name in PATHS}
    for r in range(args.rounds):
        for name, path in PATHS.items():
            runs[name].append(one_study(args.trials, path))
            print(f"round {r + 1}: {name} done", flush=True)
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
    print(f"same candidates compared: {len(same)} of {args.trials}; largest top-1 difference {diff:.3f} point")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "summary": summary, "ratio": ratio,
                                         "top1_max_diff": diff, "matched": len(same)}, indent=2))


if __name__ == "__main__":
    main()
