"""What a tracker is told: each finished trial once, with the sweep's parameter names."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class TrialRecord:
    number: int
    state: str  # COMPLETE, PRUNED, FAIL
    params: dict[str, Any]
    metrics: dict[str, Any]
    onnx: Path | None = None
    reference: str | None = None  # a reference recipe's name

    def numeric_metrics(self) -> dict[str, float]:
        """Trackers take numbers only; flags and notes travel as tags."""
        out = {}
        for key, value in self.metrics.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if math.isfinite(value):
                out[key] = float(value)
        return out


class Tracker(ABC):
    """Where finished trials are also sent (MLflow, W&B). A caller may assume nothing comes back:
    a tracker only receives, and the study's own records do not depend on it. It gets each trial
    once, when the trial finishes (a resumed study does not send trials finished before). An
    implementation is built as `cls(settings, study_name, run_dir)` from its catalog row's
    section of the experiment, imports its service's package only there (a missing extra raises
    `MissingExtraError` naming it), and keeps what it writes locally under `run_dir` unless its
    settings name another place."""

    @abstractmethod
    def log_trial(self, record: TrialRecord) -> None:
        """Record one finished trial; called once per trial, from the producer that ran it."""

    def close(self) -> None:
        """Flush; the study is over (or interrupted)."""
