"""Scoring a candidate on the validation images: which way is fastest on this machine, and does it
give the same top-1?

Three ways, each timed in interleaved rounds on the same images (the unpruned ResNet-56 and one
with half the inner filters of every block removed, 2,000 Fashion-MNIST validation images):
  torch       edgetune's `evaluate` until now: PyTorch eager, `no_grad`, batches of 500;
  torch-cl    PyTorch `inference_mode` with channels-last memory, batches of 500;
  onnxruntime the exported ONNX file in ONNX Runtime on every core, batches of 500 (session
              creation included: a trial opens one per candidate).
Printed: seconds per scoring (median over rounds), the ratio to `torch` measured in the same
rounds, and each way's top-1 (they must agree to 0.05 point).

    python benchmarks/bench_evaluation.py [--images 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from _common import exported, fashion_mnist, machine

from edgetune.compress.recipe import apply_pruners
from edgetune.config.recipe import parse_schedule
from edgetune.runtimes.export import export_onnx
from edgetune.training.loop import evaluate

HALF = """
pruners:
  half:
    class: L1RankedStructureParameterPruner
    desired_sparsity: 0.5
    group_type: Filters
    weights: [{names}]
policies:
  - pruner: {{instance_name: half}}
    epochs: [0]
"""


def half_pruned(model: torch.nn.Module) -> torch.nn.Module:
    names = ", ".join(n for n, p in model.named_parameters() if n.endswith("conv1.weight") and "layer" in n)
    pruned = copy.deepcopy(model)
    apply_pruners(pruned, parse_schedule(yaml.safe_load(HALF.format(names=names))), torch.zeros(1, 1, 28, 28), ["half"])
    return pruned.eval()


def torch_cl(model: torch.nn.Module, data, split, batch: int = 500) -> float:
    model = model.to(memory_format=torch.channels_last).eval()
    hits = 0
    with torch.inference_mode():
        for i in range(0, len(split), batch):
            x = data.normalize(split.images[i:i + batch]).contiguous(memory_format=torch.channels_last)
            hits += int((model(x).argmax(1) == split.labels[i:i + batch]).sum())
    return 100.0 * hits / len(split)


def onnxruntime_top1(path: Path, data, split, batch: int = 500) -> float:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    images = data.normalize(split.images).numpy()
    hits = 0
    for i in range(0, len(split), batch):
        hits += int((session.run(None, {name: images[i:i + batch]})[0].argmax(1) == split.labels[i:i + batch].numpy()).sum())
    return 100.0 * hits / len(split)


def openvino_top1(path: Path, data, split, batch: int = 500) -> float:
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(path))
    model.reshape({model.inputs[0].get_any_name(): [batch, *split.images.shape[1:]]})
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                                 "INFERENCE_NUM_THREADS": str(os.cpu_count() or 1)})
    request = compiled.create_infer_request()
    images = data.normalize(split.images).numpy()
    hits = 0
    for i in range(0, len(split), batch):
        x = images[i:i + batch]
        if len(x) < batch:  # the last batch padded to the compiled shape
            x = np.concatenate([x, np.zeros((batch - len(x), *x.shape[1:]), np.float32)])
        out = request.infer({0: x})[compiled.outputs[0]][:len(split) - i]
        hits += int((out.argmax(1) == split.labels[i:i + batch].numpy()).sum())
    return 100.0 * hits / len(split)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    data = fashion_mnist()
    split = data.val.subset(args.images, seed=1)
    base, _ = exported("resnet56")
    print(machine())
    for label, model in (("ResNet-56", base.eval()), ("ResNet-56, half the inner filters", half_pruned(base))):
        path = Path(tempfile.mkdtemp(prefix="edgetune-bench-")) / "m.onnx"
        export_onnx(model, torch.zeros(1, 1, 28, 28), path)
        ways = {"torch": lambda m=model: evaluate(m, data, split).top1,
                "torch-cl": lambda m=model: torch_cl(copy.deepcopy(m), data, split),
                "onnxruntime": lambda p=path: onnxruntime_top1(p, data, split),
                "openvino": lambda p=path: openvino_top1(p, data, split)}
        seconds: dict[str, list[float]] = {k: [] for k in ways}
        top1: dict[str, float] = {}
        for _ in range(args.rounds):
            for name, way in ways.items():
                t0 = time.perf_counter()
                top1[name] = way()
                seconds[name].append(time.perf_counter() - t0)
        print(f"\n{label}: {args.images} images, {args.rounds} interleaved rounds")
        print(f"{'way':<12} {'s (median)':>10} {'x torch':>8} {'top-1 %':>8}")
        for name in ways:
            ratio = float(np.median(np.array(seconds[name]) / np.array(seconds["torch"])))
            print(f"{name:<12} {np.median(seconds[name]):>10.3f} {ratio:>8.3f} {top1[name]:>8.2f}")


if __name__ == "__main__":
    main()
