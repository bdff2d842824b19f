"""How many training images re-estimating norm statistics needs: three of the main job's ResNet-56
shapes re-estimated on 256, 512, 1,024 and 2,048 images, top-1 on a fixed 2,000 validation
images and the seconds each took (the default `calibrate.batchnorm_images` was chosen from this).

    python benchmarks/bench_batchnorm_images.py
"""

from __future__ import annotations

import copy
import time

import torch
from _common import MODELS, fashion_mnist, machine
from bench_recovery import schedule_for

from edgetune.compress.recalibrate import reestimate_norms
from edgetune.compress.recipe import apply_pruners
from edgetune.models import load_checkpoint
from edgetune.training.loop import evaluate

SHAPES = [((6, 6, 6), (0.2, 0.2, 0.2)), ((5, 4, 4), (0.3, 0.3, 0.3)), ((7, 4, 4), (0.38, 0.02, 0.40))]


def main() -> None:
    torch.set_num_threads(2)
    data = fashion_mnist()
    val = data.val.subset(2000, seed=0)
    unpruned, _ = load_checkpoint(MODELS["resnet56"])
    print(machine())
    for blocks, widths in SHAPES:
        base = copy.deepcopy(unpruned).eval()
        apply_pruners(base, schedule_for(blocks, widths), data.sample_input(1))
        for n in (256, 512, 1024, 2048):
            model = copy.deepcopy(base)
            images = data.normalize(data.train.subset(n, seed=2).images)
            t0 = time.perf_counter()
            reestimate_norms(model, images)
            seconds = time.perf_counter() - t0
            print(f"blocks {'/'.join(map(str, blocks))}  {n:>5} images  top-1 {evaluate(model, data, val).top1:6.2f} %"
                  f"  {seconds:5.2f} s", flush=True)


if __name__ == "__main__":
    main()
