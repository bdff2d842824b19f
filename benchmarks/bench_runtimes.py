"""ONNX Runtime, OpenVINO and PyTorch eager, FP32 and INT8, side by side in one run.

Every configuration is timed in rounds interleaved with the same reference session (ONNX
Runtime fp32 of the same model), so the ratios compare like with like even while the host's
speed drifts; accuracy is top-1 on the whole Fashion-MNIST test split, computed from the
deployed artefact's own outputs (the INT8 model's accuracy is the INT8 model's).

    python benchmarks/bench_runtimes.py [--threads 1] [--models resnet20 resnet56]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from _common import exported, fashion_mnist, machine

from edgetune.config.experiment import BenchmarkSpec
from edgetune.runtimes.profiler import Scoring, open_reference, profile_artifact

CONFIGS = [("onnxruntime", "fp32"), ("onnxruntime", "int8"), ("openvino", "fp32"), ("openvino", "int8"),
           ("torch", "fp32")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet20", "resnet56"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    data = fashion_mnist()
    sample = data.normalize(data.val.images[:64]).numpy()
    calib = data.normalize(data.train.subset(300, seed=1).images).numpy()
    images, labels = data.normalize(data.test.images).numpy(), data.test.labels.numpy()
    print(f"# {machine()}; batch 1 latency, throughput at batch 32, {args.threads} thread(s); "
          f"top-1 on the {len(labels)} test images")
    print(f"{'model':9} {'runtime':12} {'prec':5} {'median ms':>9} {'x ORT fp32':>10} {'img/s b32':>9} "
          f"{'top-1 %':>7} {'size kB':>8}")
    rows = []
    for name in args.models:
        model, path = exported(name)
        work = Path(tempfile.mkdtemp(prefix="edgetune-rt-"))
        base = BenchmarkSpec(threads=args.threads, repeats=3, throughput_batches=[32], engine_throughput=False,
                             energy_seconds=0)
        reference = open_reference(path, base, module=model)
        for runtime, precision in CONFIGS:
            spec = base.model_copy(update={"runtime": runtime, "precision": precision})
            report = profile_artifact(path, spec, sample, module=model, scoring=Scoring(calib, images, labels),
                                      reference=reference, work_dir=work)
            m = report.metrics
            print(f"{name:9} {runtime:12} {precision:5} {m['latency_ms']:9.4f} {m['latency_ratio']:10.3f} "
                  f"{m['throughput_b32']:9.0f} {m['deployed_top1']:7.2f} {m['model_bytes'] / 1e3:8.0f}")
            rows.append({"model": name, "runtime": runtime, "precision": precision, **m,
                         "description": report.description})
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": machine(), "threads": args.threads, "rows": rows}, fh, indent=2, default=str)


if __name__ == "__main__":
    main()
