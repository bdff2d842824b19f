"""Where candidates are measured: `Executor` (base.py), on this machine (local.py) or on a
device worker (device.py); `open_executor` builds the one an experiment names."""

from __future__ import annotations

from typing import Any

from edgetune.catalog import EXECUTORS, load
from edgetune.executors.base import Executor, Measurement, Scoring


def open_executor(remote: Any = None) -> Executor:
    """The local executor, or the device worker's when the experiment has a `remote:` section."""
    if remote is None:
        return load(EXECUTORS, "local", "executor", "remote")()  # type: ignore[operator]
    cls = load(EXECUTORS, "device-worker", "executor", "remote")
    return cls(remote.broker, remote.queue, remote.timeout)  # type: ignore[operator]


__all__ = ["Executor", "Measurement", "Scoring", "open_executor"]
