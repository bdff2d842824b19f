"""Latency measured so that a search optimises the model, not the host's mood.

On a shared machine every absolute timing can drift by up to 2x for minutes. So a candidate is
timed in rounds interleaved with a reference model (the unpruned baseline on the same runtime);
each round gives a candidate/reference ratio measured under the same conditions, and the
median of those ratios is kept beside the milliseconds. Rounds continue until that ratio is
known well enough or the time budget is spent.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from edgetune.runtimes.base import Infer


@dataclass(frozen=True)
class Timing:
    latency_ms: float
    latency_mean_ms: float
    latency_p90_ms: float
    latency_p99_ms: float
    latency_min_ms: float
    runs: int
    rounds: int
    reference_ms: float | None = None
    latency_ratio: float | None = None
    # Interquartile range of the per-round ratios over their median: how far to trust the ratio.
    ratio_spread: float | None = None

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def _time_runs(infer: Infer, x: np.ndarray, runs: int) -> np.ndarray:
    out = np.empty(runs)
    for i in range(runs):
        t0 = time.perf_counter()
        infer(x)
        out[i] = time.perf_counter() - t0
    return out * 1e3


def time_interleaved(
    infer: Infer,
    x: np.ndarray,
    reference: Infer | None = None,
    *,
    warmup: int = 10,
    runs_per_round: int = 20,
    min_rounds: int = 5,
    max_rounds: int = 30,
    target_spread: float = 0.02,
    max_seconds: float = 30.0,
) -> Timing:
    for _ in range(warmup):
        infer(x)
        if reference is not None:
            reference(x)
    cand: list[np.ndarray] = []
    ref: list[np.ndarray] = []
    ratios: list[float] = []
    start = time.perf_counter()
    spread = None
    while len(cand) < max_rounds:
        c = _time_runs(infer, x, runs_per_round)
        cand.append(c)
        if reference is not None:
            r = _time_runs(reference, x, runs_per_round)
            ref.append(r)
            ratios.append(float(np.median(c) / np.median(r)))
        n = len(cand)
        if n >= min_rounds:
            if ratios:
                q25, q50, q75 = np.percentile(ratios, [25, 50, 75])
                spread = float((q75 - q25) / q50)
                if spread / np.sqrt(n) <= target_spread / 2:
                    break
            else:
                break
        if time.perf_counter() - start > max_seconds:
            break
    all_c = np.concatenate(cand)
    return Timing(
        latency_ms=float(np.median(all_c)),
        latency_mean_ms=float(all_c.mean()),
        latency_p90_ms=float(np.percentile(all_c, 90)),
        latency_p99_ms=float(np.percentile(all_c, 99)),
        latency_min_ms=float(all_c.min()),
        runs=int(all_c.size),
        rounds=len(cand),
        reference_ms=float(np.median(np.concatenate(ref))) if ref else None,
        latency_ratio=float(np.median(ratios)) if ratios else None,
        ratio_spread=spread,
    )


def throughput(infer: Infer, batch: np.ndarray, *, min_seconds: float = 1.0, warmup: int = 2) -> float:
    """Images per second at the batch size of `batch`, timed over at least `min_seconds`."""
    for _ in range(warmup):
        infer(batch)
    n, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < min_seconds or n < 3:
        infer(batch)
        n += 1
    return n * batch.shape[0] / elapsed
