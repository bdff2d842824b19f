"""`edgetune report`: a run directory in, report.html, figures/*.png, tables/*.csv and
report.md out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from edgetune.catalog import REPORT_RENDERERS, load
from edgetune.report.analysis import layer_latency
from edgetune.report.content import Report, build_report
from edgetune.report.load import RunData, load_run
from edgetune.runtimes import get_runtime
from edgetune.runtimes.base import Artifact, SessionOptions

FORMATS = tuple(REPORT_RENDERERS)


def measure_layers(run: RunData, runs: int = 50) -> Callable[[int], pd.DataFrame]:
    """Per-layer times of a trial's and the baseline's ONNX files on ONNX Runtime (one thread),
    measured when the report is made: what the search timed as a whole, taken apart."""

    def times(trial: int) -> pd.DataFrame | None:
        import onnx

        if not run.onnx(trial).is_file():  # run by a producer on another machine
            return None

        runtime = get_runtime("onnxruntime")
        out = []
        for path in (run.onnx("baseline"), run.onnx(trial)):
            dims = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
            x = np.random.default_rng(0).standard_normal([d.dim_value or 1 for d in dims]).astype(np.float32)
            session = runtime.open(Artifact(path), SessionOptions(threads=1))
            try:
                out.append(session.layer_times(x, runs))
            finally:
                session.close()
        return layer_latency(*out)

    return times


def write_report(run_dir: Path, out_dir: Path | None = None, formats: Sequence[str] = ("html", "png", "csv"),
                 storage: str | None = None, per_layer: bool = True,
                 stage: Callable[[str], None] = lambda _: None) -> tuple[Report, list[Path]]:
    out_dir = out_dir or run_dir / "report"
    stage("reading the study")
    run = load_run(run_dir, storage)
    stage("analysing")
    have_files = run.onnx("baseline").is_file()
    report = build_report(run, measure_layers(run) if per_layer and have_files else None)
    written: list[Path] = []
    for name in with_needs(formats):
        stage(f"writing {name}")
        render = load(REPORT_RENDERERS, name, "report format", "format")
        written += render(report, out_dir)  # type: ignore[operator]
    return report, written


def with_needs(formats: Sequence[str]) -> list[str]:
    """The formats asked for and those they link to (a Markdown page its figures), each needed
    one before the format that needs it."""
    order: list[str] = []

    def visit(name: str) -> None:
        plugin = REPORT_RENDERERS.get(name)
        for needed in plugin.traits.needs if plugin is not None else ():
            visit(needed)
        if name not in order:
            order.append(name)

    for name in formats:
        visit(name)
    return order
