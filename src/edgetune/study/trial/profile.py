"""The target profile: what a study measures on its target once, before any trial, and never
changes after: the INT8 format that runs fastest there, the width tables (which channel counts
pay), and the unpruned baseline every candidate is timed beside. All of it through the study's
executor, so a study sent to a device worker measures it there, as it does its candidates."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgetune.catalog import runtime_traits
from edgetune.config.benchmark import BenchmarkSpec
from edgetune.config.experiment import FinetuneSpec
from edgetune.config.recipe import Schedule
from edgetune.errors import EdgetuneError
from edgetune.executors.base import Scoring
from edgetune.hardware.formats import choose_int8_format, write_choice
from edgetune.hardware.widths import Measuring, WidthTable, width_table
from edgetune.runtimes.export import export_onnx
from edgetune.runtimes.onnx_stats import onnx_input
from edgetune.study.planning.plan import Plan
from edgetune.study.storage.protect import set_aside
from edgetune.study.trial.candidate import run_candidate
from edgetune.study.trial.reporter import Reporter
from edgetune.study.trial.workbench import TrialSetup, Workbench

OTHER_PRECISION_STEP = 4
PROFILE_CALIBRATION = 32  # images to quantise a profiled width on: its speed, not its accuracy, is measured


@dataclass(frozen=True)
class TargetProfile:
    baseline: dict[str, Any]  # the unpruned network's metrics, measured as every trial's are
    benchmark: BenchmarkSpec  # the experiment's, with `int8_format: auto` resolved on this target
    int8_format: str | None = None
    width_tables: dict[str, WidthTable] = field(default_factory=dict)  # by precision

    @property
    def reference_ms(self) -> float:
        return self.baseline["latency_ms"]

    @property
    def width_table(self) -> WidthTable | None:
        """The profile at the experiment's precision (what measured width spaces are made of)."""
        return self.width_tables.get(self.benchmark.precision)

    def setup(self, benchmark: BenchmarkSpec) -> TrialSetup:
        """A trial's target: its benchmark settings with the resolved INT8 format, and the width
        profile at its precision (rounding, prediction and skipping use that one)."""
        if self.int8_format is not None and benchmark.int8_format == "auto":
            benchmark = benchmark.model_copy(update={"int8_format": self.int8_format})
        return TrialSetup(benchmark, self.baseline.get("latency_ms"), self.width_tables.get(benchmark.precision))


def measure_target(plan: Plan, bench: Workbench, reporter: Reporter) -> TargetProfile:
    """The INT8 format first (an INT8 width profile is measured in it), then the width tables,
    then the baseline in the chosen format, opened as the reference for every candidate."""
    int8 = _int8_format(plan, bench, reporter) if "int8" in plan.precisions() else None
    benchmark = plan.spec.benchmark
    if int8 is not None and benchmark.int8_format == "auto":
        benchmark = benchmark.model_copy(update={"int8_format": int8})
    tables = _width_tables(plan, bench, benchmark, reporter) if plan.needs_width_table() else {}
    draft = TargetProfile({}, benchmark, int8, tables)
    baseline = _baseline(plan, bench, draft.setup(benchmark), reporter)
    return TargetProfile(baseline, benchmark, int8, tables)


def _baseline(plan: Plan, bench: Workbench, setup: TrialSetup, reporter: Reporter) -> dict[str, Any]:
    """Measured once per run directory, on the same images and runtime as every trial."""
    paths = plan.paths
    if (problem := _unreadable_baseline(paths.baseline)) is not None:
        if (aside := set_aside(paths.baseline)) is not None:  # a cache, not a trial: measured again
            reporter.stage(f"baseline/ could not be read ({problem}): kept as {aside.name}, measured again")
        run_candidate(bench, setup, Schedule(), FinetuneSpec(epochs=0), paths.baseline, reporter.stage)
    bench.executor.open_reference(paths.baseline_onnx, setup.benchmark, bench.start, bench.calibration,
                                  paths.baseline)
    return json.loads(paths.baseline_metrics.read_text())["metrics"]


def _unreadable_baseline(folder: Path) -> str | None:
    """Why the baseline measured earlier cannot be used (missing, cut short, overwritten), or None."""
    try:
        json.loads((folder / "metrics.json").read_text())["metrics"]
        onnx_input(folder / "model.onnx")
    except (OSError, ValueError, KeyError, TypeError, EdgetuneError) as exc:
        return f"{type(exc).__name__}: {str(exc)[:120]}"
    return None


def _int8_format(plan: Plan, bench: Workbench, reporter: Reporter) -> str | None:
    """Measure ONNX Runtime's INT8 formats on the baseline, here, once per target (cached), and
    quantise every candidate in the fastest within the accuracy tolerance."""
    spec = plan.spec.benchmark
    if not runtime_traits(spec.runtime).int8_formats:
        return None  # one INT8 path (OpenVINO's NNCF)
    if spec.int8_format != "auto":
        return spec.int8_format
    paths = plan.paths
    fp32 = paths.int8_formats / "baseline.onnx"
    export_onnx(bench.start, bench.example(spec.batch_size), fp32)
    scoring = bench.scoring(spec.model_copy(update={"precision": "int8"}))
    choice = choose_int8_format(bench.executor, fp32, spec, replace(scoring, metric=None), paths.int8_formats,
                                progress=reporter.stage)
    write_choice(choice, paths.int8_formats_csv)
    reporter.stage(f"int8 format: {choice.chosen} ({choice.reason})")
    return choice.chosen


def _width_tables(plan: Plan, bench: Workbench, benchmark: BenchmarkSpec, reporter: Reporter) -> dict[str, WidthTable]:
    """Each precision's width profile. Every width at the experiment's precision; another a sweep
    moves trials to is profiled in steps of 4 (each width of an INT8 profile is a quantisation as
    well as a timing) and scaled by its unpruned time over the experiment precision's."""
    # Every layer a pruner keeps a width of (filters, channels), so the predictor sees the whole candidate.
    pruned = [w for p in plan.schedule.pruners.values() if p.traits.takes_width for w in p.weights]
    calibration = bench.calibration[:PROFILE_CALIBRATION] if bench.calibration is not None else None
    tables = {}
    for precision in plan.precisions():
        spec = benchmark.model_copy(update={"precision": precision})
        step = 1 if precision == benchmark.precision else OTHER_PRECISION_STEP
        reporter.stage(f"width profile at {precision}")
        measuring = Measuring(bench.executor, spec, bench.sample(), calibration)
        table = width_table(bench.start, bench.example(), measuring, pruned, progress=reporter.stage, step=step)
        if step != 1:
            table.scale = _precision_scale(plan, bench, benchmark, spec, calibration)
        tables[precision] = table
    return tables


def _precision_scale(plan: Plan, bench: Workbench, benchmark: BenchmarkSpec, spec: BenchmarkSpec,
                     calibration: Any) -> float:
    """The unpruned network at `spec.precision` timed beside it at the experiment's precision."""
    work = plan.paths.width_scale(spec.precision)
    onnx_path = work / "baseline.onnx"
    export_onnx(bench.start, bench.example(spec.batch_size), onnx_path)
    bench.executor.open_reference(onnx_path, benchmark.quick(), bench.start, bench.calibration, work / "reference")
    done = bench.executor.measure(onnx_path, spec.quick(), bench.sample(), module=bench.start,
                                  scoring=Scoring(calibration), work_dir=work)
    return float(done.metrics["latency_ratio"])
