"""Experiment trackers that receive every trial as it finishes, beside edgetune's own study.
One module per tracker; `open_trackers` builds those an experiment names."""

from __future__ import annotations

from pathlib import Path

from edgetune.experiment import TrackingSpec
from edgetune.tracking.base import Tracker, TrialRecord


def open_trackers(spec: TrackingSpec, study_name: str, run_dir: Path) -> list[Tracker]:
    trackers: list[Tracker] = []
    if spec.wandb is not None:
        from edgetune.tracking.wandb_tracker import WandbTracker

        trackers.append(WandbTracker(spec.wandb, study_name, run_dir))
    if spec.mlflow is not None:
        from edgetune.tracking.mlflow_tracker import MlflowTracker

        trackers.append(MlflowTracker(spec.mlflow, study_name, run_dir))
    return trackers


__all__ = ["Tracker", "TrialRecord", "open_trackers"]
