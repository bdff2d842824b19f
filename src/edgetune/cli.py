"""The `edgetune` command: a thin layer over the library; every command maps to one function.

Heavy imports happen inside commands so `edgetune --help` is instant and a device that only
benchmarks never imports what it does not use.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from edgetune.errors import EdgetuneError, MissingExtraError

app = typer.Typer(
    help=(
        "Find the compression settings that make a trained network fast on the target device, "
        "measured there, while keeping its accuracy.\n\n"
        "Start with: edgetune run examples/resnet56-fmnist/experiment.yaml"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True, soft_wrap=True)  # error messages carry paths: never wrap them


@app.callback()
def _root() -> None:
    """Keep typer in sub-command mode even while only one command exists."""


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
    from edgetune.training import train_baseline

    torch.manual_seed(seed)
    splits = load_dataset(data, data_root)
    net = build_model(model, num_classes=splits.num_classes, in_channels=splits.in_channels)
    meta = {
        "model": model, "num_classes": splits.num_classes, "in_channels": splits.in_channels,
        "dataset": data, "image_size": list(splits.image_size), "mean": list(splits.mean),
        "std": list(splits.std), "epochs": epochs, "lr": lr, "batch_size": batch_size,
        "weight_decay": weight_decay, "seed": seed, "command": " ".join(["edgetune", *sys.argv[1:]]),
    }
    with Progress(TextColumn(f"[bold]{model}[/] steps"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task("train", total=None)
        result = train_baseline(
            net, splits, out=out, meta=meta, epochs=epochs, lr=lr, batch_size=batch_size,
            weight_decay=weight_decay, seed=seed, device=device, log=bar.console.print,
            on_step=lambda done, total: bar.update(task, completed=done, total=total),
        )
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
) -> None:
    """Evaluate a checkpoint's top-1/top-5 and loss on the validation or test split."""
    from edgetune.data import load_dataset
    from edgetune.models import load_checkpoint
    from edgetune.training import evaluate as run_eval

    if split not in ("val", "test"):
        raise EdgetuneError(f"--split must be 'val' or 'test', not '{split}'")
    model, meta = load_checkpoint(checkpoint)
    splits = load_dataset(data or meta.get("dataset", "fashion-mnist"), data_root)
    result = run_eval(model, splits, getattr(splits, split))
    console.print(
        f"{meta['model']} on {splits.name} {split} ({result.n} images): top-1 {result.top1:.2f} %, "
        f"top-5 {result.top5:.2f} %, loss {result.loss:.4f}"
    )


