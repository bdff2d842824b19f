"""Training and evaluating a baseline: `edgetune train`, `edgetune evaluate`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from edgetune.cli.app import (
    InChannelsOpt,
    ModelFactoryOpt,
    ModelOpt,
    NumClassesOpt,
    app,
    architecture,
    console,
)
from edgetune.errors import EdgetuneError


def _check_training(precision: str, device: str, lr: float) -> None:
    """The flags PyTorch would refuse only after the data was read, refused first by name."""
    from edgetune.config.base import training_device

    if precision not in ("auto", "fp32", "bf16"):
        raise EdgetuneError(f"--precision {precision!r} is not one of auto, fp32, bf16")
    try:
        training_device(device)
    except ValueError as exc:
        raise EdgetuneError(f"--device: {exc}") from None
    if not lr > 0:
        raise EdgetuneError(f"--lr {lr}: the learning rate must be above 0 (edgetune trains its baselines at 0.1)")


@app.command()
def train(
    model: Annotated[str, typer.Option(help="Architecture from the registry (edgetune models).")] = "resnet56",
    data: Annotated[str, typer.Option(help="Dataset name: fashion-mnist, cifar10 or image-folder.")] = "fashion-mnist",
    data_root: Annotated[Path | None, typer.Option(help="Directory holding the dataset files.")] = None,
    epochs: Annotated[int, typer.Option(min=1, help="Total epochs of the cosine schedule.")] = 30,
    out: Annotated[Path, typer.Option(help="Checkpoint written after every epoch.")] = Path("checkpoint.pt"),
    lr: Annotated[float, typer.Option(help="Peak SGD learning rate.")] = 0.1,
    batch_size: Annotated[int, typer.Option(min=1)] = 128,
    weight_decay: float = 5e-4,
    seed: int = 0,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:1 ...")] = "cpu",
    val_size: Annotated[int, typer.Option(min=1, help=(
        "Training images held out as the validation split; the checkpoint records it, and a study "
        "refuses a validation split outside it (data.val_size, data.split_seed)."))] = 5000,
    split_seed: Annotated[int, typer.Option(help="Seed of the validation split's draw.")] = 0,
    precision: Annotated[str, typer.Option(help=(
        "auto: bf16 autocast where the device computes bf16 natively (CUDA, CPUs with AVX512-BF16 or AMX), "
        "and channels_last on the CPU; bf16: autocast wherever; fp32: neither."))] = "auto",
) -> None:
    """Train a baseline from scratch. Checkpoints every epoch; run the same command again to resume."""
    import json

    import torch
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from edgetune.data import load_dataset
    from edgetune.models import build_model
    from edgetune.training.baseline import train_baseline
    from edgetune.training.loop import Training

    _check_training(precision, device, lr)
    torch.manual_seed(seed)
    splits = load_dataset(data, data_root, val_size=val_size, split_seed=split_seed)
    net = build_model(model, num_classes=splits.num_classes, in_channels=splits.in_channels)
    meta = {
        "model": model, "num_classes": splits.num_classes, "in_channels": splits.in_channels,
        "dataset": data, "image_size": list(splits.image_size), "mean": list(splits.mean),
        "std": list(splits.std), "epochs": epochs, "lr": lr, "batch_size": batch_size,
        "weight_decay": weight_decay, "seed": seed, "precision": precision, "command": " ".join(["edgetune", *sys.argv[1:]]),
    }
    with Progress(TextColumn(f"[bold]{model}[/] steps"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task("train", total=None)
        training = Training(epochs=epochs, lr=lr, batch_size=batch_size, weight_decay=weight_decay, seed=seed,
                            device=device, precision=precision)
        result = train_baseline(net, splits, training, out=out, meta=meta, log=bar.console.print,
                                on_step=lambda done, total: bar.update(task, completed=done, total=total))
    history = result.pop("history")
    out.with_suffix(".json").write_text(json.dumps({**result, "history": history}, indent=2))
    console.print(
        f"[bold]{model}[/] on {data}: test top-1 {result['test_top1']:.2f} %, "
        f"top-5 {result['test_top5']:.2f} %, {result['train_seconds']:.0f} s -> {out}"
    )


@app.command()
def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint written by edgetune train.")],
    data: Annotated[str | None, typer.Option(help="Dataset; defaults to the one the checkpoint records.")] = None,
    data_root: Annotated[Path | None, typer.Option(help="Directory holding the dataset files.")] = None,
    split: Annotated[str, typer.Option(help="val or test.")] = "test",
    model_factory: ModelFactoryOpt = None,
    model: ModelOpt = None,
    num_classes: NumClassesOpt = None,
    in_channels: InChannelsOpt = None,
) -> None:
    """Evaluate a checkpoint's top-1/top-5 and loss on the validation or test split.

    \b
    A bare state dict (torch.save(net.state_dict(), ...)) records no architecture:
      edgetune evaluate weights.pt --model resnet20 --num-classes 10 --in-channels 1
    """
    from edgetune.data import load_dataset
    from edgetune.models.registry import load_described
    from edgetune.training.loop import evaluate as run_eval

    if split not in ("val", "test"):
        raise EdgetuneError(f"--split must be 'val' or 'test', not '{split}'")
    net, meta = load_described(checkpoint, architecture(model, model_factory, num_classes, in_channels))
    splits = load_dataset(data or meta.get("dataset", "fashion-mnist"), data_root)
    result = run_eval(net, splits, getattr(splits, split))
    console.print(
        f"{meta.get('model') or meta.get('factory')} on {splits.name} {split} ({result.n} images): top-1 {result.top1:.2f} %, "
        f"top-5 {result.top5:.2f} %, loss {result.loss:.4f}"
    )
