"""Depth pruning of ResNet-56 on Fashion-MNIST: which block-importance criterion keeps the most
accuracy, and what removing blocks buys in measured latency, beside ResNet-20 (the smaller
sibling of the family, trained as usual) timed in the same interleaved rounds.

For each criterion and number of blocks kept per stage, the pruned network's validation top-1
without fine-tuning and after a short fine-tune (the same images and seed for every row), its
MACs, and its ONNX Runtime latency as a ratio to ResNet-56 (one thread, batch 1, interleaved
rounds; the ratio is what holds when the host slows down).

    python benchmarks/bench_depth.py [--keep 6 3 1] [--epochs 1] [--train 4096] [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
import torch_pruning as tp
from _common import exported, fashion_mnist, machine

from edgetune.compress.recipe import apply_pruners
from edgetune.config.benchmark import BenchmarkSpec
from edgetune.config.experiment import FinetuneSpec
from edgetune.config.recipe import parse_schedule
from edgetune.runtimes.export import export_onnx
from edgetune.runtimes.profiler import open_reference, profile_artifact
from edgetune.training.loop import Teacher, Training, evaluate, train_epoch

CRITERIA = ("blocks-change", "blocks-bn", "blocks-loss")
TIMING = {"runs_per_round": 50, "min_rounds": 7, "max_rounds": 15, "max_seconds": 20.0, "warmup": 10,
          "throughput_batches": [], "energy_seconds": 0.0, "engine_throughput": False}


def _finetune(model: torch.nn.Module, data, train, epochs: int, lr: float, teacher=None, alpha: float = 0.0) -> None:
    ft = FinetuneSpec(epochs=epochs, learning_rate=lr)
    taught = None if teacher is None else Teacher(teacher.eval(), alpha, 4.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=ft.momentum, weight_decay=ft.weight_decay,
                                nesterov=True)
    gen = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        train_epoch(model, data, optimizer, Training(batch_size=ft.batch_size, split=train, teacher=taught), generator=gen)
    model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", nargs="+", type=int, default=[6, 3, 1], help="removable blocks kept per stage")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train", type=int, default=4096, help="fine-tuning images")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--criteria", nargs="+", default=list(CRITERIA), choices=CRITERIA)
    parser.add_argument("--distill", type=float, nargs="+", default=[0.0],
                        help="distillation weights alpha to compare (0: plain cross-entropy)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    data = fashion_mnist()
    base, base_onnx = exported("resnet56")
    small, small_onnx = exported("resnet20", base_onnx.parent)
    spec = BenchmarkSpec(**TIMING)
    sample = data.sample_input(64).numpy()
    reference = open_reference(base_onnx, spec)
    example = data.sample_input(1)
    train = data.train.subset(args.train, seed=2)

    def batches(n: int):
        return data.normalize(train.images[:n]), train.labels[:n]

    def measure(name: str, model: torch.nn.Module, onnx_path: Path, seconds: float, **extra) -> dict:
        m = profile_artifact(onnx_path, spec, sample, module=model, reference=reference).metrics
        macs, _ = tp.utils.count_ops_and_params(model, example)
        row = {"network": name, "macs_m": macs / 1e6, "latency_ms": m["latency_ms"],
               "latency_ratio": m["latency_ratio"], "top1_val": evaluate(model, data, data.val).top1,
               "seconds": seconds, **extra}
        print(f"{name:34} {row.get('top1_before_ft', float('nan')):>9.2f} {row['top1_val']:>8.2f} "
              f"{row['macs_m']:>7.1f} {row['latency_ms']:>7.3f} {row['latency_ratio']:>7.3f} {seconds:>7.1f}")
        return row

    print(f"# {machine()}; ResNet-56 on Fashion-MNIST, {len(data.val)} validation images; fine-tune "
          f"{args.epochs} epoch(s) of {args.train} images at lr {args.lr}; latency x ResNet-56 in interleaved "
          f"rounds (ONNX Runtime, 1 thread, batch 1)")
    print(f"{'network':34} {'top1 noFT':>9} {'top1 FT':>8} {'MMACs':>7} {'ms':>7} {'x R56':>7} {'s':>7}")
    rows = [measure("resnet56 (unpruned)", base, base_onnx, 0.0),
            measure("resnet20 (trained as usual)", small, small_onnx, 0.0)]
    for keep, criterion, alpha in [(k, c, a) for k in args.keep for c in args.criteria for a in args.distill]:
        model = copy.deepcopy(base).eval()
        raw = {"pruners": {"d": {"class": criterion, "blocks": keep, "weights": ["layer1", "layer2", "layer3"]}}}
        t0 = time.perf_counter()
        apply_pruners(model, parse_schedule(raw), example, batches=batches)
        before = evaluate(model, data, data.val).top1
        _finetune(model, data, train, args.epochs, args.lr, base if alpha else None, alpha)
        path = base_onnx.parent / f"{criterion}-{keep}-{alpha}.onnx"
        export_onnx(model, example, path)
        label = f"{criterion}, keep {keep}/stage" + (f", KD {alpha:g}" if alpha else "")
        rows.append(measure(label, model, path, time.perf_counter() - t0,
                            criterion=criterion, keep=keep, distill=alpha, top1_before_ft=before))
    reference.close()
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()},
                                         "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
