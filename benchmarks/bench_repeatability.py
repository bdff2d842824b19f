"""How repeatable is one benchmark? Each model on each runtime is benchmarked three times in
one process, exactly as `edgetune bench` does it (warm-up until settled, pinned threads, rounds
interleaved with a reference, three repeats, re-measured while they disagree by more than 2 %);
the script prints the three medians and their spread, (max - min) / median.

Absolute milliseconds follow the host: on a shared VM they drift by several per cent over tens
of seconds. So each benchmark also times a *different* model (ResNet-20 for ResNet-56 and the
reverse) in the same interleaved rounds, and the script prints the spread of that ratio, which
is what a search compares candidates by.

    python benchmarks/bench_repeatability.py [--runtimes onnxruntime openvino torch] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from _common import exported, fashion_mnist, machine

from edgetune.config.experiment import BenchmarkSpec
from edgetune.runtimes.profiler import open_reference, profile_artifact


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtimes", nargs="+", default=["onnxruntime", "openvino", "torch"])
    parser.add_argument("--models", nargs="+", default=["resnet20", "resnet56"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--benchmarks", type=int, default=3)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    data = fashion_mnist()
    sample = data.normalize(data.val.images[:64]).numpy()
    print(f"# {machine()}; batch 1, {args.threads} thread(s)")
    print(f"{'model':9} {'runtime':12} {'medians (ms)':27} {'spread':>7} {'ratios to the other model':28} "
          f"{'spread':>7} {'s':>4}")
    rows = []
    models = {name: exported(name) for name in ("resnet20", "resnet56")}
    for name in args.models:
        model, path = models[name]
        other_model, other_path = models["resnet20" if name == "resnet56" else "resnet56"]
        for runtime in args.runtimes:
            spec = BenchmarkSpec(runtime=runtime, threads=args.threads, repeats=3, throughput_batches=[],
                                 engine_throughput=False, energy_seconds=0)
            reference = open_reference(other_path, spec, module=other_model)
            t0 = time.perf_counter()
            reports = [profile_artifact(path, spec, sample, module=model, reference=reference)
                       for _ in range(args.benchmarks)]
            medians = [r.metrics["latency_ms"] for r in reports]
            ratios = [r.metrics["latency_ratio"] for r in reports]
            spread = (max(medians) - min(medians)) / float(np.median(medians))
            ratio_spread = (max(ratios) - min(ratios)) / float(np.median(ratios))
            took = time.perf_counter() - t0
            print(f"{name:9} {runtime:12} {' '.join(f'{m:8.4f}' for m in medians):27} {spread:7.2%} "
                  f"{' '.join(f'{r:8.4f}' for r in ratios):28} {ratio_spread:7.2%} {took:4.0f}")
            rows.append({"model": name, "runtime": runtime, "medians_ms": medians, "spread": spread,
                         "ratios": ratios, "ratio_spread": ratio_spread,
                         "within_run_spreads": [r.metrics["repeat_spread"] for r in reports], "seconds": took})
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": machine(), "threads": args.threads, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
