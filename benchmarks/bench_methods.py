"""The second seed's tables 5.1-5.6 for edgetune's models: each compression action under each
protocol, chosen per layer by the DDPG agent, without fine-tuning.

For every model, protocol and method the agent runs `--episodes` episodes (a quarter of them
random warm-up) over one ratio per layer; the table shows the reference network and, per
method, the episode with the best reward: top-1/top-5, parameters, size, MACs, latency (ONNX
Runtime, one thread, timed interleaved with the reference), throughput and reward. Protocols as
in the seed: accuracy-guaranteed (top-1 may fall at most `--max-drop` points; reward = mean
fractional saving of latency, size and MACs; -50 when broken) and resource-constrained (size at
most `--size-budget` x the reference; reward = top-1 / 100; -50 when broken).

Layers, as the seed's actions allow: filter pruning (FP) and channel pruning with reconstruction
(CP) act on the pair inside each residual block (FP on its first convolution's filters, CP on
its second convolution's input channels, i.e. the same channels chosen two ways); Tucker (TD)
acts on both convolutions of every block.

    python benchmarks/bench_methods.py [--models resnet20 resnet56] [--episodes 40] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import warnings
from pathlib import Path

from _common import MODELS, machine

from edgetune.config.experiment import load_experiment
from edgetune.metrics.objectives import reward
from edgetune.study import run_study

METHODS = {"FP": "filters-l1", "CP": "channels-reconstruct", "TD": "tucker"}
ROWS = [("top1", "top-1 %", "{:.2f}"), ("top5", "top-5 %", "{:.2f}"), ("params", "parameters (k)", "{:.1f}"),
        ("model_bytes", "size (KiB)", "{:.1f}"), ("macs", "MACs (M)", "{:.2f}"), ("latency_ms", "latency (ms)", "{:.3f}"),
        ("latency_ratio", "latency / ref", "{:.3f}"), ("throughput", "throughput (img/s)", "{:.0f}"),
        ("reward", "reward", "{:.3f}")]
SCALE = {"params": 1e-3, "model_bytes": 1 / 1024, "macs": 1e-6}


def blocks(model: str) -> int:
    return (int(model.removeprefix("resnet")) - 2) // 6


def recipe(model: str, method: str) -> dict:
    n = blocks(model)
    first = [f"module.layer{s}.{i}.conv1.weight" for s in (1, 2, 3) for i in range(n)]
    second = [f"module.layer{s}.{i}.conv2.weight" for s in (1, 2, 3) for i in range(n)]
    weights = {"filters-l1": first, "channels-reconstruct": second, "tucker": first + second}[method]
    extra = {"n_samples": 128} if method == "channels-reconstruct" else {}
    return {"pruners": {"all": {"class": method, "desired_sparsity": 0.0, "weights": weights, **extra}}}


def experiment(model: str, protocol: str, method: str, args: argparse.Namespace, work: Path) -> Path:
    if protocol == "accuracy-guaranteed":
        proto = {"name": protocol, "max_accuracy_drop": args.max_drop,
                 "weights": {"latency": 1 / 3, "size": 1 / 3, "macs": 1 / 3}}
        constraints = []
    else:
        proto, constraints = {"name": protocol}, [{"metric": "size_ratio", "max": args.size_budget}]
    name = f"{model}-{protocol}-{method}"
    spec = {
        "name": name, "model": {"checkpoint": str(MODELS[model])},
        "data": {"name": "fashion-mnist", "val_subset": args.val, "train_subset": 2048},
        "recipe": recipe(model, method),
        "sweep": {"method": "rl", "protocol": proto, "constraints": constraints, "space": "per-layer",
                  "per_layer": {"min": 0.0, "max": 0.8}, "early_stop": {"collapse": False},
                  "rl": {"warmup_episodes": max(2, args.episodes // 4)}},
        "finetune": {"epochs": 0}, "trials": args.episodes, "seed": args.seed,
        "benchmark": {"runs_per_round": 20, "min_rounds": 3, "max_rounds": 8, "throughput_batches": [32],
                      "throughput_seconds": 0.3, "engine_throughput": False, "energy_seconds": 0},
        "run_dir": str(work / name),
    }
    path = work / f"{name}.yaml"
    path.write_text(json.dumps(spec))
    return path


def best_episode(outcome) -> dict | None:
    """The episode the agent would hand over: the highest reward (broken thresholds pay -50)."""
    feasible = {t.number for t in outcome.feasible()}
    best = None
    for t in outcome.study.trials:
        if t.state.name != "COMPLETE":
            continue
        m = dict(t.user_attrs)
        m["reward"] = reward(outcome.plan.sweep.protocol, outcome.plan.objectives, m, outcome.baseline) \
            if t.number in feasible else -50.0
        if best is None or m["reward"] > best["reward"]:
            best = m
    return best


def table(model: str, protocol: str, columns: dict[str, dict | None]) -> str:
    lines = [f"{model}, {protocol}", f"{'':20}" + "".join(f"{c:>12}" for c in columns)]
    for key, label, fmt in ROWS:
        cells = []
        for m in columns.values():
            v = None if m is None else m.get(key)
            cells.append("-" if v is None else fmt.format(v * SCALE.get(key, 1.0)))
        lines.append(f"{label:20}" + "".join(f"{c:>12}" for c in cells))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet20", "resnet56"], choices=sorted(MODELS))
    parser.add_argument("--protocols", nargs="+", default=["accuracy-guaranteed", "resource-constrained"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--max-drop", type=float, default=10.0)
    parser.add_argument("--size-budget", type=float, default=0.8)
    parser.add_argument("--val", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write every table's figures here (after each run)")
    args = parser.parse_args()
    # Layers a method leaves alone are listed in each trial's metrics.json; no need to warn here.
    warnings.simplefilter("ignore", UserWarning)
    work = Path(tempfile.mkdtemp(prefix="edgetune-methods-"))
    print(f"# {machine()}; {args.episodes} episodes per run, no fine-tuning, top-1 on {args.val} validation images")
    figures: dict[str, dict] = {}
    for model in args.models:
        for protocol in args.protocols:
            columns: dict[str, dict | None] = {}
            for short in args.methods:
                spec, _ = load_experiment(experiment(model, protocol, METHODS[short], args, work))
                outcome = run_study(spec)
                columns.setdefault("ref", {**outcome.baseline, "latency_ratio": 1.0, "reward": 0.0})
                columns[short] = best_episode(outcome)
                figures[f"{model}/{protocol}/{short}"] = {"ref": columns["ref"], "best": columns[short]}
                if args.json:
                    Path(args.json).write_text(json.dumps({"machine": machine(), "args": vars(args),
                                                           "figures": figures}, indent=1, default=str))
            print(table(model, protocol, columns), flush=True)


if __name__ == "__main__":
    main()
