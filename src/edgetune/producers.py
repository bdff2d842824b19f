"""Several producers on one study: what changes when the storage is shared.

With its own SQLite file a producer is alone, and a trial left RUNNING after a kill was its
own: it re-queues it at start. On a shared storage (PostgreSQL, MySQL; `--storage`) a RUNNING
trial may be another producer's, alive. So each producer records a heartbeat for the trial it
runs; Optuna's `fail_stale_trials` marks a trial whose heartbeat stopped FAIL, and its
`RetryHeartbeatStaleTrialCallback` queues the same candidate again for whoever asks next. A producer
that reaches the target with others' trials still running waits for them (and takes over any
that go stale), so the study ends with its trial count whichever producer dies.
"""

from __future__ import annotations

import threading
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import TrialState

MAX_RETRY = 3

# Optuna marks heartbeats experimental and expects them with Study.optimize; edgetune drives
# ask/tell and beats for itself, deliberately.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning, module=r"optuna|edgetune")
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


# Errors that mean the request never reached the database: a refused connect, or a pooled
# connection found dead before use. Safe to repeat. Anything else (a connection lost mid-commit)
# is ambiguous and is raised, so no trial can be recorded twice.
UNREACHED = ("connection refused", "could not connect", "the database system is starting up",
             "the database system is shutting down")


def _unreached(exc: BaseException) -> bool:
    from sqlalchemy.exc import DisconnectionError, InvalidatePoolError, OperationalError

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DisconnectionError | InvalidatePoolError):
            return True
        if isinstance(seen, OperationalError) and any(m in str(seen).lower() for m in UNREACHED):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _until_reachable(fn: Callable, patience: float) -> Callable:
    def call(*args, **kwargs):
        deadline = time.monotonic() + patience
        delay = 0.2
        while True:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                if not _unreached(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(2 * delay, 5.0)

    return call


class PatientStorage(optuna.storages.BaseStorage, BaseHeartbeat):
    """An RDB storage whose calls wait (with backoff, up to `patience` seconds) while the
    database cannot be reached, e.g. during a restart, instead of ending the producer."""

    def __init__(self, inner: optuna.storages.RDBStorage, patience: float) -> None:
        self._inner = inner
        for name in _STORAGE_METHODS:
            setattr(self, name, _until_reachable(getattr(inner, name), patience))


_STORAGE_METHODS = sorted(
    name for cls in (optuna.storages.BaseStorage, BaseHeartbeat) for name, member in vars(cls).items()
    if callable(member) and not name.startswith("__"))
# Every storage method is set on the instance (above), so none is left abstract.
PatientStorage.__abstractmethods__ = frozenset()


def shared_storage(url: str, heartbeat_seconds: float, patience: float = 300.0) -> optuna.storages.BaseStorage:
    """An RDB storage with heartbeats that rides out database restarts; other URLs (Optuna's
    journal storages) pass through."""
    if url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "mysql", "sqlite"):
        inner = optuna.storages.RDBStorage(
            url, heartbeat_interval=max(1, round(heartbeat_seconds)),
            grace_period=max(3, round(3 * heartbeat_seconds)),
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY),
            engine_kwargs={"pool_pre_ping": True})  # a restarted server: reconnect, do not fail
        return PatientStorage(inner, patience)
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
    return {n for t in trials if (n := RetryHeartbeatStaleTrialCallback.retried_trial_number(t)) is not None}


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
