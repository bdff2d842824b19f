"""What several test modules share: the tiny study most tests run (ResNet-20 on Fashion-MNIST,
subsets of a few hundred images, timings of a few rounds), the short benchmark settings, and the
quick width grid. Fixtures that go with them are in conftest.py; test modules import from here,
never from each other."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).parents[1]
CKPT = ROOT / "models" / "resnet20-fmnist.pt"
# Timings of a few rounds: these tests check behaviour, the benchmarks measure.
QUICK = {"warmup": 2, "runs_per_round": 5, "min_rounds": 2, "max_rounds": 3, "throughput_seconds": 0.2,
         "energy_seconds": 0.2, "throughput_batches": [1, 8]}

RECIPE = {
    "version": 1,
    "pruners": {
        "stage_1": {"class": "L1RankedStructureParameterPruner", "group_type": "Filters", "desired_sparsity": 0.5,
                    "weights": [f"module.layer1.{i}.conv1.weight" for i in range(3)]},
        "stage_3": {"class": "L2RankedStructureParameterPruner", "group_type": "Filters", "desired_sparsity": 0.5,
                    "weights": [f"module.layer3.{i}.conv1.weight" for i in range(3)]},
    },
    "lr_schedulers": {"decay": {"class": "ExponentialLR", "gamma": 0.5}},
    "policies": [
        {"pruner": {"instance_name": "stage_1"}, "epochs": [0]},
        {"pruner": {"instance_name": "stage_3"}, "epochs": [0]},
        {"lr_scheduler": {"instance_name": "decay"}, "starting_epoch": 1, "ending_epoch": 10, "frequency": 1},
    ],
}


def experiment(tmp_path: Path, trials: int = 3, epochs: int = 1, train_subset: int = 256, **extra) -> Path:
    spec = {
        "name": "tiny",
        "model": {"checkpoint": str(ROOT / "models" / "resnet20-fmnist.pt")},
        "data": {"name": "fashion-mnist", "train_subset": train_subset, "val_subset": 200},
        "recipe": RECIPE,
        "sweep": {"method": "random", "metric": {"name": "Latency", "goal": "minimize"},
                  "parameters": {"stage_1": {"min": 0.3, "max": 0.9}, "stage_3": {"min": 0.3, "max": 0.9}},
                  # 256 images cannot rescue a heavily pruned net; these tests check the pipeline.
                  "early_stop": {"collapse": False}},
        "finetune": {"epochs": epochs, "learning_rate": 0.01},
        "benchmark": {"runs_per_round": 5, "min_rounds": 2, "max_rounds": 3, "throughput_batches": [8],
                      "throughput_seconds": 0.2, "warmup": 2},
        "trials": trials,
        "run_dir": str(tmp_path / "run"),
        **extra,
    }
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def fmnist_sample(fmnist, n: int = 64) -> np.ndarray:
    """The first `n` validation images, normalised: what a benchmark times and checks parity on."""
    return fmnist.normalize(fmnist.val.images[:n]).numpy()


def coarse_widths(real):
    """A quick width profile for tests: 1, the full width, and steps of 8 up to 32 channels or of
    16 beyond (each width is an export, a parity check and a timing, at INT8 a quantisation too)."""
    def profile(*args, **kwargs):
        kwargs["widths_for"] = lambda full: sorted({1, *range(8 if full <= 32 else 16, full + 1,
                                                              8 if full <= 32 else 16), full})
        return real(*args, **kwargs)

    return profile


def bench_request(path: Path, sample: np.ndarray, **extra):
    """A device worker's request for the ONNX file at `path`, timed beside itself, the quick way."""
    import base64

    from edgetune.worker.messages import BenchRequest, encode_array

    onnx_b64 = base64.b64encode(path.read_bytes()).decode()
    return BenchRequest(id="req-00000001", onnx=onnx_b64, reference_onnx=onnx_b64, sample=encode_array(sample),
                        benchmark={**QUICK, "throughput_batches": [8]}, **extra)


def five_class_checkpoint(tmp_path: Path) -> Path:
    """A ResNet-20 checkpoint of five classes: a reference or teacher the ten-class data refuses."""
    from edgetune.models import build_model, save_checkpoint

    five = tmp_path / "five-classes.pt"
    save_checkpoint(five, build_model("resnet20", num_classes=5, in_channels=1),
                    {"model": "resnet20", "num_classes": 5, "in_channels": 1})
    return five