@app.command()
def run(
    experiment: Annotated[Path | None, typer.Argument(
        help="Experiment YAML (model, data, recipe, sweep, finetune, benchmark). Optional when the "
             "flags below give a schedule, a sweep and a checkpoint.")] = None,
    schedule: Annotated[Path | None, typer.Option(help="Distiller-format schedule (the recipe).")] = None,
    sweep: Annotated[Path | None, typer.Option(help="W&B-format sweep file (what to search, what to optimise).")] = None,
    model: Annotated[str | None, typer.Option(help="Architecture; defaults to the one the checkpoint records.")] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="Trained baseline (edgetune train writes one).")] = None,
    data: Annotated[str | None, typer.Option(help="fashion-mnist, cifar10 or folder.")] = None,
    data_root: Annotated[Path | None, typer.Option(help="Directory holding the dataset files.")] = None,
    trials: Annotated[int | None, typer.Option(min=0, help="Trials to reach; a rerun resumes up to this (0: the references only).")] = None,
    epochs: Annotated[int | None, typer.Option(min=0, help="Fine-tuning epochs per trial (0: none).")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Fine-tuning learning rate.")] = None,
    train_subset: Annotated[int | None, typer.Option(min=1, help="Fine-tune on this many training images.")] = None,
    val_subset: Annotated[int | None, typer.Option(min=1, help="Evaluate on this many validation images.")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="Runtime threads for the benchmark.")] = None,
    name: Annotated[str | None, typer.Option(help="Study name (and default run directory runs/NAME).")] = None,
    run_dir: Annotated[Path | None, typer.Option(help="Where the study, ONNX files and trials.csv go.")] = None,
    storage: Annotated[str | None, typer.Option(help="Optuna storage URL; default SQLite in the run dir.")] = None,
    seed: Annotated[int | None, typer.Option(help="Sampler and data-subset seed.")] = None,
    torch_threads: Annotated[int | None, typer.Option(
        min=1, help="PyTorch threads for pruning and fine-tuning; split the cores between producers on one machine.")] = None,
    bench_queue: Annotated[str | None, typer.Option(
        help="Benchmark on the device worker serving this queue (edgetune bench-worker), not here.")] = None,
    broker: Annotated[str | None, typer.Option(help="The workers' Redis URL, with --bench-queue.")] = None,
) -> None:
    """Search compression settings: prune each candidate for real, fine-tune, export ONNX, time it.

    Every trial's ONNX file, recipe and metrics are kept under the run directory, with the
    Optuna study; run the same command again after a crash to resume where it stopped.

    \b
    Examples:
      edgetune run examples/resnet56-fmnist/experiment.yaml
      edgetune run --schedule s.yaml --sweep sweep.yaml --checkpoint ck.pt --data fashion-mnist
    """
    from edgetune.experiment import load_experiment
    from edgetune.progress import RichReporter, results_table
    from edgetune.study import run_study

    overrides = {
        "recipe": schedule, "sweep": sweep, "model.name": model, "model.checkpoint": checkpoint,
        "data.name": data, "data.root": data_root, "trials": trials, "finetune.epochs": epochs,
        "finetune.learning_rate": learning_rate, "data.train_subset": train_subset,
        "data.val_subset": val_subset, "benchmark.threads": threads, "name": name, "run_dir": run_dir,
        "storage": storage, "seed": seed, "torch_threads": torch_threads,
        "remote.queue": bench_queue, "remote.broker": broker,
    }
    spec, _ = load_experiment(experiment, overrides)
    # Piped output (CI logs, `tee`) gets a width that fits the results table.
    out = Console() if sys.stdout.isatty() else Console(width=140)
    outcome = run_study(spec, RichReporter(out))
    if outcome.reclaimed:
        out.print(f"resumed: trial(s) {outcome.reclaimed} were interrupted and were run again")
    out.print(results_table(outcome))
    out.print(f"every trial: {outcome.plan.run_dir / 'trials.csv'}")


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by edgetune run.")],
    trial: Annotated[str, typer.Option(help="Trial number, or 'best' (single objective).")] = "best",
    out: Annotated[Path | None, typer.Option(help="Where the files go; default RUN_DIR/export/trial-N.")] = None,
    storage: Annotated[str | None, typer.Option(help="The study's storage URL, when it has a password (not kept).")] = None,
) -> None:
    """Take one trial out of a study: ONNX, a PyTorch checkpoint, its recipe and metrics.

    The checkpoint records the compressed structure (widths, factorised layers) beside the
    weights, so `edgetune evaluate`, `edgetune bench` or `load_checkpoint` rebuild it with no
    recipe; the export reloads it and checks it against the ONNX file before it says done.

    \b
    Examples:
      edgetune export runs/resnet56-fmnist
      edgetune export runs/resnet56-fmnist --trial 12 --out deploy/
    """
    from edgetune.trial_export import export_trial

    target = out or run_dir / "export" / f"trial-{trial}"
    done = export_trial(run_dir, trial, target, storage)
    typer.echo(f"trial {done.number} -> {target}: {', '.join(p.name for p in done.files)} "
                    f"(reloaded checkpoint matches the ONNX file within {done.max_abs_diff:.2g})")


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by edgetune run.")],
    out: Annotated[Path | None, typer.Option(help="Where to write (default: RUN_DIR/report).")] = None,
    format: Annotated[list[str] | None, typer.Option(
        "--format", help="html, png, csv, md; repeat for several (default: html, png and csv).")] = None,
    storage: Annotated[str | None, typer.Option(help="The study's storage URL, when it has a password (not kept).")] = None,
    per_layer: Annotated[bool, typer.Option(help="Time the best trial's and the baseline's layers (a few seconds).")] = True,
) -> None:
    """Tables and figures of a study, offline: a self-contained report.html (interactive plotly
    figures), figures/*.png, tables/*.csv, and with --format md a Markdown summary.

    It reads the study itself, so a report of a running study is current.

    \b
    Sections: baseline and reference against the best trials, the Pareto front of accuracy
    against measured latency, best so far, trials per latency band, parameter-metric
    correlations (Pearson, Spearman), binned means, parameter importance (fANOVA, PED-ANOVA,
    random forest), metric correlations, per-layer latency, chosen trials.

    \b
    Examples:
      edgetune report runs/resnet56-fmnist
      edgetune report runs/resnet56-fmnist --format md --out paper/
    """
    from edgetune.report.build import FORMATS, write_report

    formats = format or ["html", "png", "csv"]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise EdgetuneError(f"--format {unknown[0]!r} is not a report format; use one of {', '.join(FORMATS)}")
    with console.status("report") as status:
        _, written = write_report(run_dir, out, formats, storage, per_layer,
                                  stage=lambda s: status.update(f"report: {s}"))
    main_file = next((p for p in written if p.suffix in (".html", ".md")), written[0] if written else None)
    console.print(f"wrote {len(written)} files; open {main_file}")


