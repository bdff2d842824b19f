"""Latency measured so that a search optimises the model, not the host's mood.

On a shared machine every absolute timing can drift by up to 2x for minutes. So a candidate is
timed in rounds interleaved with a reference model (the unpruned baseline on the same runtime);
each round gives a candidate/reference ratio measured under the same conditions, and the
median of those ratios is kept beside the milliseconds. A measurement is repeated, and
repeated again while its repeats disagree by more than a threshold.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

Call = Callable[[], object]


@dataclass(frozen=True)
class Timing:
    latency_ms: float
    latency_mean_ms: float
    latency_std_ms: float
    latency_p90_ms: float
    latency_p99_ms: float
    latency_min_ms: float
    runs: int
    rounds: int
    reference_ms: float | None = None
    latency_ratio: float | None = None
    # Interquartile range of the per-round ratios over their median: how far to trust the ratio.
    ratio_spread: float | None = None
    # Medians of the repeated measurements, and (max - min) / median over them.
    repeat_medians: list[float] = field(default_factory=list)
    repeat_spread: float | None = None
    warmup_runs: int = 0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def time_runs(call: Call, runs: int) -> np.ndarray:
    out = np.empty(runs)
    for i in range(runs):
        t0 = time.perf_counter()
        call()
        out[i] = time.perf_counter() - t0
    return out * 1e3


def warm_up(call: Call, *, block: int = 10, tolerance: float = 0.03, max_blocks: int = 20, min_blocks: int = 2) -> int:
    """Run blocks until two consecutive block medians agree within `tolerance` (caches, lazy
    kernel selection and frequency ramps settle at different speeds per engine)."""
    previous = None
    for i in range(max_blocks):
        median = float(np.median(time_runs(call, block)))
        if previous is not None and i + 1 >= min_blocks and abs(median - previous) <= tolerance * previous:
            return (i + 1) * block
        previous = median
    return max_blocks * block


def time_interleaved(
    call: Call,
    reference: Call | None = None,
    *,
    warmup: int = 10,
    runs_per_round: int = 20,
    min_rounds: int = 5,
    max_rounds: int = 30,
    target_spread: float = 0.02,
    max_seconds: float = 30.0,
) -> Timing:
    """One measurement: rounds of `runs_per_round` calls, alternating with `reference`."""
    warmed = warm_up(call, block=max(warmup, 1)) if warmup else 0
    if reference is not None and warmup:
        warm_up(reference, block=max(warmup, 1))
    cand: list[np.ndarray] = []
    ref: list[np.ndarray] = []
    ratios: list[float] = []
    start = time.perf_counter()
    spread = None
    while len(cand) < max_rounds:
        c = time_runs(call, runs_per_round)
        cand.append(c)
        if reference is not None:
            r = time_runs(reference, runs_per_round)
            ref.append(r)
            ratios.append(float(np.median(c) / np.median(r)))
        n = len(cand)
        if n >= min_rounds:
            if not ratios:
                break
            _, spread = ratio_statistics(ratios)
            if spread / np.sqrt(n) <= target_spread / 2:
                break
        if time.perf_counter() - start > max_seconds:
            break
    all_c = np.concatenate(cand)
    return Timing(
        latency_ms=float(np.median(all_c)),
        latency_mean_ms=float(all_c.mean()),
        latency_std_ms=float(all_c.std()),
        latency_p90_ms=float(np.percentile(all_c, 90)),
        latency_p99_ms=float(np.percentile(all_c, 99)),
        latency_min_ms=float(all_c.min()),
        runs=int(all_c.size),
        rounds=len(cand),
        reference_ms=float(np.median(np.concatenate(ref))) if ref else None,
        latency_ratio=ratio_statistics(ratios)[0] if ratios else None,
        ratio_spread=spread,
        warmup_runs=warmed,
    )


def ratio_statistics(ratios: list[float]) -> tuple[float, float]:
    """The per-round candidate/reference ratios' median (a slow spell of the host inflates a
    few rounds, which a mean would follow) and their interquartile range over that median."""
    q25, q50, q75 = np.percentile(ratios, [25, 50, 75])
    return float(q50), float((q75 - q25) / q50)


def time_repeated(
    call: Call, reference: Call | None = None, *, repeats: int = 3, max_spread: float = 0.02,
    remeasure: int = 2, **kwargs: object,
) -> Timing:
    """`repeats` measurements pooled into one; the whole set is taken again (up to `remeasure`
    times) while the repeats' medians differ by more than `max_spread`, and the steadiest set
    is kept, its spread reported."""
    best: list[Timing] | None = None
    best_spread = float("inf")
    warmup = int(kwargs.pop("warmup", 10))  # type: ignore[call-overload]
    for attempt in range(remeasure + 1):
        runs = [
            time_interleaved(call, reference, warmup=warmup if attempt == 0 and i == 0 else 0, **kwargs)  # type: ignore[arg-type]
            for i in range(repeats)
        ]
        medians = [t.latency_ms for t in runs]
        spread = (max(medians) - min(medians)) / float(np.median(medians))
        if spread < best_spread:
            best, best_spread = runs, spread
        if spread <= max_spread:
            break
    assert best is not None
    return _pool(best, best_spread)


def _pool(runs: list[Timing], spread: float) -> Timing:
    """One Timing from several: latency statistics over the repeats' medians and spreads."""
    medians = [t.latency_ms for t in runs]
    ratios = [t.latency_ratio for t in runs if t.latency_ratio is not None]
    refs = [t.reference_ms for t in runs if t.reference_ms is not None]
    return Timing(
        latency_ms=float(np.median(medians)),
        latency_mean_ms=float(np.mean([t.latency_mean_ms for t in runs])),
        latency_std_ms=float(np.sqrt(np.mean([t.latency_std_ms ** 2 for t in runs]))),
        latency_p90_ms=float(np.median([t.latency_p90_ms for t in runs])),
        latency_p99_ms=float(np.median([t.latency_p99_ms for t in runs])),
        latency_min_ms=float(min(t.latency_min_ms for t in runs)),
        runs=sum(t.runs for t in runs),
        rounds=sum(t.rounds for t in runs),
        reference_ms=float(np.median(refs)) if refs else None,
        latency_ratio=float(np.median(ratios)) if ratios else None,
        ratio_spread=runs[0].ratio_spread,
        repeat_medians=medians,
        repeat_spread=spread,
        warmup_runs=runs[0].warmup_runs,
    )


