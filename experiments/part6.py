"""Part 6 of issue #9, the second seed's tables 5.1-5.6 on ResNet-56 and MobileNetV2: filter
pruning, channel pruning with reconstruction and Tucker decomposition, each under the
accuracy-guaranteed and the resource-constrained protocol, ratios per layer chosen by the DDPG
agent, no fine-tuning. Each column is the episode with the best reward (a broken threshold pays
-50, as in the seed).

    python experiments/part6.py [--models resnet56 mobilenetv2] [--methods fp cp td cp8] [--protocols ag rc]
                                [--episodes N]   # fewer than the files' 40 where compute is short
"""

from __future__ import annotations

import argparse

import pandas as pd
from _run import HERE, RUNS, run_and_report, save, trials

from edgetune.config.experiment import load_experiment
from edgetune.metrics.objectives import reward
from edgetune.study import plan_study

ROWS = [("top1", "top-1 %", "{:.2f}"), ("top5", "top-5 %", "{:.2f}"), ("params", "parameters (k)", "{:.1f}"),
        ("model_bytes", "size (KiB)", "{:.1f}"), ("macs", "MACs (M)", "{:.2f}"), ("latency_ms", "latency (ms)", "{:.3f}"),
        ("latency_ratio", "latency / ref", "{:.3f}"), ("throughput", "throughput (img/s)", "{:.0f}"),
        ("reward", "reward", "{:.3f}")]
SCALE = {"params": 1e-3, "model_bytes": 1 / 1024, "macs": 1e-6}
PROTOCOLS = {"ag": "accuracy-guaranteed", "rc": "resource-constrained"}


def checkpoint(model: str):
    return HERE.parent / "models" / f"{model}-fmnist.pt"


def best_episode(name: str, run_dir) -> tuple[dict, dict]:
    """The reference's row and the episode the agent would hand over (highest reward)."""
    plan = plan_study(load_experiment(HERE / f"{name}.experiment.yaml")[0])
    frame = trials(run_dir)
    base = frame[frame["trial"] == "baseline"].iloc[0].to_dict()
    best = None
    for row in frame[(frame["trial"] != "baseline") & (frame["state"] == "COMPLETE")].to_dict("records"):
        metrics = {k: v for k, v in row.items() if not (isinstance(v, float) and pd.isna(v))}
        feasible = str(row.get("feasible")) == "True"
        metrics["reward"] = reward(plan.sweep.protocol, plan.objectives, metrics, base) if feasible else -50.0
        if best is None or metrics["reward"] > best["reward"]:
            best = metrics
    return {**base, "latency_ratio": 1.0, "reward": 0.0}, best or {}


def render(title: str, columns: dict[str, dict]) -> str:
    lines = [title, f"{'':20}" + "".join(f"{c:>12}" for c in columns)]
    for key, label, fmt in ROWS:
        cells = ["-" if m.get(key) is None else fmt.format(float(m[key]) * SCALE.get(key, 1.0)) for m in columns.values()]
        lines.append(f"{label:20}" + "".join(f"{c:>12}" for c in cells))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=[m for m in ("resnet56", "mobilenetv2") if checkpoint(m).is_file()],
                        choices=["resnet56", "mobilenetv2"])
    parser.add_argument("--methods", nargs="+", default=["fp", "cp", "td", "cp8"], choices=["fp", "cp", "td", "cp8"],
                        help="cp8: CP with round_to: 8 (MobileNetV2 only; left out where no file)")
    parser.add_argument("--protocols", nargs="+", default=["ag", "rc"], choices=list(PROTOCOLS))
    parser.add_argument("--episodes", type=int, help="episodes per table column (default: the file's trials)")
    args = parser.parse_args()
    flags = ("--trials", str(args.episodes)) if args.episodes else ()
    keep = [k for k, _, _ in ROWS]
    for model in args.models:
        tables, seconds, episodes = {}, {}, {}
        for protocol in args.protocols:
            columns: dict[str, dict] = {}
            for method in args.methods:
                name = f"part6-{model}-{method}-{protocol}"
                if not (HERE / f"{name}.experiment.yaml").is_file():
                    print(f"no {name}.experiment.yaml: column {method.upper()} left out", flush=True)
                    continue
                seconds[name] = run_and_report(f"{name}.experiment.yaml", RUNS / name, *flags)
                ref, best = best_episode(name, RUNS / name)
                episodes[name] = int((trials(RUNS / name)["trial"] != "baseline").sum())
                columns.setdefault("ref", ref)
                columns[method.upper()] = best
            tables[PROTOCOLS[protocol]] = columns
            print(render(f"{model}, {PROTOCOLS[protocol]}", columns), flush=True)
        save(f"part6-{model}", {"seconds": seconds, "episodes": episodes, "tables": {
            p: {c: {k: m.get(k) for k in keep} for c, m in cols.items()} for p, cols in tables.items()}})


if __name__ == "__main__":
    main()