@app.command()
def dashboard(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by edgetune run.")],
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8080,
    host: Annotated[str, typer.Option(help="127.0.0.1 keeps it local; 0.0.0.0 serves the network.")] = "127.0.0.1",
    storage: Annotated[str | None, typer.Option(help="The study's storage URL, when it has a password (not kept).")] = None,
) -> None:
    """Watch a study live in the browser (optuna-dashboard): history, Pareto front, importance,
    every trial's parameters and metrics, refreshed as trials finish.

    \b
    Example:
      edgetune dashboard runs/resnet56-fmnist --port 8080   # then open http://127.0.0.1:8080
    """
    from edgetune.trial_export import open_study

    try:
        from optuna_dashboard import run_server
    except ImportError:
        raise MissingExtraError("optuna-dashboard", "report") from None
    study = open_study(run_dir, storage)
    console.print(f"study '{study.study_name}' at http://{host}:{port}/dashboard/studies/{study._study_id} (Ctrl-C stops)")
    run_server(study._storage, host=host, port=port)


@app.command()
def sensitivity(
    checkpoint: Annotated[Path, typer.Option(help="The trained network (edgetune train's checkpoint).")],
    model: Annotated[str | None, typer.Option(help="Architecture, when the checkpoint does not say.")] = None,
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
    import json

    from edgetune.sensitivity.figures import draw
    from edgetune.sensitivity.run import QUICK_BENCHMARK, SensitivityPlan, parse_range, run_sensitivity
    from edgetune.sensitivity.suggest import payoff

    aliases = {"l1-filter": "filters-l1", "l2-filter": "filters-l2", "l1-channel": "channels-l1",
               "l2-channel": "channels-l2", "filter": "filters-l1", "channel": "channels-l1"}
    method = aliases.get(method, method)
    if not checkpoint.is_file():
        raise EdgetuneError(f"--checkpoint {checkpoint}: no such file")
    name = model or checkpoint.stem
    plan = SensitivityPlan(str(checkpoint.resolve()), model, data, method, parse_range(range_), val_subset,
                           tuple(layers or ()), {**QUICK_BENCHMARK, "runtime": runtime, "threads": threads})
    out_dir = out or Path("runs") / f"sensitivity-{name}"
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]points"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=console) as bar:
        task = bar.add_task("baseline", total=None)
        frame = run_sensitivity(plan, out_dir, data_root,
                                progress=lambda done, total, what: bar.update(task, completed=done, total=total,
                                                                              description=what))
    base = json.loads((out_dir / "baseline" / "metrics.json").read_text())
    payoff(frame, 2.0).to_csv(out_dir / "payoff.csv", index=False)
    draw(frame, out_dir / "figures", base["top1"])
    console.print(f"{frame['layer'].nunique()} layers x {len(plan.ratios)} ratios in {out_dir}/sensitivity.csv; "
                  f"figures in {out_dir}/figures; next: edgetune recipe suggest {out_dir}")


