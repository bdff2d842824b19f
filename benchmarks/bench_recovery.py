"""What is recovered before any training: the main job's shapes of ResNet-56 scored as pruned
(the unpruned network's norm statistics), after the statistics are re-estimated on training
images in train mode, with no gradient step (`calibrate.batchnorm`, EagleEye's adaptive BN), and
after the statistics are re-estimated, the layers that lost inputs re-fitted by least squares to
the unpruned network's outputs, and the statistics re-estimated again (`calibrate.reconstruct`,
ThiNet / He et al.).

The shapes are the main job's recipe (examples/resnet56-fmnist/experiment.yaml: residual blocks
kept per stage, the inner convolutions' filters removed by L1 norm) applied with
`compress.recipe.apply_pruners`, exactly as a trial applies them. Top-1 on a fixed subset of the
validation split (never the test split); the re-estimation's seconds beside.

With `--model mobilenetv2` (models/mobilenetv2-fmnist.pt), the shapes are every inverted
residual block's 1x1 expansion losing the same share of its filters by L1 norm (its hidden
width: what the second seed's filter pruning searched), at 20 to 80 %.

    python benchmarks/bench_recovery.py [--model resnet56|mobilenetv2] [--val 2000] [--images 1024]
                                        [--samples 256] [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
import yaml
from _common import MODELS, ROOT, fashion_mnist, machine

from edgetune.compress.recalibrate import reestimate_norms
from edgetune.compress.recipe import apply_pruners
from edgetune.compress.reconstruct import reconstruct_consumers
from edgetune.config.recipe import parse_schedule
from edgetune.models import load_checkpoint
from edgetune.training.loop import evaluate

# (blocks kept in layer1/2/3, inner filters removed in each stage): the table.
SHAPES = [((8, 7, 7), (0.1, 0.1, 0.1)), ((6, 6, 6), (0.2, 0.2, 0.2)), ((9, 9, 9), (0.5, 0.5, 0.5)),
          ((5, 4, 4), (0.3, 0.3, 0.3)), ((4, 3, 3), (0.0, 0.0, 0.0)), ((3, 3, 3), (0.2, 0.2, 0.2)),
          ((4, 3, 3), (0.4, 0.4, 0.4)), ((7, 4, 4), (0.38, 0.02, 0.40))]


def schedule_for(blocks: tuple[int, ...], widths: tuple[float, ...]):
    recipe = yaml.safe_load((ROOT / "examples" / "resnet56-fmnist" / "experiment.yaml").read_text())["recipe"]
    for i in range(3):
        recipe["pruners"][f"depth_{i + 1}"]["blocks"] = blocks[i]
        recipe["pruners"][f"width_{i + 1}"]["desired_sparsity"] = widths[i]
    return parse_schedule(recipe, "main job recipe")


MOBILENETV2 = ROOT / "models" / "mobilenetv2-fmnist.pt"
EXPANSIONS = [f"module.features.{i}.conv.0.weight" for i in range(2, 18)]
MOBILENETV2_RATIOS = [0.2, 0.4, 0.6, 0.8]


def mobilenetv2_schedule(ratio: float):
    """Every expansion's filters, the same share removed (experiments/part6-mobilenetv2-fp-*)."""
    return parse_schedule({"version": 1, "pruners": {"expansions": {
        "class": "filters-l1", "desired_sparsity": ratio, "weights": EXPANSIONS}},
        "policies": [{"pruner": {"instance_name": "expansions"}, "epochs": [0]}]}, "mobilenetv2 expansions")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet56", choices=["resnet56", "mobilenetv2"])
    parser.add_argument("--val", type=int, default=2000, help="validation images scored (fixed subset)")
    parser.add_argument("--images", type=int, default=1024, help="training images the statistics are re-estimated on")
    parser.add_argument("--samples", type=int, default=256, help="training images the least squares are fitted on")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = fashion_mnist()
    val = data.val.subset(args.val, seed=0)
    calib = data.normalize(data.train.subset(args.images, seed=2).images)
    unpruned, _ = load_checkpoint(MODELS["resnet56"] if args.model == "resnet56" else MOBILENETV2)
    base = evaluate(unpruned.eval(), data, val).top1
    print(f"{machine()}\n{args.model} unpruned: {base:.2f} % on {len(val)} validation images\n")
    if args.model == "resnet56":
        shapes = [("/".join(map(str, b)), "/".join(f"{w:.0%}" for w in ws), schedule_for(b, ws)) for b, ws in SHAPES]
    else:
        shapes = [("-", f"{r:.0%}", mobilenetv2_schedule(r)) for r in MOBILENETV2_RATIOS]
    samples = data.normalize(data.train.subset(args.samples, seed=4).images)
    print(f"{'blocks':>8} {'inner removed':>16} {'as pruned':>10} {'re-estimated':>13} {'seconds':>8} "
          f"{'+ least squares':>16} {'seconds':>8}")
    rows = []
    for shape, removed, schedule in shapes:
        model = copy.deepcopy(unpruned).eval()
        apply_pruners(model, schedule, data.sample_input(1))
        stale = evaluate(model, data, val).top1
        t0 = time.perf_counter()
        reestimate_norms(model, calib)
        seconds = time.perf_counter() - t0
        fresh = evaluate(model, data, val).top1
        refit = copy.deepcopy(unpruned).eval()
        apply_pruners(refit, schedule, data.sample_input(1))
        t0 = time.perf_counter()
        reestimate_norms(refit, calib)  # the inputs the least squares see are those the network will have
        refitted = reconstruct_consumers(refit, unpruned, samples)
        reestimate_norms(refit, calib)
        refit_seconds = time.perf_counter() - t0
        both = evaluate(refit, data, val).top1
        rows.append({"blocks": shape, "inner_removed": removed, "top1_as_pruned": stale, "top1_reestimated": fresh,
                     "reestimate_seconds": round(seconds, 2), "top1_reconstructed": both,
                     "layers_refitted": refitted, "reconstruct_seconds": round(refit_seconds, 2)})
        print(f"{shape:>8} {removed:>16} {stale:>10.2f} {fresh:>13.2f} {seconds:>8.2f} {both:>16.2f} "
              f"{refit_seconds:>8.2f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "model": args.model, "val_images": len(val), "calibration_images": len(calib),
                                         "least_squares_images": len(samples),
                                         "baseline_top1": base, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
