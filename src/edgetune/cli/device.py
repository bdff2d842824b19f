"""On the device: `edgetune bench` (one model, every metric) and `edgetune bench-worker`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from edgetune.cli.app import InChannelsOpt, ModelFactoryOpt, ModelOpt, NumClassesOpt, app, architecture


@app.command("bench-worker")
def bench_worker(
    broker: Annotated[str, typer.Option(help="redis://[:password@]host:6379/0, or rediss:// for TLS.")],
    queue: Annotated[str, typer.Option(help="The device's queue: identical devices share one, others get their own.")],
    results: Annotated[Path, typer.Option(help="Where answers are kept by request id (a redelivery is answered once).")] = Path(
        "edgetune-worker-results"),
    visibility_timeout: Annotated[float, typer.Option(help="Seconds before an unacknowledged request is delivered again.")] = 3600.0,
    connect_timeout: Annotated[float, typer.Option(min=0, help="Seconds to wait for the broker at start, each try "
                                                               "counted; 0: wait for it forever.")] = 60.0,
) -> None:
    """Benchmark models sent by producers, on this device; needs no PyTorch.

    Install with `pip install 'edgetune[worker]'` (plus the runtime's extra, e.g. `openvino`).
    Requests are validated JSON (ONNX bytes checked by onnx.checker); nothing else is executed.

    \b
    Example:
      edgetune bench-worker --broker redis://host:6379/0 --queue rpi5-ort-cpu
    """
    from edgetune.worker.app import run_worker

    run_worker(broker, queue, results, visibility_timeout, connect_timeout,
               say=lambda line: typer.echo(line, err=True))


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
    json_out: Annotated[Path | None, typer.Option("--json", help="Write every metric here (with --against: "
                                                                     "the table's rows).")] = None,
    model_name: ModelOpt = None,
    model_factory: ModelFactoryOpt = None,
    num_classes: NumClassesOpt = None,
    in_channels: InChannelsOpt = None,
    against: Annotated[list[Path] | None, typer.Option(
        help="Compare instead: time MODEL and every --against file in rounds interleaved with the first "
             "--against file, and print one table of milliseconds, ratios and top-class agreement.")] = None,
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
      edgetune bench pick.onnx --against base.onnx --against resnet20.onnx
      edgetune bench weights.pt --model resnet20 --num-classes 10 --in-channels 1
    """
    from edgetune.cli.bench_run import run_bench

    if against:
        from edgetune.cli.bench_against import refuse_ignored, run_against

        ignored = {"--batch": batch and batch != [1], "--precision": precision != "fp32", "--calibration": calibration,
                   "--checkpoint": checkpoint, "--split": split != "test", "--repeats": repeats != 3,
                   "--per-layer": per_layer, "--csv": csv, "--hint": hint != "latency", "--model": model_name,
                   "--model-factory": model_factory, "--num-classes": num_classes, "--in-channels": in_channels}
        refuse_ignored([flag for flag, given in ignored.items() if given])
        run_against(model, against, runtime=runtime, device=device, threads=threads, data=data,
                    data_root=data_root, console=_console(), json_path=json_out)
        return
    run_bench(model=model, runtime=runtime, device=device, batches=batch or [1], precision=precision,
              calibration=calibration, data=data, data_root=data_root, split=split, checkpoint=checkpoint,
              threads=threads, hint=hint, repeats=repeats, per_layer=per_layer, top=top, csv_path=csv,
              json_path=json_out, console=_console(),
              described=architecture(model_name, model_factory, num_classes, in_channels))


def _console() -> Console:
    """Tables at the terminal's width, or 140 columns when piped (a log keeps whole rows)."""
    return Console() if sys.stdout.isatty() else Console(width=140)
