"""The same no-fine-tuning search with and without hardware-aware widths.

ResNet-56 on Fashion-MNIST, the seed's four pruners (table 3.2, ratios 0-0.95), no fine-tuning,
the second seed's resource-constrained protocol (best validation top-1 with latency at most
`--budget` x the baseline's), Bayesian optimisation with the same seed and trial budget in each
arm. The first three arms differ only in the recipe's `round_to`: none (any width), 8 (a SIMD
block), or `measured` (the staircase `edgetune profile-widths` measured on this runtime, cached;
its measuring time is reported apart). `predicted` adds the predictor to `measured`: candidates
predicted over the budget by more than the margin (`auto`: learnt from the predictor's errors in
the study) are skipped unmeasured and 5 candidates from the
predicted front open the search; `width space` also declares the space in measured widths
(`<pruner>_width: {widths: measured}`) instead of ratios. Skipped candidates do not count
against the trial budget: each arm measures the same number. For each arm the script prints the
best feasible top-1, the measured trials that broke the latency budget, the candidates skipped
on prediction, the trials that used a width off the measured staircase (a wider width ran as
fast), and wall time.

    python benchmarks/bench_hw_aware.py [--trials 40] [--budget 0.8] [--val 1000] [--seed 0]
                                        [--arms any-width round_to-8 measured predicted width-space]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import yaml
from _common import ROOT, machine

from edgetune.config.experiment import load_experiment
from edgetune.study import run_study

EXAMPLES = ROOT / "examples" / "resnet56-fmnist"
ARMS = {"any width": None, "round_to 8": 8, "measured": "measured", "predicted": "measured",
        "width space": "measured"}
PREDICTOR = {"skip_margin": "auto", "warm_start": 5}


def experiment(arm: str, args: argparse.Namespace, work: Path) -> Path:
    recipe = yaml.safe_load((EXAMPLES / "resnet56-table3.2.schedule.yaml").read_text())
    recipe.pop("extensions", None)  # Distiller's thinner: edgetune always removes structures
    recipe["policies"] = [p for p in recipe["policies"] if "extension" not in p]
    for pruner in recipe["pruners"].values():
        if ARMS[arm] is not None:
            pruner["round_to"] = ARMS[arm]
    name = arm.replace(" ", "-")
    (work / f"{name}.schedule.yaml").write_text(yaml.safe_dump(recipe))
    pruners = list(recipe["pruners"])
    space = {p: {"min": 0.0, "max": 0.95} for p in pruners}
    if arm == "width space":
        space = {f"{p}_width": {"widths": "measured"} for p in pruners}
    spec = {
        "name": name, "model": {"checkpoint": str(ROOT / "models" / "resnet56-fmnist.pt")},
        "data": {"name": "fashion-mnist", "val_subset": args.val}, "recipe": str(work / f"{name}.schedule.yaml"),
        "sweep": {"method": "bayes", "parameters": space,
                  "constraints": [{"metric": "latency_ratio", "max": args.budget}],
                  "protocol": "resource-constrained", "early_stop": {"collapse": False},
                  # `measured` rounds only: the predictor acts by default wherever a profile exists.
                  "predictor": PREDICTOR if arm in ("predicted", "width space") else {"skip_margin": None}},
        "finetune": {"epochs": 0}, "trials": args.trials, "seed": args.seed,
        "benchmark": {"runs_per_round": 20, "min_rounds": 3, "max_rounds": 8, "throughput_batches": [],
                      "engine_throughput": False, "energy_seconds": 0},
        "run_dir": str(work / name),
    }
    path = work / f"{name}.yaml"
    path.write_text(json.dumps(spec))
    return path


def staircase_of(run_dir: Path) -> dict[str, list[int]]:
    """The measured staircase of every layer the recipe names (from the width cache)."""
    from edgetune.config.benchmark import BenchmarkSpec
    from edgetune.data import load_dataset
    from edgetune.executors.local import LocalExecutor
    from edgetune.hardware.widths import Measuring, width_table
    from edgetune.models import load_checkpoint

    data = load_dataset("fashion-mnist")
    model, _ = load_checkpoint(ROOT / "models" / "resnet56-fmnist.pt")
    recipe = yaml.safe_load((EXAMPLES / "resnet56-table3.2.schedule.yaml").read_text())
    weights = [w for p in recipe["pruners"].values() for w in p["weights"]]
    with LocalExecutor() as executor:
        measuring = Measuring(executor, BenchmarkSpec(), data.sample_input(64).numpy())
        return width_table(model.eval(), data.sample_input(1), measuring, weights).staircases()


def summarise(run_dir: Path, staircases: dict[str, list[int]], budget: float) -> dict:
    import csv

    with open(run_dir / "trials.csv") as fh:
        every = [r for r in csv.DictReader(fh) if r["state"] != "BASELINE"]
    rows = [r for r in every if not r.get("skipped")]
    measured = {f"{int(r['trial']):04d}" for r in rows}
    off = 0
    for trial in sorted(t for t in (run_dir / "trials").iterdir() if t.name in measured):
        records = json.loads((trial / "metrics.json").read_text()).get("thinning", [])
        widths = {r["weight"].removeprefix("module."): r["before"] - r["removed"] for r in records if not r["skipped"]}
        off += any(w not in staircases.get(k, [w]) for k, w in widths.items())
    feasible = [r for r in rows if r["state"] == "COMPLETE" and r["latency_ratio"] and float(r["latency_ratio"]) <= budget]
    best = max(feasible, key=lambda r: float(r["top1"]), default=None)
    errors = [abs(float(r["prediction_error"])) for r in rows if r.get("prediction_error")]
    return {"trials": len(rows), "infeasible": len(rows) - len(feasible), "skipped": len(every) - len(rows),
            "off_staircase": off,
            "best_top1": float(best["top1"]) if best else None,
            "best_latency_ratio": float(best["latency_ratio"]) if best else None,
            "predicted": len(errors), "within_10pct": sum(e <= 0.10 for e in errors),
            "median_abs_error": sorted(errors)[len(errors) // 2] if errors else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--budget", type=float, default=0.8)
    parser.add_argument("--val", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--arms", nargs="+", default=[a.replace(" ", "-") for a in ARMS],
                        choices=[a.replace(" ", "-") for a in ARMS])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgetune-hw-"))
    print(machine())
    started = time.perf_counter()
    staircases = staircase_of(work)  # measured once here, or read from the cache
    profile_s = time.perf_counter() - started
    print(f"width profile: {profile_s:.0f} s (0 when cached)")
    results = {}
    for arm in [a for a in ARMS if a.replace(" ", "-") in args.arms]:
        spec, _ = load_experiment(experiment(arm, args, work))
        t0 = time.perf_counter()
        run_study(spec)
        results[arm] = {**summarise(work / arm.replace(" ", "-"), staircases, args.budget),
                        "seconds": time.perf_counter() - t0}
        print(arm, results[arm], flush=True)
    print(f"\n{args.trials} trials each, latency <= {args.budget} x baseline, no fine-tuning, bayes seed {args.seed}")
    print(f"{'arm':<12} {'best top-1':>10} {'x base':>7} {'infeasible':>10} {'skipped':>7} {'off stair':>9} "
          f"{'seconds':>8} {'predictor within 10 %':>22}")
    for arm, r in results.items():
        top1 = f"{r['best_top1']:.2f}" if r["best_top1"] is not None else "none"
        ratio = f"{r['best_latency_ratio']:.3f}" if r["best_latency_ratio"] is not None else "-"
        pred = f"{r['within_10pct']}/{r['predicted']} (median {r['median_abs_error']:.1%})" if r["predicted"] else "-"
        print(f"{arm:<12} {top1:>10} {ratio:>7} {r['infeasible']:>10} {r['skipped']:>7} {r['off_staircase']:>9} "
              f"{r['seconds']:>8.0f} {pred:>22}")
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "profile_seconds": profile_s,
                                         "results": results, "machine": machine()}, indent=1))


if __name__ == "__main__":
    main()
