"""Several producers on one study: what changes when the storage is shared.

With its own SQLite file a producer is alone, and a trial left RUNNING after a kill was its
own: it re-queues it at start. On a shared storage (PostgreSQL, MySQL; `--storage`) a RUNNING
trial may be another producer's, alive. So each producer records a heartbeat for the trial it
runs; Optuna's `fail_stale_trials` marks a trial whose heartbeat stopped FAIL, and its
`RetryFailedTrialCallback` queues the same candidate again for whoever asks next. A producer
that reaches the target with others' trials still running waits for them (and takes over any
that go stale), so the study ends with its trial count whichever producer dies.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import optuna
from optuna.storages import RetryFailedTrialCallback
from optuna.trial import TrialState

MAX_RETRY = 3


def shared_storage(url: str, heartbeat_seconds: float) -> optuna.storages.BaseStorage:
    """An RDB storage with heartbeats; other URLs (Optuna's journal storages) pass through."""
    if url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "mysql", "sqlite"):
        return optuna.storages.RDBStorage(
            url, heartbeat_interval=max(1, round(heartbeat_seconds)),
            grace_period=max(3, round(3 * heartbeat_seconds)),
            failed_trial_callback=RetryFailedTrialCallback(max_retry=MAX_RETRY),
            engine_kwargs={"pool_pre_ping": True})  # a restarted server: reconnect, do not fail
    return url  # type: ignore[return-value]


def producer_seed(seed: int, run_dir: Path) -> int:
    """Producers seeded alike would sample the same candidates; each run directory differs."""
    return seed + zlib.crc32(str(run_dir.resolve()).encode()) % 65536


@contextmanager
def heartbeat(storage: object, trial: optuna.Trial, seconds: float) -> Iterator[None]:
    """Tell the storage this trial is alive until the block ends (or the process dies)."""
    record = getattr(storage, "record_heartbeat", None)
    if record is None or getattr(storage, "get_heartbeat_interval", lambda: None)() is None:
        yield
        return
    stop = threading.Event()
    record(trial._trial_id)

    def beat() -> None:
        while not stop.wait(seconds):
            with suppress(Exception):  # a database blip: the next beat tries again
                record(trial._trial_id)

    thread = threading.Thread(target=beat, daemon=True, name=f"heartbeat-{trial.number}")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def retried_numbers(trials: list[optuna.trial.FrozenTrial]) -> set[int]:
    """Trials whose candidate was queued again after they went stale: the copy counts, not them."""
    return {n for t in trials if (n := RetryFailedTrialCallback.retried_trial_number(t)) is not None}


def wait_or_done(study: optuna.Study, count: Callable[[list], int], limit: int, poll: float) -> bool:
    """True when the study holds `limit` counted trials and nothing is queued; False when this
    producer should ask for another trial. While others' trials would reach the target, wait
    for them, failing (and so re-queueing) any whose producer died."""
    while True:
        optuna.storages.fail_stale_trials(study)
        trials = study.get_trials(deepcopy=False)
        if any(t.state == TrialState.WAITING for t in trials):
            return False
        done = count(trials)
        if done >= limit:
            return True
        running = sum(t.state == TrialState.RUNNING and not t.user_attrs.get("reference") for t in trials)
        if done + running < limit:
            return False
        time.sleep(poll)
