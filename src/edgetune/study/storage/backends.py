"""Where a study lives, and what changes when several producers share it.

Optuna's private attributes are used here and in `redis_journal.py` (its Redis journal backend)
only, so an Optuna upgrade that moves them breaks those two files.

With its own SQLite file a producer is alone, and a trial left RUNNING after a kill was its
own: it re-queues it at start. On a shared storage (PostgreSQL, MySQL, Redis; `--storage`) a RUNNING
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

from edgetune.metrics.record import Recorded
from edgetune.study.storage.patience import heartbeat_timing, with_backoff
from edgetune.study.storage.redis_journal import redis_journal

MAX_RETRY = 3

# Optuna marks heartbeats experimental and expects them with Study.optimize; edgetune drives
# ask/tell and beats for itself, deliberately.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning, module=r"optuna|edgetune")
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


# Errors that mean the request never reached the database: a refused connect, or a pooled
# connection found dead before use. Safe to repeat any call. A connection lost in the middle of
# a request is safe to repeat only for reads and idempotent writes; another write may have
# committed, so it is raised and no trial can be recorded twice.
UNREACHED = ("connection refused", "could not connect", "the database system is starting up",
             "the database system is not yet accepting connections", "the database system is in recovery mode",
             "the database system is shutting down")
LOST = ("server closed the connection unexpectedly", "terminating connection due to administrator command",
        "connection already closed", "ssl connection has been closed unexpectedly")
READS = ("get_", "_get_", "check_", "is_")
# Writes that leave the same rows however often they run (a value set again is the same value):
# repeated like reads when the connection is lost mid-request. Creating a trial or finishing one
# is not among them: done twice, it would be two trials or an error.
IDEMPOTENT = ("set_trial_param", "set_trial_user_attr", "set_trial_system_attr", "set_study_user_attr",
              "set_study_system_attr", "set_trial_intermediate_value", "record_heartbeat")


def repeatable(method: str) -> bool:
    """Whether a storage call may be sent again after its connection was lost mid-request."""
    return method.startswith(READS) or method in IDEMPOTENT


def _retryable(exc: BaseException, read: bool) -> bool:
    from sqlalchemy.exc import DisconnectionError, InvalidatePoolError, OperationalError

    messages = UNREACHED + LOST if read else UNREACHED
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DisconnectionError | InvalidatePoolError):
            return True
        if isinstance(seen, OperationalError) and any(m in str(seen).lower() for m in messages):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _until_reachable(fn: Callable, patience: float, read: bool) -> Callable:
    return with_backoff(fn, patience, lambda exc: _retryable(exc, read))


class PatientStorage(optuna.storages.BaseStorage, BaseHeartbeat):
    """An RDB storage whose calls wait (with backoff, up to `patience` seconds) while the
    database cannot be reached, e.g. during a restart, instead of ending the producer."""

    def __init__(self, inner: optuna.storages.RDBStorage, patience: float) -> None:
        self._inner = inner
        for name in _STORAGE_METHODS:
            setattr(self, name, _until_reachable(getattr(inner, name), patience, repeatable(name)))


_STORAGE_METHODS = sorted(
    name for cls in (optuna.storages.BaseStorage, BaseHeartbeat) for name, member in vars(cls).items()
    if callable(member) and not name.startswith("__"))
# Every storage method is set on the instance (above), so none is left abstract.
PatientStorage.__abstractmethods__ = frozenset()


def shared_storage(url: str, heartbeat_seconds: float, patience: float = 300.0) -> optuna.storages.BaseStorage:
    """An RDB storage with heartbeats that rides out database restarts, or Optuna's Redis journal
    with the same heartbeats and patience (redis_journal.py); other URLs pass through."""
    if url.split(":", 1)[0] in ("redis", "rediss"):
        return redis_journal(url, heartbeat_seconds, MAX_RETRY, patience)
    if url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "mysql", "sqlite"):
        def open_storage() -> optuna.storages.RDBStorage:
            interval, grace = heartbeat_timing(heartbeat_seconds)
            return optuna.storages.RDBStorage(
                url, heartbeat_interval=interval, grace_period=grace,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY),
                engine_kwargs={"pool_pre_ping": True})  # a restarted server: reconnect, do not fail

        return PatientStorage(_until_schema_exists(_until_reachable(open_storage, patience, read=False)), patience)
    return url  # type: ignore[return-value]


def _until_schema_exists(open_storage: Callable[[], optuna.storages.RDBStorage]) -> optuna.storages.RDBStorage:
    """Producers started together on an empty database all create Optuna's tables; the losers
    of that race see "already exists" and simply open the tables the winner made."""
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(5):
        try:
            return open_storage()
        except (IntegrityError, ProgrammingError) as exc:
            if "already exists" not in str(exc) or attempt == 4:
                raise
            time.sleep(0.5 + attempt)
    raise AssertionError("unreachable")


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
        running = sum(t.state == TrialState.RUNNING and not Recorded.of(t).reference for t in trials)
        if done + running < limit:
            return False
        time.sleep(poll)


def load_study(name: str, storage: str) -> optuna.Study:
    """An existing study, from an RDB URL or Optuna's Redis journal."""
    if storage.startswith(("redis://", "rediss://")):
        from optuna.storages.journal import JournalRedisBackend, JournalStorage

        return optuna.load_study(study_name=name, storage=JournalStorage(JournalRedisBackend(storage)))
    return optuna.load_study(study_name=name, storage=storage)


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage object behind a study (optuna-dashboard serves it)."""
    return study._storage


def reclaim_interrupted(study: optuna.Study) -> list[int]:
    """Trials left RUNNING by a dead process (alone on its storage, nothing else can hold them):
    marked failed with `interrupted`, their candidates queued again so none is lost."""
    reclaimed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(t._trial_id, "interrupted", True)
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        keep = {k: v for k, v in t.user_attrs.items() if k == "reference"}
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number, **keep})
        reclaimed.append(t.number)
    return reclaimed
