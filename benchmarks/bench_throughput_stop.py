"""Throughput timed for the full `throughput_seconds` against timed until it is known to 1 %
(`benchmark.throughput_stable`): how long each takes and how far apart their figures are.

ResNet-56 with half the inner filters of every block removed, ONNX Runtime, one thread, batch 32,
`throughput_seconds` 1.0; the two ways alternate for `--rounds` rounds.

    python benchmarks/bench_throughput_stop.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import exported, machine
from bench_evaluation import half_pruned

from edgetune.runtimes.base import SessionOptions
from edgetune.runtimes.export import export_onnx
from edgetune.runtimes.onnxruntime import OrtSession
from edgetune.runtimes.timing import throughput


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    base, path = exported("resnet56")
    candidate = path.with_name("half.onnx")
    export_onnx(half_pruned(base), torch.zeros(1, 1, 28, 28), candidate)
    session = OrtSession(candidate, SessionOptions(threads=1))
    call = session.bind(np.random.default_rng(0).standard_normal((32, 1, 28, 28)).astype(np.float32))
    ways = {"full 1.0 s": None, "until 1 %": 0.01}
    seconds: dict[str, list[float]] = {k: [] for k in ways}
    figures: dict[str, list[float]] = {k: [] for k in ways}
    for _ in range(args.rounds):
        for name, stable in ways.items():
            t0 = time.perf_counter()
            figures[name].append(throughput(call, 32, min_seconds=1.0, stable=stable))
            seconds[name].append(time.perf_counter() - t0)
    print(machine())
    print(f"{'way':<11} {'s (median)':>10} {'images/s (median)':>18}")
    for name in ways:
        print(f"{name:<11} {np.median(seconds[name]):>10.3f} {np.median(figures[name]):>18.0f}")
    gap = abs(np.median(figures["until 1 %"]) / np.median(figures["full 1.0 s"]) - 1)
    print(f"figures apart by {gap:.1%}")


if __name__ == "__main__":
    main()