@app.command("profile-widths")
def profile_widths_cmd(
    checkpoint: Annotated[Path, typer.Option(help="The trained network (only its shapes matter).")],
    model: Annotated[str | None, typer.Option(help="Architecture, when the checkpoint does not say.")] = None,
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
    import tempfile

    from edgetune.benchspec import DEFAULT_INT8, BenchmarkSpec
    from edgetune.data import load_dataset
    from edgetune.errors import ConfigError
    from edgetune.hardware import widths as W
    from edgetune.models import load_checkpoint
    from edgetune.sensitivity.run import QUICK_BENCHMARK

    splits = load_dataset(data, data_root)
    net, _ = load_checkpoint(checkpoint, model_name=model, num_classes=splits.num_classes,
                             in_channels=splits.in_channels)
    if precision not in ("fp32", "int8"):
        raise ConfigError(f"--precision {precision!r}: width profiles are measured at fp32 or int8", key="precision")
    spec = BenchmarkSpec(**{**QUICK_BENCHMARK, "runtime": runtime, "threads": threads, "precision": precision,
                            "int8_format": DEFAULT_INT8})
    example, sample = splits.sample_input(1), splits.sample_input(64).numpy()
    calibration = splits.normalize(splits.train.subset(32, seed=1).images).numpy() if precision == "int8" else None
    with console.status("profiling widths") as status:
        progress = lambda s: status.update(f"profiling widths: {s}")
        if step == 1 or precision != "fp32":  # the cached profile a study's `round_to: measured` reads
            table = W.width_table(net.eval(), example, sample, spec, list(W.coupled_groups(net, example)),
                                  progress=progress, calibration=calibration, step=step)
            profiles = list(table.profiles.values())
        else:  # a coarse look, not cached
            profiles = W.profile_widths(net.eval(), example, sample, spec, Path(tempfile.mkdtemp()),
                                        widths_for=lambda full: [*range(1, full, step), full], progress=progress)
    for p in profiles:
        steps = W.efficient_widths(p.widths, p.latency_ms)
        slower = [w for w, t in zip(p.widths, p.latency_ms, strict=True) if t > p.baseline_ms * 1.01]
        console.print(f"[bold]{p.signature}[/] ({len(p.layers)} layers): fast widths {steps}; "
                      f"slower than unpruned: {slower or 'none'}")
    if out is not None:
        W.write_profiles(profiles, out)
        console.print(f"widths.csv and staircase.png in {out}")


recipe_app = typer.Typer(help="Recipes made for you: edgetune recipe suggest RUN_DIR.", no_args_is_help=True)
app.add_typer(recipe_app, name="recipe")


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
    import json

    from edgetune.sensitivity.run import collect
    from edgetune.sensitivity.suggest import schedule_yaml, suggest, sweep_yaml

    meta = analysis / "sensitivity.json"
    if not meta.is_file():
        raise EdgetuneError(f"{analysis} holds no sensitivity analysis (no sensitivity.json); run edgetune sensitivity")
    method = json.loads(meta.read_text())["plan"]["method"]
    frame = collect(analysis)
    if frame.empty:
        raise EdgetuneError(f"{analysis} has no measured points yet; run edgetune sensitivity again to finish it")
    found = suggest(frame, groups, max_accuracy_drop, min_saving_ms)
    if not found.groups:
        raise EdgetuneError(f"every layer loses more than {max_accuracy_drop:g} points at the smallest ratio; raise "
                            "--max-accuracy-drop or analyse smaller ratios")
    schedule = schedule_yaml(found, method, str(analysis), max_accuracy_drop)
    (analysis / "suggested.schedule.yaml").write_text(schedule)
    sweep_path = sweep or analysis / "suggested.sweep.yaml"
    sweep_path.write_text(sweep_yaml(found))
    sys.stdout.write(schedule)
    console.print(f"{len(found.groups)} groups, {len(found.excluded)} layers left out; sweep: {sweep_path}")


@app.command("bench-worker")
def bench_worker(
    broker: Annotated[str, typer.Option(help="redis://[:password@]host:6379/0, or rediss:// for TLS.")],
    queue: Annotated[str, typer.Option(help="The device's queue: identical devices share one, others get their own.")],
    results: Annotated[Path, typer.Option(help="Where answers are kept by request id (a redelivery is answered once).")] = Path(
        "edgetune-worker-results"),
    visibility_timeout: Annotated[float, typer.Option(help="Seconds before an unacknowledged request is delivered again.")] = 3600.0,
) -> None:
    """Benchmark models sent by producers, on this device; needs no PyTorch.

    Install with `pip install 'edgetune[worker]'` (plus the runtime's extra, e.g. `openvino`).
    Requests are validated JSON (ONNX bytes checked by onnx.checker); nothing else is executed.

    \b
    Example:
      edgetune bench-worker --broker redis://host:6379/0 --queue rpi5-ort-cpu
    """
    from edgetune.worker.app import run_worker

    run_worker(broker, queue, results, visibility_timeout)


@app.command()
def bench(
    model: Annotated[Path, typer.Argument(help="An ONNX file, or a checkpoint from edgetune train (exported first).")],
    runtime: Annotated[str, typer.Option(help="onnxruntime, openvino or torch.")] = "onnxruntime",
    device: Annotated[str, typer.Option(help="onnxruntime: cpu|cuda|tensorrt|openvino; openvino: CPU|GPU|NPU.")] = "cpu",
    batch: Annotated[list[int] | None, typer.Option(help="Batch sizes; latency at the first, throughput at each.")] = None,
    precision: Annotated[str, typer.Option(help="fp32, fp16, bf16 (openvino) or int8 (needs --calibration).")] = "fp32",
    calibration: Annotated[str | None, typer.Option(help="Dataset whose training images calibrate int8.")] = None,
    data: Annotated[str | None, typer.Option(help="Dataset to score the deployed model on (top-1/top-5).")] = None,
    data_root: Annotated[Path | None, typer.Option(help="Directory holding the dataset files.")] = None,
    split: Annotated[str, typer.Option(help="val or test, for --data.")] = "test",
    checkpoint: Annotated[Path | None, typer.Option(help="The PyTorch model the ONNX came from: parity "
                                                        "against PyTorch, and needed by --runtime torch.")] = None,
    threads: Annotated[int, typer.Option(min=1, help="Runtime threads (pinned).")] = 1,
    hint: Annotated[str, typer.Option(help="latency or throughput (OpenVINO's performance hint).")] = "latency",
    repeats: Annotated[int, typer.Option(min=1, help="Repeat the measurement; the spread is reported.")] = 3,
    per_layer: Annotated[bool, typer.Option("--per-layer", help="Where the time goes, layer by layer.")] = False,
    top: Annotated[int, typer.Option(help="Layers to print with --per-layer.")] = 15,
    csv: Annotated[Path | None, typer.Option(help="Write the per-layer table here (default: next to --json).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write every metric here.")] = None,
) -> None:
    """Benchmark one model on one runtime: latency statistics, throughput, accuracy, and more.

    The output is checked against a reference first (PyTorch with --checkpoint, else ONNX
    Runtime fp32 on the same file); a mismatch is refused. Metrics a machine cannot provide
    (energy without RAPL or NVML) are reported as unavailable.

    \b
    Examples:
      edgetune bench model.onnx --batch 1 --batch 32 --json out.json
      edgetune bench model.onnx --runtime openvino --device CPU --precision int8 --calibration fashion-mnist
      edgetune bench model.onnx --per-layer
    """
    from edgetune.bench_cli import run_bench

    run_bench(
        model=model, runtime=runtime, device=device, batches=batch or [1], precision=precision,
        calibration=calibration, data=data, data_root=data_root, split=split, checkpoint=checkpoint,
        threads=threads, hint=hint, repeats=repeats, per_layer=per_layer, top=top, csv_path=csv,
        json_path=json_out, console=Console() if sys.stdout.isatty() else Console(width=140),
    )


# What `pip install 'edgetune[search]'` adds to the torch-free core a device worker needs.
SEARCH_EXTRA = {"torch", "optuna", "torch_pruning", "tensorly", "scipy", "pandas", "cmaes"}


def main() -> None:
    try:
        try:
            app()
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] not in SEARCH_EXTRA:
                raise
            raise MissingExtraError(exc.name.split(".")[0], "search") from None
    except EdgetuneError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        sys.exit(2)


if __name__ == "__main__":
    main()
