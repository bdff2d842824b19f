"""Five networks timed on a quiet host and beside a CPU hog: does the ranking a search acts on
survive a busy machine, and does edgetune say when it does not?

Each network (ResNet-20, ResNet-56, MobileNetV2 as shipped, and ResNet-56 with half the inner
filters of every block, or with all but three blocks of each stage removed) is timed with ONNX
Runtime (one thread, batch 1) in rounds interleaved with ResNet-56, as a study times its
candidates: first with nothing else running, then with `--hogs` busy processes on the cores.
Printed per condition: milliseconds, the ratio to ResNet-56, the ratio's spread over the rounds,
and whether edgetune marked the latency unreliable; then how each ranking (by milliseconds and by
ratio) moved between the two conditions (Kendall's tau: 1.0 is the same order).

    python benchmarks/bench_busy_host.py [--hogs 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import ROOT, exported, fashion_mnist, machine
from scipy.stats import kendalltau

from edgetune.compress.recipe import apply_pruners
from edgetune.config.benchmark import BenchmarkSpec
from edgetune.config.recipe import parse_schedule
from edgetune.models import load_checkpoint
from edgetune.runtimes.export import export_onnx
from edgetune.runtimes.profiler import open_reference, profile_artifact

TIMING = {"runs_per_round": 30, "min_rounds": 7, "max_rounds": 15, "max_seconds": 15.0, "warmup": 10,
          "throughput_batches": [], "energy_seconds": 0.0, "engine_throughput": False}


def _pruned(base: torch.nn.Module, recipe: dict, path: Path) -> Path:
    model = copy.deepcopy(base).eval()
    apply_pruners(model, parse_schedule(recipe), torch.zeros(1, 1, 28, 28))
    export_onnx(model, torch.zeros(1, 1, 28, 28), path)
    return path


def networks(work: Path) -> dict[str, Path]:
    r56, r56_path = exported("resnet56", work)
    _, r20_path = exported("resnet20", work)
    mnv2, _ = load_checkpoint(ROOT / "models" / "mobilenetv2-fmnist.pt")
    export_onnx(mnv2.eval(), torch.zeros(1, 1, 28, 28), work / "mobilenetv2.onnx")
    inner = [f"module.layer{s}.{b}.conv1.weight" for s in (1, 2, 3) for b in range(9)]
    half = _pruned(r56, {"pruners": {"w": {"class": "filters-l1", "desired_sparsity": 0.5, "weights": inner}}},
                   work / "resnet56-half-width.onnx")
    shallow = _pruned(r56, {"pruners": {f"d{s}": {"class": "blocks", "blocks": 3 if s == 1 else 2,
                                                  "weights": [f"layer{s}"]} for s in (1, 2, 3)}},
                      work / "resnet56-3-blocks.onnx")
    return {"resnet20": r20_path, "resnet56": r56_path, "mobilenetv2": work / "mobilenetv2.onnx",
            "resnet56-half-width": half, "resnet56-3-blocks": shallow}


def measure(nets: dict[str, Path], reference: Path, sample: np.ndarray) -> dict[str, dict]:
    spec = BenchmarkSpec.model_validate(TIMING)
    ref = open_reference(reference, spec)
    out = {}
    try:
        for name, path in nets.items():
            m = profile_artifact(path, spec, sample, reference=ref, work_dir=path.parent).metrics
            timing = {k: m.get(k) for k in ("latency_ms", "latency_ratio", "latency_unreliable")}
            out[name] = timing
            print(f"  {name:22} {m['latency_ms']:.3f} ms  x{m['latency_ratio']:.3f}  "
                  f"{'UNRELIABLE: ' + m['latency_unreliable'] if m.get('latency_unreliable') else 'trusted'}")
    finally:
        ref.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hogs", type=int, default=2 * (os.cpu_count() or 2), help="busy processes beside")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    data = fashion_mnist()
    sample = data.normalize(data.val.images[:64]).numpy()
    with tempfile.TemporaryDirectory(prefix="edgetune-busy-") as tmp:
        nets = networks(Path(tmp))
        t0 = time.perf_counter()
        print("quiet host")
        quiet = measure(nets, nets["resnet56"], sample)
        print(f"beside {args.hogs} busy processes")
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hogs)]
        try:
            busy = measure(nets, nets["resnet56"], sample)
        finally:
            for hog in hogs:
                hog.kill()
    names = list(nets)
    summary = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "hogs": args.hogs, "quiet": quiet,
               "busy": busy, "seconds": round(time.perf_counter() - t0, 1)}
    for key in ("latency_ms", "latency_ratio"):
        tau = kendalltau([quiet[n][key] for n in names], [busy[n][key] for n in names]).statistic
        slow = np.median([busy[n]["latency_ms"] / quiet[n]["latency_ms"] for n in names])
        summary[f"tau_{key}"] = float(tau)
        print(f"ranking by {key}: Kendall tau quiet vs busy {tau:.2f}" +
              (f" (milliseconds {slow:.2f}x slower beside the hogs)" if key == "latency_ms" else ""))
    drift = {n: busy[n]["latency_ratio"] / quiet[n]["latency_ratio"] for n in names if n != "resnet56"}
    summary["ratio_drift"] = drift
    print("ratio busy / quiet: " + ", ".join(f"{n} {d:.2f}" for n, d in drift.items()))
    print("marked unreliable beside the hogs: " + (", ".join(n for n in names if busy[n]["latency_unreliable"])
                                                    or "none"))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1, default=float))


if __name__ == "__main__":
    main()
