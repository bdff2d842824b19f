"""A trial's record read through names, not string keys.

Optuna keeps what a trial recorded as a dict of strings (`user_attrs`): its metrics (named in
`metrics.table`) and the notes that say what the trial is and why it ended as it did. Every
reader went through `user_attrs.get("...")`, so a misspelt key read as None and no checker saw
it. `Recorded` names each note once, with its type and what it means; outside this module no
reader spells a key (tests/metrics/test_record.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


class _HasAttributes(Protocol):
    user_attrs: dict[str, Any]


@dataclass(frozen=True)
class Recorded:
    """What one trial recorded. A missing note reads as None (or False, an empty dict)."""

    attrs: Mapping[str, Any]

    @classmethod
    def of(cls, trial: _HasAttributes) -> Recorded:
        return cls(trial.user_attrs)

    # -- what the trial is ------------------------------------------------------------------
    @property
    def reference(self) -> str | None:
        """The reference network's name when the trial measured one instead of a candidate."""
        return self.attrs.get("reference") or None

    @property
    def duplicate_of(self) -> int | None:
        """The earlier trial whose candidate this one repeated (answered from it)."""
        return self.attrs.get("duplicate_of")

    @property
    def remeasure_of(self) -> int | None:
        """The trial whose latency this one timed again (the same candidate)."""
        return self.attrs.get("remeasure_of")

    @property
    def retry_of(self) -> int | None:
        """The interrupted trial whose candidate this one runs again."""
        return self.attrs.get("retry_of")

    @property
    def candidate_key(self) -> str | None:
        """What makes two trials the same candidate (shape, precision, benchmark settings)."""
        return self.attrs.get("candidate_key")

    @property
    def precision(self) -> str | None:
        return self.attrs.get("precision")

    @property
    def applied_params(self) -> dict[str, Any]:
        """Parameter values as the schedule received them, where they differ from the sampled."""
        return dict(self.attrs.get("applied_params") or {})

    # -- how it ended -----------------------------------------------------------------------
    @property
    def skipped(self) -> str | None:
        """Why it was skipped on its predicted latency, before it was built."""
        return self.attrs.get("skipped") or None

    @property
    def stopped(self) -> str | None:
        """Why it was stopped early (a rung, the screen, a collapse)."""
        return self.attrs.get("stopped") or None

    @property
    def interrupted(self) -> bool:
        """Killed mid-trial; its candidate was queued again (`retry_of`)."""
        return bool(self.attrs.get("interrupted", False))

    @property
    def latency_unreliable(self) -> str | None:
        """Why its latency cannot be trusted (a busy host); it is timed again before it counts."""
        return self.attrs.get("latency_unreliable") or None

    @property
    def rung(self) -> int | None:
        return self.attrs.get("rung")

    @property
    def counts(self) -> bool:
        """Whether it is a search candidate that counts towards the target, its state aside: not
        a reference, not skipped on its predicted latency, not a latency timed again (the same
        candidate's). The one statement of that rule."""
        return not self.reference and not self.skipped and self.remeasure_of is None

    # -- its metrics ------------------------------------------------------------------------
    def value(self, metric: str) -> Any:
        """A recorded metric (a key of `metrics.table.TABLE`, or the user's own) or None."""
        return self.attrs.get(metric)

    @property
    def top1(self) -> float | None:
        return self.attrs.get("top1")

    @property
    def latency_ratio(self) -> float | None:
        return self.attrs.get("latency_ratio")

    @property
    def latency_ms(self) -> float | None:
        """The latency a front is drawn with: corrected for the host's drift where it was."""
        return self.attrs.get("latency_adj_ms", self.attrs.get("latency_ms"))

