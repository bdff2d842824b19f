"""Training speed on this CPU: fp32 against bf16 autocast, channels_last, and both, and
torch.compile when asked; then what the fast path `finetune.precision: auto` picks here costs in
accuracy after a real distilled fine-tuning at equal steps (and bf16's, where it is native).

Speed: ResNet-56 training steps (batch 128 of 28x28 Fashion-MNIST, SGD with momentum, ResNet-56
teaching as in the main job) timed in interleaved rounds, so a slow spell of the shared host
moves every arm alike; images per second and each arm's ratio to fp32 in the same rounds.
Accuracy: the main job's trial-10 shape (blocks 7/4/4, inner filters -38/-2/-40 %) fine-tuned
by `training.train_epoch` for the same images in each arm, from the same start and seed, top-1
on the whole validation split in fp32 (never the test split).

    python benchmarks/bench_training_speed.py [--rounds 2] [--steps 3] [--finetune 4096] [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch
from _common import MODELS, fashion_mnist, machine
from bench_recovery import schedule_for

from edgetune.compress.recalibrate import reestimate_norms
from edgetune.compress.recipe import apply_pruners
from edgetune.models import load_checkpoint
from edgetune.training.loop import Teacher, Training, bf16_native, evaluate, fast_path, train_epoch

ARMS = {"fp32": (None, False), "bf16 autocast": (torch.bfloat16, False), "channels_last": (None, True),
        "bf16 + channels_last": (torch.bfloat16, True)}


def steps_per_second(model: torch.nn.Module, teacher: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                     dtype: torch.dtype | None, channels_last: bool, steps: int, compiled: bool = False) -> float:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model, teacher = model.to(memory_format=fmt), teacher.to(memory_format=fmt)
    x = x.contiguous(memory_format=fmt)
    step_model = torch.compile(model) if compiled else model
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None):
            with torch.no_grad():
                soft = teacher(x).float()
            out = step_model(x).float()
            loss = torch.nn.functional.cross_entropy(out, y) + torch.nn.functional.mse_loss(out, soft)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2):  # warm-up (and compilation)
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * len(x) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per arm per round")
    parser.add_argument("--finetune", type=int, default=4096, help="training images of the accuracy arms")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (minutes to build)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = fashion_mnist()
    unpruned, _ = load_checkpoint(MODELS["resnet56"])
    batch = data.train.subset(128, seed=1)
    x, y = data.normalize(batch.images), batch.labels
    arms = dict(ARMS)
    if args.compile:
        arms["bf16 + channels_last, compiled"] = (torch.bfloat16, True)
    speeds: dict[str, list[float]] = {a: [] for a in arms}
    for r in range(args.rounds):
        for arm, (dtype, cl) in arms.items():
            speeds[arm].append(steps_per_second(copy.deepcopy(unpruned), copy.deepcopy(unpruned).eval(), x, y, dtype,
                                                cl, args.steps, compiled="compiled" in arm))
        print(f"round {r + 1}: " + ", ".join(f"{a} {s[-1]:.0f} img/s" for a, s in speeds.items()), flush=True)
    ratios = {a: statistics.median(s / f for s, f in zip(v, speeds["fp32"], strict=True)) for a, v in speeds.items()}
    print(f"\n{machine()}\n{'arm':34} {'img/s (median)':>15} {'x fp32 (same rounds)':>21}")
    for arm, v in speeds.items():
        print(f"{arm:34} {statistics.median(v):>15.0f} {ratios[arm]:>21.2f}")

    start = copy.deepcopy(unpruned).eval()
    apply_pruners(start, schedule_for((7, 4, 4), (0.38, 0.02, 0.40)), data.sample_input(1))
    reestimate_norms(start, data.normalize(data.train.subset(2048, seed=2).images))
    split = data.train.subset(args.finetune, seed=0)
    teacher = Teacher(unpruned.eval(), alpha=0.7, temperature=4.0)
    accuracy = {"start": evaluate(start, data, data.val).top1}
    seconds_of: dict[str, float] = {}
    amp, channels_last = fast_path("cpu", "auto")
    print(f"finetune.precision auto on this host: bf16 autocast {amp}, channels_last {channels_last} "
          f"(native bf16: {bf16_native('cpu')})")
    for arm in ("fp32", "auto", *(["bf16"] if bf16_native("cpu") else [])):
        model = copy.deepcopy(start)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
        t0 = time.perf_counter()
        train_epoch(model, data, opt, Training(batch_size=128, split=split, precision=arm, teacher=teacher),
                    generator=torch.Generator().manual_seed(0))
        seconds = seconds_of[arm] = round(time.perf_counter() - t0, 1)
        accuracy[arm] = evaluate(model, data, data.val).top1
        print(f"fine-tuned on {len(split)} images, {arm}: {seconds:.0f} s, val top-1 {accuracy[arm]:.2f} % "
              f"(start {accuracy['start']:.2f})", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "bf16_native": bf16_native("cpu"),
                                         "images_per_second": speeds, "ratio_to_fp32": ratios,
                                         "finetune_images": len(split), "finetune_seconds": seconds_of,
                                         "val_top1": accuracy}, indent=2) + "\n")


if __name__ == "__main__":
    main()
