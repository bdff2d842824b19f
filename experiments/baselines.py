"""Part 1 of issue #9, the first seed's table 4.4: the unpruned network, Distiller's hand-tuned
ResNet-56 schedule without fine-tuning, and the same with fine-tuning, each over five seeds
(the seed changes the validation and fine-tuning subsets and the fine-tuning order), reported as
mean and standard deviation.

    python experiments/baselines.py [--seeds 0 1 2 3 4]
"""

from __future__ import annotations

import argparse

import pandas as pd
from _run import RUNS, run_and_report, save, trials

COLUMNS = {"top1": "top-1 %", "top5": "top-5 %", "throughput": "throughput (img/s)", "latency_ms": "latency (ms)",
           "total_latency_ms": "total latency (ms)", "latency_ratio": "latency / unpruned"}


def rows(seeds: list[int]) -> tuple[dict[str, pd.DataFrame], dict[str, float]]:
    found: dict[str, list[dict]] = {"unpruned": [], "hand-tuned, no fine-tuning": [], "hand-tuned, fine-tuned": []}
    seconds = {}
    for seed in seeds:
        for epochs, label in ((0, "hand-tuned, no fine-tuning"), (2, "hand-tuned, fine-tuned")):
            run_dir = RUNS / f"baselines-ft{epochs}-seed{seed}"
            seconds[run_dir.name] = run_and_report("baselines.experiment.yaml", run_dir, "--seed", str(seed),
                                                   "--epochs", str(epochs))
            frame = trials(run_dir)
            if epochs == 0:
                base = frame[frame["trial"] == "baseline"].iloc[0].to_dict()
                found["unpruned"].append({**base, "latency_ratio": 1.0})
            ref = frame[frame["reference"].notna() & (frame["trial"] != "baseline")]
            found[label] += ref.to_dict("records")
    return {k: pd.DataFrame(v) for k, v in found.items()}, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    groups, seconds = rows(args.seeds)
    summary = {}
    print(f"{'':30}" + "".join(f"{label:>24}" for label in COLUMNS.values()))
    for name, frame in groups.items():
        cells, summary[name] = [], {}
        for key in COLUMNS:
            values = pd.to_numeric(frame[key], errors="coerce").dropna()
            summary[name][key] = {"mean": values.mean(), "std": values.std(ddof=0), "n": len(values),
                                  "min": values.min(), "max": values.max()}
            cells.append(f"{values.mean():.3f} ± {values.std(ddof=0):.3f}")
        print(f"{name:30}" + "".join(f"{c:>24}" for c in cells))
    save("baselines", {"seeds": args.seeds, "rows": summary, "seconds": seconds})


if __name__ == "__main__":
    main()
