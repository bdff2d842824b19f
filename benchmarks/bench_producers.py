"""Trials per hour with one producer and with two on the same study (PostgreSQL), side by side.

ResNet-20 on Fashion-MNIST, random search over two pruning ratios, one fine-tuning epoch on a
subset per trial. Rounds alternate: one producer runs a fresh study of `--trials` trials, then
two producers run another; the wall time from start to the last producer's exit gives trials
per hour. A real PostgreSQL server is started for the run (Debian's package, as in the tests).

    python benchmarks/bench_producers.py [--trials 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _common import ROOT, machine

sys.path.insert(0, str(ROOT))
from tests.test_study import experiment

from tests.servers import postgresql


def run_round(url: str, producers: int, name: str, args: argparse.Namespace, work: Path) -> float:
    path = experiment(work, trials=args.trials, epochs=1, train_subset=args.train_subset, name=name)
    spec = yaml.safe_load(path.read_text())
    spec.pop("run_dir")
    spec["data"]["val_subset"] = 500
    path.write_text(yaml.safe_dump(spec))
    t0 = time.perf_counter()
    # The machine's cores split between the producers: oversubscribed, they slow each other 5x.
    threads = ["--torch-threads", str(max(1, (os.cpu_count() or 1) // producers))]
    procs = [subprocess.Popen([sys.executable, "-m", "edgetune.cli", "run", str(path), "--storage", url,
                               "--run-dir", str(work / f"{name}-p{i}"), *threads], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for i in range(producers)]
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"a producer failed ({codes}) in {name}")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--train-subset", type=int, default=2048)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgetune-producers-"))
    print(f"# {machine()}; ResNet-20, {args.trials} trials per study, 1 epoch on {args.train_subset} images")
    print(f"{'round':>5} {'producers':>9} {'seconds':>8} {'trials/hour':>12}")
    rates: dict[int, list[float]] = {1: [], 2: []}
    with postgresql() as pg:
        for r in range(args.rounds):
            for n in (1, 2):
                seconds = run_round(pg.url, n, f"r{r}-n{n}", args, work)
                rates[n].append(3600 * args.trials / seconds)
                print(f"{r:5d} {n:9d} {seconds:8.1f} {rates[n][-1]:12.0f}", flush=True)
    ratios = [b / a for a, b in zip(rates[1], rates[2], strict=True)]
    print(f"two producers / one, per round: {', '.join(f'{x:.2f}' for x in ratios)}")


if __name__ == "__main__":
    main()
