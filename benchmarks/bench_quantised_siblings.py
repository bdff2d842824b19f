"""What a user would do instead of a search: quantise the network they have, or train its smaller
sibling (and quantise that). ResNet-56 and ResNet-20 (Fashion-MNIST, as shipped), each in fp32
and INT8 (ONNX Runtime's QDQ, unsigned activations, per-channel weights: the format measured
fastest on this machine, calibrated on 300 training images), each timed with ONNX Runtime (one
thread, batch 1) in rounds interleaved with the fp32 ResNet-56 exactly as a study times its
candidates, and each deployed artefact scored on the whole test split (10,000 images).

    python benchmarks/bench_quantised_siblings.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from _common import exported, fashion_mnist, machine

from edgetune.config.benchmark import BenchmarkSpec
from edgetune.runtimes.profiler import Scoring, open_reference, profile_artifact

TIMING = {"runs_per_round": 30, "min_rounds": 7, "max_rounds": 15, "max_seconds": 15.0, "warmup": 10,
          "throughput_batches": [], "energy_seconds": 0.0, "engine_throughput": False, "repeats": 3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    data = fashion_mnist()
    calibration = data.normalize(data.train.subset(300, seed=1).images).numpy()
    images, labels = data.normalize(data.test.images).numpy(), data.test.labels.numpy()
    sample = data.normalize(data.val.images[:64]).numpy()
    work = Path(tempfile.mkdtemp(prefix="edgetune-bench-"))
    fp32 = BenchmarkSpec(**TIMING)
    base_model, base_path = exported("resnet56", work)
    reference = open_reference(base_path, fp32, base_model, None, work)
    rows = []
    print(machine())
    for name in ("resnet56", "resnet20"):
        model, path = exported(name, work)
        for precision in ("fp32", "int8"):
            spec = BenchmarkSpec(**TIMING, precision=precision, int8_format="qdq-u8-channel")
            out = work / f"{name}-{precision}"
            out.mkdir()
            report = profile_artifact(path, spec, sample, module=model, scoring=Scoring(calibration, images, labels),
                                      reference=reference, work_dir=out)
            m = report.metrics
            top1 = m.get("deployed_top1")
            rows.append({"network": name, "precision": precision, "latency_ms": m["latency_ms"],
                         "x_resnet56_fp32": m["latency_ratio"], "ratio_trusted": not m.get("latency_unreliable"),
                         "test_top1": top1})
            print(f"{name:<9} {precision:<5} {m['latency_ms']:7.3f} ms  {m['latency_ratio']:.3f}x ResNet-56 fp32  "
                  f"test top-1 {top1:.2f} %" + ("" if not m.get("latency_unreliable") else "  (not trusted)"),
                  flush=True)
    reference.close()
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
