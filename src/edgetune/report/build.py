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
    # The Markdown page links the figures: they are drawn with it, and first.
    wanted = [*formats, "png"] if "md" in formats and "png" not in formats else list(formats)
    for name in sorted(dict.fromkeys(wanted), key=lambda f: (f != "png", f == "md")):
        stage(f"writing {name}")
        written += _render(name, report, out_dir)
    return report, written


def _render(name: str, report: Report, out_dir: Path) -> list[Path]:
    """One renderer of the registry (edgetune.catalog.REPORT_RENDERERS) and where it writes."""
    render = load(REPORT_RENDERERS, name, "report format", "format")
    if name == "md":
        return [render(report, out_dir / "report.md", out_dir / "figures")]  # type: ignore[operator]
    target = {"html": out_dir / "report.html", "png": out_dir / "figures", "csv": out_dir / "tables"}[name]
    done = render(report, target)  # type: ignore[operator]
    return list(done) if isinstance(done, list) else [done]
