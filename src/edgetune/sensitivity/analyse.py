"""The sensitivity workflow as two library calls: `analyse` (measure every point, then the
payoff table and figures) and `suggest_recipe` (the grouped schedule and sweep it suggests)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from edgetune.config.benchmark import QUICK_BENCHMARK
from edgetune.errors import EdgetuneError
from edgetune.sensitivity.figures import draw
from edgetune.sensitivity.run import SensitivityPlan, collect, run_sensitivity
from edgetune.sensitivity.suggest import Suggestion, payoff, schedule_yaml, suggest, sweep_yaml

# Distiller's `--sense` names for the methods it had.
DISTILLER_SENSE = {"l1-filter": "filters-l1", "l2-filter": "filters-l2", "l1-channel": "channels-l1",
                   "l2-channel": "channels-l2", "filter": "filters-l1", "channel": "channels-l1"}


def method_named(name: str) -> str:
    """A compression method's name, Distiller's `--sense` names accepted (l1-filter, l1-channel)."""
    return DISTILLER_SENSE.get(name, name)


def quick_benchmark(runtime: str, threads: int) -> dict[str, Any]:
    """What each point's latency is timed with: quick settings (points are many) on `runtime`."""
    return {**QUICK_BENCHMARK, "runtime": runtime, "threads": threads}


def analyse(plan: SensitivityPlan, out_dir: Path | None = None, *, data_root: Path | None = None,
            progress: Callable[[int, int, str], None] = lambda done, total, what: None) -> tuple[pd.DataFrame, Path]:
    """Every (layer, ratio) point measured (resuming what is done), then payoff.csv and figures."""
    checkpoint = Path(plan.checkpoint)
    if not checkpoint.is_file():
        raise EdgetuneError(f"--checkpoint {checkpoint}: no such file")
    out_dir = out_dir or Path("runs") / f"sensitivity-{plan.model or checkpoint.stem}"
    frame = run_sensitivity(plan, out_dir, data_root, progress=progress)
    base = json.loads((out_dir / "baseline" / "metrics.json").read_text())
    payoff(frame, 2.0).to_csv(out_dir / "payoff.csv", index=False)
    draw(frame, out_dir / "figures", base["top1"])
    return frame, out_dir


@dataclass
class SuggestedRecipe:
    schedule: str  # the Distiller schedule, as YAML text
    suggestion: Suggestion
    schedule_path: Path
    sweep_path: Path


def suggest_recipe(analysis: Path, groups: int = 4, max_accuracy_drop: float = 2.0, min_saving_ms: float = 0.0,
                   sweep_path: Path | None = None) -> SuggestedRecipe:
    """Cluster an analysis's curves into `groups` pruners; write the schedule and its sweep beside it."""
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
    schedule_path = analysis / "suggested.schedule.yaml"
    schedule_path.write_text(schedule)
    sweep_path = sweep_path or analysis / "suggested.sweep.yaml"
    sweep_path.write_text(sweep_yaml(found))
    return SuggestedRecipe(schedule, found, schedule_path, sweep_path)
