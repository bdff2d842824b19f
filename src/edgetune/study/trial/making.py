"""One candidate being made, as the steps of its trial pass it along (candidate.py, finetune.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgetune.compress.base import CompressionRecord
from edgetune.config.experiment import FinetuneSpec
from edgetune.executors.base import Stage
from edgetune.study.trial.workbench import TrialSetup, Workbench


@dataclass
class Making:
    """One candidate being made: where it is built and measured, how it is fine-tuned, where its
    files go and whom it tells, and what it has recorded so far (its figures, the structures its
    pruners removed, how it was timed)."""

    bench: Workbench
    setup: TrialSetup
    ft: FinetuneSpec
    out_dir: Path
    stage: Stage
    metrics: dict[str, Any] = field(default_factory=dict)
    thinning: list[CompressionRecord] = field(default_factory=list)
    timing: dict[str, Any] = field(default_factory=dict)
