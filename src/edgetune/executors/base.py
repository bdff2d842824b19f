"""Where a candidate is measured: one interface, whether the runtime is on this machine or on a
device behind a queue.

A study's candidates, its width tables, INT8 format choice and precision scale, and a
sensitivity analysis all do the same three things, through the executor they are given (so a
study sent to a device worker measures all of them there): open the unpruned network as the
reference, measure candidates beside it (parity checked first), and close it. Each implementation does them its own way; nothing above this
package asks which one it has.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np

from edgetune.config.benchmark import BenchmarkSpec
from edgetune.runtimes.profiler import NO_SCORING, Scoring

Stage = Callable[[str], None]


@dataclass
class Measurement:
    """Every metric of one candidate on the target (None where the machine cannot say), and how
    it was timed (rounds, spreads, the runtime's own description)."""

    metrics: dict[str, Any]
    timing: dict[str, Any] = field(default_factory=dict)


LOCAL_TARGET = "this machine"


class Executor(ABC):
    """Measures ONNX files on one target, each beside the reference opened last.

    A caller may assume: `open_reference` comes first and stays in force until the next one or
    `close`; every `measure` times its file interleaved with that reference in the same rounds
    (so a ratio survives the host's slow spells), checks parity against `module` before timing,
    and scores `scoring`'s images on the converted file. An implementation must raise, never
    return a figure it did not measure; it is built by `from_settings` from its catalog row's
    section of the experiment (edgetune.catalog.EXECUTORS)."""

    # Where the measurements are made, in words: part of every cache key of what is measured
    # through it (width tables, INT8 formats), so one target's figures never answer another's.
    target: str = LOCAL_TARGET

    def cache_fields(self) -> dict[str, str]:
        """What a cache key of figures measured through this executor adds: nothing for this
        machine (its entries keep the keys they always had), the target for any other."""
        return {} if self.target == LOCAL_TARGET else {"executor": self.target}

    @classmethod
    def from_settings(cls, settings: Any) -> Self:
        """Built from the experiment's section its catalog row names (None for the default)."""
        return cls()

    @abstractmethod
    def open_reference(self, onnx_path: Path, spec: BenchmarkSpec, module: Any = None,
                       calibration: np.ndarray | None = None, work_dir: Path | None = None) -> None:
        """Make `onnx_path` (the unpruned network) what candidates are timed against."""

    @abstractmethod
    def measure(self, onnx_path: Path, spec: BenchmarkSpec, sample: np.ndarray, *, module: Any = None,
                scoring: Scoring = NO_SCORING, work_dir: Path | None = None,
                stage: Stage = lambda _: None) -> Measurement:
        """Convert to the precision, check parity, time beside the reference, score."""

    @abstractmethod
    def verify(self, onnx_path: Path, spec: BenchmarkSpec, sample: np.ndarray, *, module: Any = None,
               scoring: Scoring = NO_SCORING, stage: Stage = lambda _: None) -> dict[str, Any]:
        """Parity (and the deployed accuracy) of new weights in a shape already timed."""

    def close(self) -> None:
        """Release the reference (sessions, connections)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
