"""The search and what comes out of it: `edgetune run`, `export`, `report`, `dashboard`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from edgetune.cli.app import ModelFactoryOpt, app, architecture, console
from edgetune.errors import EdgetuneError, MissingExtraError


@app.command()
def run(
    experiment: Annotated[Path | None, typer.Argument(
        help="Experiment YAML (model, data, recipe, sweep, finetune, benchmark). Optional when the "
             "flags below give a schedule, a sweep and a checkpoint.")] = None,
    schedule: Annotated[Path | None, typer.Option(help="Distiller-format schedule (the recipe).")] = None,
    sweep: Annotated[Path | None, typer.Option(help="W&B-format sweep file (what to search, what to optimise).")] = None,
    model: Annotated[str | None, typer.Option(help="Architecture; defaults to the one the checkpoint records.")] = None,
    model_factory: Annotated[str | None, typer.Option(
        help="Your own network instead: package.module:build or path/to/file.py:build returning an nn.Module.")] = None,
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
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Check the experiment, recipe and sweep against the network and the data, print the "
                          "search and what the recipe removes at the sweep's bounds; measure and write nothing.")] = False,
) -> None:
    """Search compression settings: prune each candidate for real, fine-tune, export ONNX, time it.

    Every trial's ONNX file, recipe and metrics are kept under the run directory, with the
    Optuna study; run the same command again after a crash to resume where it stopped.

    \b
    Examples:
      edgetune run examples/resnet56-fmnist/experiment.yaml
      edgetune run --schedule s.yaml --sweep sweep.yaml --checkpoint ck.pt --data fashion-mnist
      edgetune run examples/resnet56-fmnist/experiment.yaml --dry-run
    """
    from edgetune.config.experiment import load_experiment

    overrides = {
        "recipe": schedule, "sweep": sweep, "model.name": model, "model.factory": model_factory, "model.checkpoint": checkpoint,
        "data.name": data, "data.root": data_root, "trials": trials, "finetune.epochs": epochs,
        "finetune.learning_rate": learning_rate, "data.train_subset": train_subset,
        "data.val_subset": val_subset, "benchmark.threads": threads, "name": name, "run_dir": run_dir,
        "storage": storage, "seed": seed, "torch_threads": torch_threads,
        "remote.queue": bench_queue, "remote.broker": broker,
    }
    spec, _ = load_experiment(experiment, overrides)
    # Piped output (CI logs, `tee`) gets a width that fits the results table.
    out = Console() if sys.stdout.isatty() else Console(width=140)
    if dry_run:
        _dry_run(out, spec)
    else:
        _search(out, spec)


def _dry_run(out: Console, spec: Any) -> None:
    from edgetune.cli.dry_run_view import dry_run_view
    from edgetune.study.runner import dry_run

    out.print(dry_run_view(dry_run(spec)))


def _search(out: Console, spec: Any) -> None:
    from edgetune.api import tune
    from edgetune.report.progress import RichReporter, final_table, results_table
    from edgetune.study.records.headline import headline

    result = tune(spec, progress=RichReporter(out))
    outcome = result.outcome
    if outcome.reclaimed:
        out.print(f"resumed: trial(s) {outcome.reclaimed} were interrupted and were run again")
    out.print(results_table(outcome))
    if (closing := final_table(outcome)) is not None:
        out.print(closing)
    said = headline(result.trials, outcome.plan.objectives, outcome.plan.spec.benchmark.model_dump(),
                    outcome.plan.run_dir)
    out.print(f"[bold]{escape(said.text)}[/]")
    out.print(f"every trial: {outcome.plan.run_dir / 'trials.csv'}")


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by edgetune run.")],
    trial: Annotated[str, typer.Option(
        help="Trial number, or 'best': the final stage's pick, else the best feasible trial (single objective).")] = "best",
    out: Annotated[Path | None, typer.Option(help="Where the files go; default RUN_DIR/export/trial-N.")] = None,
    storage: Annotated[str | None, typer.Option(help="The study's storage URL, when it has a password (not kept).")] = None,
    model_factory: ModelFactoryOpt = None,
) -> None:
    """Take one trial out of a study: ONNX, a PyTorch checkpoint, its recipe and metrics.

    The checkpoint records the compressed structure (widths, factorised layers) beside the
    weights, so `edgetune evaluate`, `edgetune bench` or `load_checkpoint` rebuild it with no
    recipe; the export reloads it and checks it against the ONNX file before it says done.

    \b
    Examples:
      edgetune export runs/resnet56-fmnist
      edgetune export runs/resnet56-fmnist --trial 12 --out deploy/
      edgetune export runs/notebook --trial 0 --model-factory my_nets.py:narrow   # a network tune() was handed
    """
    from edgetune.models.factory import ModelFactory
    from edgetune.study.records.trial_export import export_trial

    target = out or run_dir / "export" / f"trial-{trial}"
    told = architecture(None, model_factory).factory
    done = export_trial(run_dir, trial, target, storage, ModelFactory(told) if told else None)
    typer.echo(f"trial {done.number} -> {target}: {', '.join(p.name for p in done.files)} "
               f"(reloaded checkpoint matches the ONNX file within {done.max_abs_diff:.2g})")
    if done.final is not None:
        f = done.final
        test = f"test top-1 {f['test_top1']:.2f} %" if f.get("test_top1") is not None else "no test figure (not picked)"
        typer.echo(f"final: validation top-1 {f['final_val_top1']:.2f} % (lost {f['final_drop']:+.2f} pt, at most "
                   f"{f['final_drop_upper']:.2f}), {test}")


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
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8080,
    host: Annotated[str, typer.Option(help="127.0.0.1 keeps it local; 0.0.0.0 serves the network.")] = "127.0.0.1",
    storage: Annotated[str | None, typer.Option(help="The study's storage URL, when it has a password (not kept).")] = None,
) -> None:
    """Watch a study live in the browser (optuna-dashboard): history, Pareto front, importance,
    every trial's parameters and metrics, refreshed as trials finish.

    \b
    Example:
      edgetune dashboard runs/resnet56-fmnist --port 8080   # then open http://127.0.0.1:8080
    """
    from edgetune.study.records.results import open_study
    from edgetune.study.storage.backends import storage_of

    try:
        from optuna_dashboard import run_server
    except ImportError:
        raise MissingExtraError("optuna-dashboard", "report") from None
    study = open_study(run_dir, storage)
    console.print(f"study '{study.study_name}' at http://{host}:{port}/dashboard/ (Ctrl-C stops)")
    run_server(storage_of(study), host=host, port=port)