def throughput(call: Call, batch_size: int, *, min_seconds: float = 1.0, warmup: int = 2,
               stable: float | None = None, min_batches: int = 5) -> float:
    """Images per second calling `call` (one batch of `batch_size`) for `min_seconds`; with
    `stable`, stopped sooner once the mean batch time's relative standard error is under it
    (after `min_batches` and a tenth of `min_seconds`: a short network's batches are too quick
    for a handful of them to say much)."""
    for _ in range(warmup):
        call()
    times: list[float] = []
    t0 = time.perf_counter()
    while True:
        t = time.perf_counter()
        call()
        now = time.perf_counter()
        times.append(now - t)
        elapsed = now - t0
        if elapsed >= min_seconds and len(times) >= 3:
            break
        if (stable is not None and len(times) >= min_batches and elapsed >= min_seconds / 10
                and np.std(times, ddof=1) / np.sqrt(len(times)) <= stable * np.mean(times)):
            break
    return len(times) * batch_size / elapsed


# Interleaved rounds whose ratios spread (IQR over median) by more than this, or a ratio that
# disagrees with the milliseconds (the candidate's median over the reference's, the same rounds)
# by more than this factor, are not trusted: the host was busy in a way the rounds did not cancel.
MAX_RATIO_SPREAD = 0.25
MAX_RATIO_DISAGREEMENT = 1.3
BACKOFF_SECONDS = (1.0, 3.0)


def distrust(t: Timing) -> str | None:
    """Why a measurement interleaved with a reference is not to be trusted, or None."""
    if t.latency_ratio is None or not t.reference_ms:
        return None
    if t.ratio_spread is not None and t.ratio_spread > MAX_RATIO_SPREAD:
        return (f"the interleaved rounds disagree (ratio spread {t.ratio_spread:.0%}, over "
                f"{MAX_RATIO_SPREAD:.0%}): a busy host")
    by_ms = t.latency_ms / t.reference_ms
    if max(t.latency_ratio / by_ms, by_ms / t.latency_ratio) > MAX_RATIO_DISAGREEMENT:
        return (f"the rounds' ratio {t.latency_ratio:.3f} disagrees with the milliseconds' {by_ms:.3f} "
                f"(by more than {MAX_RATIO_DISAGREEMENT:g}x): a busy host")
    return None


def time_trusted(call: Call, reference: Call | None = None, *, backoff: tuple[float, ...] | None = None,
                 sleep: Callable[[float], None] = time.sleep, **kwargs: Any) -> tuple[Timing, str | None]:
    """`time_repeated`, taken again after each pause of `backoff` while it is not to be trusted
    (a busy spell may pass); the steadiest measurement, and why it is still not trusted (None
    when it is). The measurement is kept either way: the caller marks it, never drops it."""
    timing = time_repeated(call, reference, **kwargs)
    reason = distrust(timing)
    for pause in BACKOFF_SECONDS if backoff is None else backoff:
        if reason is None:
            break
        sleep(pause)
        again = time_repeated(call, reference, **{**kwargs, "warmup": 0})
        again_reason = distrust(again)
        if again_reason is None or (again.ratio_spread or float("inf")) < (timing.ratio_spread or float("inf")):
            timing, reason = again, again_reason
    return timing, reason
