"""Where candidates are measured: `Executor` (base.py), on this machine (local.py) or on a
device worker (device.py); `open_executor` builds the one an experiment's sections name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgetune.catalog import EXECUTORS, load
from edgetune.executors.base import Executor, Measurement, Scoring


def open_executor(sections: Mapping[str, Any] | None = None) -> Executor:
    """The executor whose catalog section is set in `sections` (e.g. `{"remote": spec.remote}`),
    else the one that needs none (this machine's)."""
    sections = sections or {}
    for name, plugin in EXECUTORS.items():
        if plugin.traits.section is not None and sections.get(plugin.traits.section) is not None:
            cls = load(EXECUTORS, name, "executor", plugin.traits.section)
            return cls.from_settings(sections[plugin.traits.section])  # type: ignore[attr-defined]
    default = next(name for name, plugin in EXECUTORS.items() if plugin.traits.section is None)
    return load(EXECUTORS, default, "executor", "remote").from_settings(None)  # type: ignore[attr-defined]


__all__ = ["Executor", "Measurement", "Scoring", "open_executor"]
