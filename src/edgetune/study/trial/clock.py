"""Where a trial's time goes, per stage, without a timer at every call site.

A trial already says what it is doing through its progress callback ("pruning", "fine-tuning
epoch 2/3", "exporting ONNX", "benchmarking"...). The clock wraps that callback: the time from
one call to the next belongs to the first call's stage. So the figures cover the whole trial
(nothing falls between two timers) and a new stage anywhere is timed as soon as it says its name.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# Stage of a progress text, by its first words; the order matters ("benchmarking on the device
# worker" before "benchmarking"). "checking the exported model" is opening the runtime's session
# and the parity check: the deployment's own preparation, as converting is.
CATEGORIES: tuple[tuple[str, str], ...] = (
    ("pruning", "prune"), ("gradual pruning", "prune"), ("thinning", "prune"),
    ("fine-tuning", "finetune"),
    ("recovering", "recover"), ("re-estimating", "recover"),
    ("evaluating", "evaluate"), ("scoring", "evaluate"),
    ("exporting", "export"),
    ("converting", "convert"), ("checking", "convert"),
    ("benchmarking on the device worker", "device"),
    ("benchmarking", "benchmark"), ("profiling", "benchmark"),
)
STAGES = ("setup", "prune", "recover", "finetune", "evaluate", "export", "convert", "benchmark", "device", "other")
# Work the search is for: everything else is the overhead a faster pipeline would cut.
USEFUL = ("recover", "finetune", "evaluate")


def category(text: str) -> str:
    for prefix, name in CATEGORIES:
        if text.startswith(prefix):
            return name
    return "other"


class StageClock:
    """A progress callback that also times. Until the first call the trial is in `setup` (copying
    the network, reading the recipe)."""

    def __init__(self, stage: Callable[[str], None] = lambda _: None) -> None:
        self.inner = stage
        self.seconds: dict[str, float] = {}
        self.current = "setup"
        self.since = self.start = time.perf_counter()

    def __call__(self, text: str) -> None:
        self._close()
        self.current = category(text)
        self.inner(text)

    def _close(self) -> None:
        now = time.perf_counter()
        self.seconds[self.current] = self.seconds.get(self.current, 0.0) + now - self.since
        self.since = now

    def metrics(self) -> dict[str, float]:
        """`seconds_<stage>` for every stage that ran, `seconds_trial` and `overhead_share` (the
        share of the trial neither fine-tuning nor evaluating)."""
        self._close()
        total = time.perf_counter() - self.start
        out = {f"seconds_{name}": round(self.seconds[name], 4) for name in STAGES if name in self.seconds}
        out["seconds_trial"] = round(total, 4)
        useful = sum(self.seconds.get(name, 0.0) for name in USEFUL)
        out["overhead_share"] = round(1.0 - useful / total, 4) if total > 0 else 0.0
        return out
