"""Fine-tuning recipes at equal compute: which recovers a pruned ResNet-56 best in the main job's
budget (one pass over 4,096 training images, batch 128, SGD momentum 0.9, ResNet-56 teaching).

Every arm starts from the same pruned network (the main job's recipe applied with
`compress.recipe.apply_pruners`, norm statistics re-estimated as a trial does) and sees the same
images in the same order (one seed per repeat); only the schedule and the distillation differ.
Top-1 on the whole validation split (5,000 images, never the test split), in fp32.

    python benchmarks/bench_finetune_recipes.py [--images 4096] [--seeds 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path

import torch
from _common import MODELS, fashion_mnist, machine
from bench_recovery import schedule_for

from edgetune.compress.recalibrate import reestimate_norms
from edgetune.compress.recipe import apply_pruners
from edgetune.models import load_checkpoint
from edgetune.training import Teacher, evaluate, train_epoch

SHAPES = {"7/4/4 -38/-2/-40 %": ((7, 4, 4), (0.38, 0.02, 0.40)), "5/4/4 -30 %": ((5, 4, 4), (0.3, 0.3, 0.3))}
# name -> (peak learning rate, schedule over the steps, distillation alpha or None)
ARMS = {
    "today: lr 0.01 constant, distil 0.7": (0.01, "constant", 0.7),
    "lr 0.01 cosine, distil 0.7": (0.01, "cosine", 0.7),
    "lr 0.01 cosine, no teacher": (0.01, "cosine", None),
    "lr 0.01 cosine, distil 0.3": (0.01, "cosine", 0.3),
    "lr 0.02 cosine, distil 0.7": (0.02, "cosine", 0.7),
}


def finetune(start: torch.nn.Module, teacher: torch.nn.Module, data, split, lr: float, schedule: str,
             alpha: float | None, seed: int) -> tuple[torch.nn.Module, float]:
    model = copy.deepcopy(start)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    steps = math.ceil(len(split) / 128)
    factor = (lambda s: 0.5 * (1 + math.cos(math.pi * min(s / steps, 1.0)))) if schedule == "cosine" else (lambda s: 1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    teaching = Teacher(teacher, alpha, 4.0).as_kwargs() if alpha is not None else {}
    t0 = time.perf_counter()
    train_epoch(model, data, optimizer, batch_size=128, generator=torch.Generator().manual_seed(seed), split=split,
                step_hook=scheduler.step, **teaching)
    return model, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = fashion_mnist()
    unpruned, _ = load_checkpoint(MODELS["resnet56"])
    unpruned.eval()
    base = evaluate(unpruned, data, data.val).top1
    print(f"{machine()}\nResNet-56 unpruned: {base:.2f} % on {len(data.val)} validation images", flush=True)
    calib = data.normalize(data.train.subset(1024, seed=2).images)
    rows = []
    for shape, (blocks, widths) in SHAPES.items():
        start = copy.deepcopy(unpruned)
        apply_pruners(start, schedule_for(blocks, widths), data.sample_input(1))
        reestimate_norms(start, calib)
        start_top1 = evaluate(start, data, data.val).top1
        print(f"\n{shape}: {start_top1:.2f} % after re-estimation, before training", flush=True)
        for seed in args.seeds:
            split = data.train.subset(args.images, seed=seed)
            for arm, (lr, schedule, alpha) in ARMS.items():
                model, seconds = finetune(start, unpruned, data, split, lr, schedule, alpha, seed)
                top1 = evaluate(model, data, data.val).top1
                rows.append({"shape": shape, "seed": seed, "arm": arm, "start_top1": start_top1, "top1": top1,
                             "seconds": round(seconds, 1)})
                print(f"  seed {seed}  {arm:40} {top1:6.2f} %  ({seconds:.0f} s)", flush=True)
    print("\nmean over shapes and seeds:")
    for arm in ARMS:
        mine = [r["top1"] for r in rows if r["arm"] == arm]
        print(f"  {arm:40} {sum(mine) / len(mine):6.2f} %")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "images": args.images, "baseline_top1": base,
                                         "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
