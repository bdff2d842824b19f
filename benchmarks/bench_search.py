"""Random search, Bayesian optimisation and the RL agent on the same no-retraining problem.

ResNet-56 on Fashion-MNIST, the four pruners of the seed's table 3.2 (ratios 0-0.95), no
fine-tuning (the seed's experiment 1), every candidate really thinned, exported and timed on
ONNX Runtime beside the baseline. The goal is the second seed's resource-constrained protocol:
the best validation top-1 with latency at most `--budget` x the baseline's. For each method and
seed the script prints how many trials it needed to come within 1 point of the best feasible
top-1 any run found.

    python benchmarks/bench_search.py [--trials 30] [--seeds 0 1] [--budget 0.8] [--val 500]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from _common import ROOT, machine

from edgetune.config.experiment import load_experiment
from edgetune.study import run_study

EXAMPLES = ROOT / "examples" / "resnet56-fmnist"


def experiment(method: str, seed: int, args: argparse.Namespace, work: Path) -> Path:
    pruners = ["filter_pruner_layer_1", "filter_pruner_layer_2", "filter_pruner_layer_3.1", "filter_pruner_layer_3.2"]
    sweep = {
        "method": method,
        "parameters": {p: {"min": 0.0, "max": 0.95} for p in pruners},
        "constraints": [{"metric": "latency_ratio", "max": args.budget}],
        "protocol": "resource-constrained",
        "early_stop": {"collapse": False},
        "rl": {"warmup_episodes": max(3, args.trials // 4)},
    }
    spec = {
        "name": f"{method}-{seed}", "model": {"checkpoint": str(ROOT / "models" / "resnet56-fmnist.pt")},
        "data": {"name": "fashion-mnist", "val_subset": args.val}, "recipe": str(EXAMPLES / "resnet56-table3.2.schedule.yaml"),
        "sweep": sweep, "finetune": {"epochs": 0}, "trials": args.trials, "seed": seed,
        "benchmark": {"runs_per_round": 20, "min_rounds": 3, "max_rounds": 8, "throughput_batches": [],
                      "engine_throughput": False, "energy_seconds": 0},
        "run_dir": str(work / f"{method}-{seed}"),
    }
    path = work / f"{method}-{seed}.yaml"
    path.write_text(json.dumps(spec))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["random", "bayes", "rl"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--budget", type=float, default=0.8)
    parser.add_argument("--val", type=int, default=500)
    parser.add_argument("--levels", nargs="+", type=float, default=[50, 60, 70, 80],
                        help="also report the trials each run needed to reach these top-1 levels")
    parser.add_argument("--json", help="also write every run's history here (after each run)")
    parser.add_argument("--from-json", help="report the histories a previous --json run saved; run nothing")
    args = parser.parse_args()
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        args.trials, args.budget = saved["args"]["trials"], saved["args"]["budget"]
        report({(h["method"], h["seed"]): h["top1"] for h in saved["histories"]}, args)
        return
    work = Path(tempfile.mkdtemp(prefix="edgetune-search-"))
    histories: dict[tuple[str, int], list[float | None]] = {}
    for method in args.methods:
        for seed in args.seeds:
            spec, _ = load_experiment(experiment(method, seed, args, work))
            outcome = run_study(spec)
            feasible = {t.number for t in outcome.feasible()}
            histories[(method, seed)] = [t.user_attrs.get("top1") if t.number in feasible else None
                                         for t in outcome.study.trials]
            if args.json:  # after every run: a long benchmark that dies keeps what it measured
                Path(args.json).write_text(json.dumps({"machine": machine(), "args": vars(args), "histories": [
                    {"method": m, "seed": s, "top1": h} for (m, s), h in histories.items()]}, indent=1))
    report(histories, args)


def report(histories: dict[tuple[str, int], list[float | None]], args: argparse.Namespace) -> None:
    best = max(v for h in histories.values() for v in h if v is not None)
    print(f"# {machine()}; ResNet-56, 4 pruners, no fine-tuning, latency <= {args.budget} x baseline, "
          f"{args.trials} trials per run; best feasible top-1 over all runs {best:.2f} %")
    print(f"{'method':8} {'seed':>4} {'best top-1':>10} {'trials to within 1 point':>25}")
    hits: dict[str, list[int | None]] = {}
    for (method, seed), history in histories.items():
        hit = next((i + 1 for i, v in enumerate(history) if v is not None and v >= best - 1.0), None)
        mine = max((v for v in history if v is not None), default=float("nan"))
        print(f"{method:8} {seed:4d} {mine:10.2f} {hit if hit else 'not reached':>25}")
        hits.setdefault(method, []).append(hit)
    print(f"{'method':8} {'reached':>8} {'median trials':>14}")
    for method, hs in hits.items():
        print(f"{method:8} {sum(h is not None for h in hs):>4d} of {len(hs):<2d} {median(hs, args.trials):>14}")
    # The same question at fixed levels: how long until a run holds a feasible network this good?
    methods = list(hits)
    print("median trials to a feasible network of at least this top-1 (runs that got there)")
    print(f"{'top-1 %':>8}" + "".join(f"{m:>16}" for m in methods))
    for level in args.levels:
        cells = []
        for method in methods:
            hs = [next((i + 1 for i, v in enumerate(h) if v is not None and v >= level), None)
                  for (m, _), h in histories.items() if m == method]
            cells.append(f"{median(hs, args.trials)} ({sum(h is not None for h in hs)}/{len(hs)})")
        print(f"{level:8.1f}" + "".join(f"{c:>16}" for c in cells))


def median(hits: list[int | None], budget: int) -> str:
    """A run that never got there needed more than its budget: sorting it last keeps the median
    honest (a median that lands on such a run reads "> budget")."""
    ordered = sorted(hits, key=lambda h: h if h is not None else float("inf"))
    mid = ordered[(len(ordered) - 1) // 2]
    return str(mid) if mid is not None else f"> {budget}"

if __name__ == "__main__":
    main()
