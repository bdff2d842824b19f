"""Words and units where a person reads a table (HTML and Markdown); the CSV files keep the
machine names, which scripts read."""

from __future__ import annotations

import pandas as pd

from edgetune.metrics.table import TABLE
from edgetune.study.trial.clock import STAGES

# column -> (label, divisor): MACs in millions, parameters in thousands, bytes in MB. A metric's
# comes from the metric table; these are the other columns of a study's tables.
COLUMNS: dict[str, tuple[str, float]] = {
    "trial": ("trial", 1), "row": ("network", 1), "state": ("state", 1),
    "final_val_top1": ("final val top-1 %", 1),
    "final_drop": ("points lost", 1), "final_drop_upper": ("at most (bound)", 1), "test_top1": ("test top-1 %", 1),
    "final_epochs": ("final epochs", 1), "feasible": ("feasible", 1), "pareto": ("on the front", 1),
    "duplicate_of": ("repeat of trial", 1), "latency_unreliable": ("latency not trusted", 1),
    "remeasure_of": ("timed again from trial", 1), "rejected_early": ("scoring stopped", 1),
    "accepted_early": ("scoring stopped, clear of the floor", 1),
    "top1_images": ("images scored", 1), "rank": ("rank", 1), "seconds_trial": ("trial s", 1),
    "overhead_share": ("share not recovering, training or scoring", 1),
    **{f"seconds_{s}": (f"{s} s", 1) for s in STAGES},
}
LABELS: dict[str, tuple[str, float]] = {**{name: (m.label, m.scale) for name, m in TABLE.items() if m.label},
                                        **COLUMNS}


def readable(table: pd.DataFrame) -> pd.DataFrame:
    """Renamed columns (`param.` dropped, units in the name) and values in those units."""
    out = table.copy()
    for column, (_, divisor) in LABELS.items():
        if column in out and divisor != 1:
            out[column] = pd.to_numeric(out[column], errors="coerce") / divisor
    return out.rename(columns=lambda c: LABELS[c][0] if c in LABELS else str(c).removeprefix("param."))
