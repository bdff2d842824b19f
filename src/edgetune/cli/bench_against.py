"""`edgetune bench MODEL --against BASE [--against OTHER]`: networks compared the way a search
compares them. Each is timed in rounds interleaved with the first `--against` file (the
reference), so a slow spell of the host moves both and the ratio holds; the table gives each
network's milliseconds, its ratio to the reference with the spread of the per-round ratios
(and whether edgetune trusts it), and where the inputs and outputs match, how often its top
class agrees with the reference's on the same images."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from edgetune.config.benchmark import BenchmarkSpec
from edgetune.data import load_dataset
from edgetune.errors import ConfigError
from edgetune.files import atomic_write_text, check_writable
from edgetune.runtimes.onnx_stats import onnx_input, random_images
from edgetune.runtimes.profiler import open_reference, profile_artifact


def compare(models: list[Path], reference: Path, spec: BenchmarkSpec, sample: np.ndarray, work: Path,
            console: Console) -> list[dict[str, Any]]:
    """One row per network, the reference first."""
    inputs = {path: onnx_input(path) for path in [reference, *models]}
    ref_input = inputs[reference]
    for path in models:
        found = inputs[path]
        if found.dims[1:] != ref_input.dims[1:]:
            raise ConfigError(f"{path}: {found.describe()}, but the reference {reference} takes "
                              f"{ref_input.describe()}: they cannot be timed on the same images", key="--against")
    for path, found in inputs.items():
        if found.fixed_batch not in (None, 1):
            raise ConfigError(f"{path}: {found.describe()}: its batch is fixed at {found.fixed_batch}, and --against "
                              "times one image at a time; export it with a dynamic batch or a batch of 1",
                              key="--against")
    session = open_reference(reference, spec, work_dir=work)
    rows = []
    try:
        for path in [reference, *models]:
            # A file exported at a fixed batch of 1 (torch.onnx.export's default) checks parity on one image.
            report = profile_artifact(path, spec, sample[:1] if inputs[path].fixed_batch == 1 else sample,
                                      reference=session, work_dir=work)
            m = report.metrics
            rows.append({"network": path.name, "path": str(path), "latency_ms": m["latency_ms"], "ratio": m["latency_ratio"],
                         "ratio_spread": report.timing.get("ratio_spread"),
                         "unreliable": m.get("latency_unreliable"), "agreement": _agreement(path, reference, sample)})
    finally:
        session.close()
    _print(rows, console)
    return rows


def _agreement(path: Path, reference: Path, sample: np.ndarray) -> float | None:
    """Share of the sample on which both give the same top class (None where outputs differ in shape)."""
    import onnxruntime as ort

    outputs = []
    for p in (path, reference):
        session = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        outputs.append(np.concatenate([session.run(None, {name: sample[i:i + 1]})[0] for i in range(len(sample))]))
    a, b = outputs
    if a.shape != b.shape:
        return None
    return float((a.argmax(1) == b.argmax(1)).mean())


def _print(rows: list[dict[str, Any]], console: Console) -> None:
    table = Table(title=f"timed in rounds interleaved with {rows[0]['network']} ({rows[0]['path']})")
    for column in ("network", "ms", "x reference", "ratio spread", "top class agrees", "trusted"):
        table.add_column(column, justify="left" if column == "network" else "right")
    for row in rows:
        spread = row["ratio_spread"]
        agree = row["agreement"]
        table.add_row(row["network"], f"{row['latency_ms']:.3f}", f"{row['ratio']:.3f}",
                      "-" if spread is None else f"{spread:.1%}", "-" if agree is None else f"{agree:.1%}",
                      "no: " + row["unreliable"] if row["unreliable"] else "yes")
    console.print(table)


def refuse_ignored(flags: list[str]) -> None:
    """A flag `--against` would not honour is refused, not dropped: `--precision int8` timed in
    fp32 would be a wrong figure under the right name."""
    if flags:
        raise ConfigError(f"{', '.join(flags)}: not used with --against, which times each ONNX file as it is "
                          "(one image at a time, the study's rounds); quantise or export the file first "
                          "(edgetune bench MODEL --precision int8 --json ..., edgetune export), or drop --against",
                          key=flags[0])


def run_against(model: Path, against: list[Path], *, runtime: str, device: str, threads: int, data: str | None,
                data_root: Path | None, console: Console, json_path: Path | None = None) -> list[dict[str, Any]]:
    """`bench MODEL --against REF ...` (edgetune.cli.bench_against): fp32, batch 1, the study's timing;
    `--json` keeps the table's rows, so a script reads the ratios rather than the printed table."""
    for path in (model, *against):
        if not path.is_file() or path.suffix != ".onnx":
            raise ConfigError(f"{path}: --against compares ONNX files; export a checkpoint first (edgetune export)",
                              key="--against")
    check_writable("--json", json_path)
    spec = BenchmarkSpec(runtime=runtime, device=device, threads=threads, throughput_batches=[], energy_seconds=0.0,
                         engine_throughput=False)
    if data:
        splits = load_dataset(data, data_root)
        sample = splits.normalize(splits.val.images[:64]).numpy()
    else:
        sample = random_images(onnx_input(against[0]), against[0])
    with tempfile.TemporaryDirectory(prefix="edgetune-bench-") as tmp:
        rows = compare([model, *against[1:]], against[0], spec, sample, Path(tmp), console)
    if json_path is not None:
        atomic_write_text(json_path, json.dumps({"reference": str(against[0]), "rows": rows}, indent=2))
    return rows
