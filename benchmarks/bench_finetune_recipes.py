"""Fine-tuning recipes at equal compute: which recovers a pruned ResNet-56 best in the main job's
budget (one pass over 4,096 training images, batch 128, SGD momentum 0.9, ResNet-56 teaching).

Every arm starts from the same pruned network (the main job's recipe applied with
`compress.recipe.apply_pruners`, norm statistics re-estimated as a trial does) and sees the same
images in the same order (one seed per repeat); only the schedule and the distillation differ.
After training, the statistics are re-estimated again, as a trial and the final stage now do
(both figures kept). Top-1 on the whole validation split (5,000 images, never the test split),
in fp32. `ramp` is what the final stage did before: a linear warm-up over its one epoch, ending
at the peak rate.

`--starts re-estimated least-squares` trains each arm from both starting points: the pruned
network with its statistics re-estimated, and the same after least squares re-fitted each block's
second convolution to the unpruned network's outputs on 256 training images (between two
re-estimations, as `calibrate.reconstruct` does): whether what least squares recovers before
training is still there after it.

    python benchmarks/bench_finetune_recipes.py [--images 4096] [--seeds 0 1] [--shapes 7/4/4 5/4/4]
        [--arms today cosine] [--starts re-estimated least-squares] [--json out.json]
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
from edgetune.compress.reconstruct import reconstruct_consumers
from edgetune.models import load_checkpoint
from edgetune.training.loop import Teacher, Training, evaluate, train_epoch

SHAPES = {"7/4/4 -38/-2/-40 %": ((7, 4, 4), (0.38, 0.02, 0.40)), "5/4/4 -30 %": ((5, 4, 4), (0.3, 0.3, 0.3)),
          "4/3/3 -0 %": ((4, 3, 3), (0.0, 0.0, 0.0)), "3/3/3 -20 %": ((3, 3, 3), (0.2, 0.2, 0.2))}
# name -> (peak learning rate, schedule over the steps, distillation alpha or None)
ARMS = {
    "today: lr 0.01 constant, distil 0.7": (0.01, "constant", 0.7),
    "lr 0.01 cosine, distil 0.7": (0.01, "cosine", 0.7),
    "lr 0.01 cosine, no teacher": (0.01, "cosine", None),
    "lr 0.01 cosine, distil 0.3": (0.01, "cosine", 0.3),
    "lr 0.02 cosine, distil 0.7": (0.02, "cosine", 0.7),
    "lr 0.02 cosine, no teacher": (0.02, "cosine", None),
    "lr 0.1 cosine, no teacher (FinetuneSpec's default rate)": (0.1, "cosine", None),
    "final stage before: lr 0.01 ramp, distil 0.7": (0.01, "ramp", 0.7),
}
STARTS = ("re-estimated", "least-squares")
FACTORS = {"constant": lambda progress: 1.0, "cosine": lambda progress: 0.5 * (1 + math.cos(math.pi * progress)),
           "ramp": lambda progress: progress}


def finetune(start: torch.nn.Module, teacher: torch.nn.Module, data, split, lr: float, schedule: str,
             alpha: float | None, seed: int) -> tuple[torch.nn.Module, float]:
    model = copy.deepcopy(start)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    steps = math.ceil(len(split) / 128)
    # The ramp as train_baseline's warm-up was: (step + 1) / steps.
    shift = 1 if schedule == "ramp" else 0
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: FACTORS[schedule](min((s + shift) / steps, 1.0)))
    taught = Teacher(teacher.eval(), alpha, 4.0) if alpha is not None else None
    t0 = time.perf_counter()
    train_epoch(model, data, optimizer, Training(batch_size=128, split=split, teacher=taught),
                generator=torch.Generator().manual_seed(seed), step_hook=scheduler.step)
    return model, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--shapes", nargs="+", help="shapes whose name starts so (default: all)")
    parser.add_argument("--arms", nargs="+", help="arms whose name contains one of these (default: all)")
    parser.add_argument("--starts", nargs="+", choices=STARTS, default=["re-estimated"])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = fashion_mnist()
    unpruned, _ = load_checkpoint(MODELS["resnet56"])
    unpruned.eval()
    base = evaluate(unpruned, data, data.val).top1
    print(f"{machine()}\nResNet-56 unpruned: {base:.2f} % on {len(data.val)} validation images", flush=True)
    calib = data.normalize(data.train.subset(1024, seed=2).images)
    samples = data.normalize(data.train.subset(256, seed=4).images)
    shapes = {k: v for k, v in SHAPES.items() if not args.shapes or any(k.startswith(p) for p in args.shapes)}
    arms = {k: v for k, v in ARMS.items() if not args.arms or any(p in k for p in args.arms)}
    rows = []
    for shape, (blocks, widths) in shapes.items():
        for start_name in args.starts:
            start = copy.deepcopy(unpruned)
            apply_pruners(start, schedule_for(blocks, widths), data.sample_input(1))
            reestimate_norms(start, calib)
            if start_name == "least-squares":  # fitted to the statistics the network will have
                reconstruct_consumers(start, unpruned, samples)
                reestimate_norms(start, calib)
            start_top1 = evaluate(start, data, data.val).top1
            print(f"\n{shape}, {start_name}: {start_top1:.2f} % before training", flush=True)
            for seed in args.seeds:
                split = data.train.subset(args.images, seed=seed)
                for arm, (lr, schedule, alpha) in arms.items():
                    model, seconds = finetune(start, unpruned, data, split, lr, schedule, alpha, seed)
                    trained = evaluate(model, data, data.val).top1
                    reestimate_norms(model, calib)  # as a trial does after its last epoch
                    top1 = evaluate(model, data, data.val).top1
                    rows.append({"shape": shape, "start": start_name, "seed": seed, "arm": arm,
                                 "start_top1": start_top1, "top1_before_settle": trained, "top1": top1,
                                 "seconds": round(seconds, 1)})
                    print(f"  seed {seed}  {arm:46} {trained:6.2f} -> {top1:6.2f} %  ({seconds:.0f} s)", flush=True)
    print("\nmean over shapes and seeds (trained -> statistics re-estimated):")
    for start_name in args.starts:
        for arm in arms:
            mine = [r for r in rows if r["arm"] == arm and r["start"] == start_name]
            print(f"  {start_name:14} {arm:46} {sum(r['top1_before_settle'] for r in mine) / len(mine):6.2f} -> "
                  f"{sum(r['top1'] for r in mine) / len(mine):6.2f} %")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "images": args.images, "baseline_top1": base,
                                         "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
