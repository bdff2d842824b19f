"""Riding out a shared storage's restarts, and the heartbeat's timing: what the RDB and the Redis
journal storages share."""

from __future__ import annotations

import time
from collections.abc import Callable


def with_backoff(fn: Callable, patience: float, retryable: Callable[[BaseException], bool]) -> Callable:
    """`fn`, repeated while it raises what `retryable` accepts (0.2 s doubling to 5 s between
    tries) for up to `patience` seconds: a shared storage riding out a server restart."""
    def call(*args, **kwargs):
        deadline = time.monotonic() + patience
        delay = 0.2
        while True:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                if not retryable(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(2 * delay, 5.0)

    return call


def heartbeat_timing(heartbeat_seconds: float) -> tuple[int, int]:
    """(interval, grace period) in whole seconds: a trial is stale after three silent beats."""
    return max(1, round(heartbeat_seconds)), max(3, round(3 * heartbeat_seconds))
