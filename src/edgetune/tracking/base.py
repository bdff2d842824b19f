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
    @abstractmethod
    def log_trial(self, record: TrialRecord) -> None:
        """Record one finished trial; called once per trial, from the producer that ran it."""

    def close(self) -> None:
        """Flush; the study is over (or interrupted)."""
