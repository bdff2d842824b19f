"""Distilled training at the same compute, with and without augmentation: crop and flip change
every image every epoch, so the teacher (ResNet-56) runs on every batch; without them its logits
are computed once per image (`finetune.augment: false`, `final.augment: false`) and an epoch
costs about half as much on a CPU, so twice as many epochs fit in the same minutes.

The student is ResNet-20 with each block's inner convolution cut to 8/24/48 filters (the
structure part 7's fp32 search picked, docs/results.md), pruned here by L1 norm with
Torch-Pruning's dependency graph; both arms start from the same weights, use the same cosine
schedule peak and seed, and are scored on the 5,000 validation images (never the test split).

    python benchmarks/bench_teacher_once.py [--epochs 3] [--train 55000] [--lr 0.02] [--json out.json]

Prints each arm's epochs, seconds per epoch, total seconds and validation top-1, and the ratio
of the two arms' seconds per epoch measured in this one run.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import torch
import torch_pruning as tp
from _common import fashion_mnist, machine

from edgetune.models import load_checkpoint
from edgetune.training.baseline import train_baseline
from edgetune.training.loop import Teacher, Training

ROOT = Path(__file__).resolve().parents[1]
INNER = {"layer1": 8, "layer2": 24, "layer3": 48}  # filters kept in each block's conv1


def pruned_student(example: torch.Tensor) -> torch.nn.Module:
    model, _ = load_checkpoint(ROOT / "models" / "resnet20-fmnist.pt")
    graph = tp.DependencyGraph().build_dependency(model.eval(), example_inputs=example)
    for name, module in list(model.named_modules()):
        stage, _, rest = name.partition(".")
        if stage in INNER and rest.endswith(".conv1"):
            norms = module.weight.detach().abs().sum(dim=(1, 2, 3))
            drop = norms.argsort()[: module.out_channels - INNER[stage]].tolist()
            graph.get_pruning_group(module, tp.prune_conv_out_channels, idxs=drop).prune()
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the augmented arm (the other gets twice)")
    parser.add_argument("--train", type=int, default=None, help="training images (default: the whole split)")
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = fashion_mnist()
    split = data.train.subset(args.train, seed=3)
    teacher_net, _ = load_checkpoint(ROOT / "models" / "resnet56-fmnist.pt")
    teacher = Teacher(teacher_net.eval(), alpha=0.7, temperature=4.0)
    start = pruned_student(data.sample_input(1))
    meta = {"model": "resnet20", "num_classes": 10, "in_channels": 1}
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for arm, augmented, epochs in (("augmented, teacher per batch", True, args.epochs),
                                       ("not augmented, teacher once", False, 2 * args.epochs)):
            student = copy.deepcopy(start)
            out = Path(work) / f"{augmented}.pt"
            t0 = time.perf_counter()
            training = Training(epochs=epochs, lr=args.lr, split=split, teacher=teacher, augmented=augmented)
            result = train_baseline(student, data, training, out=out, meta=meta, score_test=False, log=print)
            seconds = time.perf_counter() - t0
            rows.append({"arm": arm, "epochs": epochs, "train_images": len(split), "seconds": round(seconds, 1),
                         "seconds_per_epoch": round(result["train_seconds"] / epochs, 1),
                         "val_top1": result["val_top1"]})
    print(f"\n{'arm':32} {'epochs':>6} {'s/epoch':>8} {'seconds':>8} {'val top-1':>9}")
    for r in rows:
        print(f"{r['arm']:32} {r['epochs']:>6} {r['seconds_per_epoch']:>8.1f} {r['seconds']:>8.1f} {r['val_top1']:>9.2f}")
    ratio = rows[1]["seconds_per_epoch"] / rows[0]["seconds_per_epoch"]
    print(f"an epoch without augmentation costs {ratio:.2f}x one with it (teacher asked once, {len(split)} images)")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "lr": args.lr, "rows": rows,
                                         "epoch_cost_ratio": ratio}, indent=2))


if __name__ == "__main__":
    main()
