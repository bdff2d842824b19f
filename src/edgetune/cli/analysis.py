"""Looking at a network before searching it: `edgetune sensitivity`, `profile-widths`, `recipe suggest`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from edgetune.cli.app import ModelFactoryOpt, ModelOpt, app, architecture, console, recipe_app


@app.command()
def sensitivity(
    checkpoint: Annotated[Path, typer.Option(help="The trained network (edgetune train's checkpoint).")],
    model: ModelOpt = None,
    model_factory: ModelFactoryOpt = None,
    data: Annotated[str, typer.Option(help="fashion-mnist, cifar10 or folder.")] = "fashion-mnist",
    data_root: Annotated[Path | None, typer.Option(help="Directory holding the dataset files.")] = None,
    method: Annotated[str, typer.Option(help="Compression method: filters-l1, channels-l1, tucker, ... "
                                             "(l1-filter and l1-channel are Distiller's --sense names).")] = "filters-l1",
    range_: Annotated[str, typer.Option("--range", help="Ratios: start:stop:step or a list.")] = "0:0.9:0.1",
    layers: Annotated[list[str] | None, typer.Option(help="Only layers matching these patterns (layer1.*).")] = None,
    val_subset: Annotated[int, typer.Option(min=1, help="Validation images each point is scored on.")] = 2000,
    runtime: Annotated[str, typer.Option(help="Runtime the latency is measured on.")] = "onnxruntime",
    threads: Annotated[int, typer.Option(min=1, help="Runtime threads.")] = 1,
    out: Annotated[Path | None, typer.Option(help="Output directory (default runs/sensitivity-<checkpoint name>).")] = None,
    batchnorm_images: Annotated[int, typer.Option(min=0, help=(
        "Training images each point's norm statistics are re-estimated on before it is scored, as a search's "
        "candidates are (top1_as_pruned keeps the score before); 0: scored with the unpruned network's "
        "statistics, as Distiller did."))] = 1024,
) -> None:
    """Prune each layer (or coupled group) alone at each ratio: top-1 without fine-tuning, and the
    whole network's latency timed on the runtime beside the unpruned one.

    Writes sensitivity.csv, payoff.csv (latency saved per point of accuracy lost),
    figures/layer-*.png and figures/overview-*.png. Resumable: run it again to finish; several
    processes may share one --out.

    \b
    Example:
      edgetune sensitivity --checkpoint models/resnet56-fmnist.pt --method filters-l1 --range 0:0.9:0.1
      edgetune recipe suggest runs/sensitivity-resnet56 --groups 4 --max-accuracy-drop 2 > my.schedule.yaml
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from edgetune.sensitivity.analyse import analyse, method_named, quick_benchmark
    from edgetune.sensitivity.run import SensitivityPlan, parse_range

    plan = SensitivityPlan(str(checkpoint.resolve()), model, data, method_named(method), parse_range(range_), val_subset,
                           tuple(layers or ()), quick_benchmark(runtime, threads), batchnorm_images,
                           architecture(model, model_factory).factory)
    with Progress(TextColumn("[bold]points"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=console) as bar:
        task = bar.add_task("baseline", total=None)
        frame, out_dir = analyse(
            plan, out, data_root=data_root,
            progress=lambda done, total, what: bar.update(task, completed=done, total=total, description=what))
    console.print(f"{frame['layer'].nunique()} layers x {len(plan.ratios)} ratios in {out_dir}/sensitivity.csv; "
                  f"figures in {out_dir}/figures; next: edgetune recipe suggest {out_dir}")


@app.command("profile-widths")
def profile_widths_cmd(
    checkpoint: Annotated[Path, typer.Option(help="The trained network (only its shapes matter).")],
    model: ModelOpt = None,
    model_factory: ModelFactoryOpt = None,
    data: Annotated[str, typer.Option(help="Dataset whose images are fed (fashion-mnist, cifar10, folder).")] = "fashion-mnist",
    data_root: Annotated[Path | None, typer.Option(help="Directory holding the dataset files.")] = None,
    runtime: Annotated[str, typer.Option(help="Runtime to measure on.")] = "onnxruntime",
    threads: Annotated[int, typer.Option(min=1, help="Runtime threads.")] = 1,
    step: Annotated[int, typer.Option(min=1, help="Measure every STEP-th width (and the full one).")] = 1,
    precision: Annotated[str, typer.Option(help="fp32, or int8 (each width quantised; its own staircase).")] = "fp32",
    out: Annotated[Path | None, typer.Option(help="Also write widths.csv and staircase.png here.")] = None,
) -> None:
    """Measure which channel counts run fast on this runtime: every layer shape of the network
    cut to each width, timed in context beside the unpruned network; prints each staircase.

    The profile is cached (~/.cache/edgetune, or $EDGETUNE_CACHE) per network shape, runtime,
    device, precision and threads; `round_to: measured` in a recipe uses it.

    \b
    Example:
      edgetune profile-widths --checkpoint models/resnet56-fmnist.pt --out runs/widths-resnet56
    """
    from edgetune.config.benchmark import benchmark_from_flags
    from edgetune.hardware import widths as W
    from edgetune.runtimes.quantize import DEFAULT_INT8

    spec = benchmark_from_flags(runtime=runtime, threads=threads, precision=precision, int8_format=DEFAULT_INT8)
    with console.status("profiling widths") as status:
        profiles = W.profile_checkpoint(checkpoint, architecture(model, model_factory), spec, data=data,
                                        data_root=data_root, step=step,
                                        progress=lambda s: status.update(f"profiling widths: {s}"))
    for p in profiles:
        steps = W.efficient_widths(p.widths, p.latency_ms)
        slower = [w for w, t in zip(p.widths, p.latency_ms, strict=True) if t > p.baseline_ms * 1.01]
        console.print(f"[bold]{p.signature}[/] ({len(p.layers)} layers): fast widths {steps}; "
                      f"slower than unpruned: {slower or 'none'}")
    if out is not None:
        W.write_profiles(profiles, out)
        console.print(f"widths.csv and staircase.png in {out}")


@recipe_app.command("suggest")
def recipe_suggest(
    analysis: Annotated[Path, typer.Argument(help="A directory written by edgetune sensitivity.")],
    groups: Annotated[int, typer.Option(min=1, help="How many pruners (groups of layers) to make.")] = 4,
    max_accuracy_drop: Annotated[float, typer.Option(help="Top-1 points a group may lose alone, unfine-tuned.")] = 2.0,
    min_saving_ms: Annotated[float, typer.Option(help="Leave out layers saving less latency than this.")] = 0.0,
    sweep: Annotated[Path | None, typer.Option(help="Where the matching sweep goes (default ANALYSIS/suggested.sweep.yaml).")] = None,
) -> None:
    """Group layers with similar sensitivity curves into pruners and print a Distiller-format
    schedule; its matching W&B-format sweep (a range per group) is written beside it.

    \b
    Example:
      edgetune recipe suggest runs/sensitivity-resnet56 --groups 4 --max-accuracy-drop 2 > my.schedule.yaml
      edgetune run --schedule my.schedule.yaml --sweep runs/sensitivity-resnet56/suggested.sweep.yaml \\
                   --checkpoint models/resnet56-fmnist.pt --data fashion-mnist
    """
    from edgetune.sensitivity.analyse import suggest_recipe

    made = suggest_recipe(analysis, groups, max_accuracy_drop, min_saving_ms, sweep)
    sys.stdout.write(made.schedule)
    found, sweep_path = made.suggestion, made.sweep_path
    console.print(f"{len(found.groups)} groups, {len(found.excluded)} layers left out; sweep: {sweep_path}")
