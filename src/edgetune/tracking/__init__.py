"""Experiment trackers that receive every trial as it finishes, beside edgetune's own study.
One module per tracker (registered in `edgetune.catalog.TRACKERS`); `open_trackers` builds those
an experiment's `tracking:` section names."""

from __future__ import annotations

from pathlib import Path

from edgetune.catalog import TRACKERS, load
from edgetune.config.experiment import TrackingSpec
from edgetune.tracking.base import Tracker, TrialRecord


def open_trackers(spec: TrackingSpec, study_name: str, run_dir: Path) -> list[Tracker]:
    """One tracker per section of `tracking:` that is set (its catalog row names the section)."""
    trackers: list[Tracker] = []
    for name, plugin in TRACKERS.items():
        settings = getattr(spec, plugin.traits.section.removeprefix("tracking."), None)
        if settings is not None:
            cls = load(TRACKERS, name, "tracker", plugin.traits.section)
            trackers.append(cls(settings, study_name, run_dir))  # type: ignore[operator]
    return trackers


__all__ = ["Tracker", "TrialRecord", "open_trackers"]
