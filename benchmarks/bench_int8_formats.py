"""Which INT8 formats ONNX Runtime runs fast on this CPU (issue #10, part 4, measured by hand).

ResNet-56 (or ResNet-20) from the shipped checkpoints, quantised with ONNX Runtime's static
quantiser in each combination of format (QDQ or operator-oriented), activation type (uint8 or
int8) and weights per channel or per tensor, calibrated on the same 300 Fashion-MNIST training
images; each is timed at batch 1 on one thread interleaved in rounds with the FP32 model (the
latency ratio survives the host's slow periods) and scored on 2,000 validation images.

    python benchmarks/bench_int8_formats.py [--model resnet56] [--val 2000]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import exported, fashion_mnist, machine

FORMATS = [("QDQ", "QUInt8", True), ("QDQ", "QInt8", True), ("QDQ", "QUInt8", False), ("QDQ", "QInt8", False),
           ("QOperator", "QUInt8", True), ("QOperator", "QInt8", True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet56", choices=["resnet20", "resnet56"])
    parser.add_argument("--val", type=int, default=2000)
    args = parser.parse_args()

    from edgetune.runtimes import get_runtime, time_interleaved
    from edgetune.runtimes.base import Artifact, SessionOptions
    from edgetune.runtimes.profiler import accuracy
    from edgetune.runtimes.quantize import ort_int8

    print(machine())
    work = Path(tempfile.mkdtemp(prefix="edgetune-int8-"))
    _, fp32 = exported(args.model, work)
    data = fashion_mnist()
    calibration = data.normalize(data.train.subset(300, seed=1).images).numpy()
    val = data.val.subset(args.val, seed=0)
    images, labels = data.normalize(val.images).numpy(), val.labels.numpy()
    x = images[:1]
    runtime = get_runtime("onnxruntime")
    options = SessionOptions(threads=1)
    reference = runtime.open(Artifact(fp32), options)
    ref_call = reference.bind(x)
    base_top1 = accuracy(reference, images, labels)["top1"]
    print(f"fp32: top-1 {base_top1:.2f} %")
    print(f"{'format':<10} {'activations':<12} {'weights':<12} {'ms':>7} {'x fp32':>7} {'top-1':>7}")
    for fmt, act, per_channel in FORMATS:
        path = ort_int8(fp32, work, calibration, fmt, act, per_channel)
        session = runtime.open(Artifact(path), options)
        try:
            timing = time_interleaved(session.bind(x), ref_call, runs_per_round=30, min_rounds=8, max_rounds=20)
            top1 = accuracy(session, images, labels)["top1"]
        finally:
            session.close()
        print(f"{fmt:<10} {act:<12} {'per channel' if per_channel else 'per tensor':<12} {timing.latency_ms:>7.3f} "
              f"{timing.latency_ratio:>7.3f} {top1:>7.2f}", flush=True)
    reference.close()


if __name__ == "__main__":
    main()
