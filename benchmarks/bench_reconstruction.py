"""Channel pruning with least-squares reconstruction against plain L1 channel pruning (and L1
filter pruning of the same channels), at equal ratios, without fine-tuning.

ResNet-56 on Fashion-MNIST: every residual block loses the same fraction of its inner channels
(the second convolution's inputs, i.e. the first convolution's filters), so all three methods
remove exactly the same number of structures and reach the same MACs; only the choice of
channels and, for reconstruction, the new weights differ. Top-1 on the whole validation split.

    python benchmarks/bench_reconstruction.py [--ratios 0.3 0.5 0.7] [--samples 64 256]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch_pruning as tp
from _common import MODELS, fashion_mnist, machine

from edgetune.compress.recipe import apply_pruners
from edgetune.config.recipe import parse_schedule
from edgetune.models import load_checkpoint
from edgetune.training.loop import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet56", choices=sorted(MODELS))
    parser.add_argument("--ratios", nargs="+", type=float, default=[0.3, 0.5, 0.7])
    parser.add_argument("--samples", nargs="+", type=int, default=[64, 256])
    args = parser.parse_args()
    data = fashion_mnist()
    base, _ = load_checkpoint(MODELS[args.model])
    blocks = (int(args.model.removeprefix("resnet")) - 2) // 6
    inner = [f"layer{s}.{i}" for s in (1, 2, 3) for i in range(blocks)]
    train = data.train.subset(4096, seed=2)

    def batches(n: int):
        return data.normalize(train.images[:n]), train.labels[:n]

    example = data.sample_input(1)
    macs0, _ = tp.utils.count_ops_and_params(base, example)
    ref = evaluate(base, data, data.val)
    print(f"# {machine()}; {args.model}, no fine-tuning, top-1 on {len(data.val)} validation images; "
          f"unpruned {ref.top1:.2f} %")
    # Distiller's L1 pruners rank the named weight alone (its filters, or its input channels);
    # edgetune's names rank the coupled group, which for these pairs is the same group either way.
    variants = [("L1RankedStructureParameterPruner", "conv1", {"group_type": "Filters"}),
                ("L1RankedStructureParameterPruner", "conv2", {"group_type": "Channels"}),
                ("filters-l1", "conv1", {}), ("channels-l1", "conv2", {})] + [
        ("channels-reconstruct", "conv2", {"n_samples": n}) for n in args.samples]
    print(f"{'ratio':>5} {'method':34} {'MACs':>6} {'top-1 %':>8} {'top-5 %':>8} {'seconds':>8}")
    for ratio in args.ratios:
        for method, conv, extra in variants:
            model = copy.deepcopy(base)
            weights = [f"{b}.{conv}.weight" for b in inner]
            raw = {"pruners": {"p": {"class": method, "desired_sparsity": ratio, "weights": weights, **extra}}}
            t0 = time.perf_counter()
            apply_pruners(model, parse_schedule(raw), example, batches=batches)
            seconds = time.perf_counter() - t0
            macs, _ = tp.utils.count_ops_and_params(model, example)
            r = evaluate(model, data, data.val)
            label = {"Filters": "Distiller L1 filters", "Channels": "Distiller L1 channels"}.get(
                extra.get("group_type"), method + (f" ({extra['n_samples']} images)" if "n_samples" in extra else ""))
            print(f"{ratio:5.2f} {label:34} {macs / macs0:6.3f} {r.top1:8.2f} {r.top5:8.2f} {seconds:8.1f}", flush=True)


if __name__ == "__main__":
    main()
