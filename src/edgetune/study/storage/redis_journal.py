"""Producers sharing a study through Optuna's Redis journal storage (`--storage redis://...`).

The journal needs no database server, only the Redis a farm already runs as its broker. Two
things it lacks next to the RDB storage are added here, so a producer on it loses nothing:

- heartbeats: Optuna's JournalStorage has none, so a killed producer's trial would stay
  RUNNING for ever and the study would never reach its count. Each producer writes the time
  into its trial's system attributes; a RUNNING trial whose time is older than the grace period
  (or that never beat) is failed by whoever looks next, and Optuna's retry callback queues its
  candidate again, exactly as with PostgreSQL. Clocks of the producers must agree within the
  grace period (NTP does).
- patience: Redis restarting (or briefly unreachable) makes a read wait and repeat; an append
  is repeated only when the connection was refused, since one cut mid-request may have landed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import BaseJournalBackend, JournalStorage
from optuna.trial import TrialState

from edgetune.errors import MissingExtraError
from edgetune.study.storage.patience import heartbeat_timing, with_backoff

HEARTBEAT_ATTR = "edgetune:heartbeat"


def _patient(fn: Callable, patience: float, safe_to_repeat: Callable[[BaseException], bool]) -> Callable:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return with_backoff(fn, patience, lambda exc: isinstance(exc, RedisConnectionError | RedisTimeoutError)
                        and safe_to_repeat(exc))


def _refused(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "connection refused" in text or "error 111" in text or "loading" in text


class PatientRedisBackend(BaseJournalBackend):
    def __init__(self, url: str, patience: float) -> None:
        from optuna.storages.journal import JournalRedisBackend

        try:
            import redis  # noqa: F401 - JournalRedisBackend imports it lazily; fail here, by name
        except ImportError:
            raise MissingExtraError("redis", "worker") from None
        self._inner = _patient(lambda: JournalRedisBackend(url), patience, _refused)()
        self.read_logs = _patient(self._inner.read_logs, patience, lambda exc: True)
        self.append_logs = _patient(self._inner.append_logs, patience, _refused)

    def read_logs(self, log_number_from: int):  # replaced per instance; here for the ABC
        raise NotImplementedError

    def append_logs(self, logs: list[dict[str, Any]]) -> None:  # replaced per instance
        raise NotImplementedError


class JournalHeartbeatStorage(JournalStorage, BaseHeartbeat):
    """Optuna's journal storage with the RDB storage's heartbeat contract, so
    `optuna.storages.fail_stale_trials` and the producers' waiting work unchanged."""

    def __init__(self, backend: BaseJournalBackend, heartbeat_seconds: float, max_retry: int) -> None:
        super().__init__(backend)
        self._interval, self._grace = heartbeat_timing(heartbeat_seconds)
        self._callback = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)

    def record_heartbeat(self, trial_id: int) -> None:
        self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            # A trial that never beat counts from its start (its producer died at once, or is
            # starting); a retried copy inherits its original's last beat, older than its start.
            started = trial.datetime_start.timestamp() if trial.datetime_start else now
            if now - max(float(trial.system_attrs.get(HEARTBEAT_ATTR, 0.0)), started) > self._grace:
                stale.append(trial._trial_id)
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self._interval

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, Any], None] | None:
        return self._callback


def redis_journal(url: str, heartbeat_seconds: float, max_retry: int, patience: float) -> JournalHeartbeatStorage:
    return JournalHeartbeatStorage(PatientRedisBackend(url, patience), heartbeat_seconds, max_retry)
