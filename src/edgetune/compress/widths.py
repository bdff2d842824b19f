"""Which width a pruned layer keeps: the ratio's width rounded to a multiple, or to the fast
widths a device's measured staircase holds (measured by `edgetune.hardware.widths`)."""

from __future__ import annotations

from collections.abc import Sequence


def efficient_widths(widths: Sequence[int], latency: Sequence[float], tolerance: float = 0.01) -> list[int]:
    """The staircase: widths faster than every wider width by more than `tolerance` (relative).
    A width not on it is dominated: some wider width runs as fast, so pruning to it loses
    channels and buys no time. The widest width is always on it."""
    pairs = sorted(zip(widths, latency, strict=True))
    keep = []
    best_wider = float("inf")
    for w, t in reversed(pairs):
        if t < best_wider * (1 - tolerance):
            keep.append(w)
        best_wider = min(best_wider, t)
    return sorted(keep)


def snap_width(requested: int, full: int, round_to: int | str | None, staircase: Sequence[int] | None = None) -> int:
    """The width to keep for a requested one. `round_to: N` rounds down to a multiple of N (at
    least N, at most the full width); `measured` takes the widest step of the measured staircase
    at or below the request, which is at least as fast as the request and usually faster."""
    requested = max(1, min(requested, full))
    if round_to is None:
        return requested
    if round_to == "measured":
        if not staircase:
            raise ValueError("round_to: measured needs a width profile of this layer (edgetune profile-widths)")
        below = [w for w in staircase if w <= requested]
        return max(below) if below else min(staircase)
    step = int(round_to)
    if step < 1:
        raise ValueError(f"round_to must be a positive multiple or 'measured', got {round_to!r}")
    return full if requested >= full else max(step, requested // step * step) if full >= step else requested
