"""Several producers on one study in a real PostgreSQL server: they share the trial count, and
a producer killed mid-trial loses nothing (its candidate is run again by the other)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from edgetune.study import counted
from tests.helpers import experiment
from tests.servers import postgresql

TRIALS = 6


@pytest.fixture(scope="module")
def pg():
    with postgresql() as server:
        yield server


def _storage(url: str):
    if url.startswith("redis"):
        from optuna.storages.journal import JournalRedisBackend, JournalStorage

        return JournalStorage(JournalRedisBackend(url))
    return url


def _producer(exp: Path, url: str, run_dir: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edgetune.cli", "run", str(exp), "--storage", url,
                             "--run-dir", str(run_dir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _shared_experiment(tmp_path: Path, name: str) -> Path:
    path = experiment(tmp_path, trials=TRIALS, epochs=1, train_subset=256, name=name, heartbeat_seconds=1.0)
    spec = yaml.safe_load(path.read_text())
    spec.pop("run_dir")
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture(scope="module")
def journal_redis():
    from tests.servers import redis

    with redis(durable=True) as server:
        yield server


@pytest.mark.servers
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["postgresql", "redis-journal"])
def test_two_producers_share_a_study_and_survive_a_kill(tmp_path, kind, request):
    """Both shared storages: PostgreSQL (Optuna's RDB heartbeats) and Optuna's Redis journal
    (edgetune's heartbeats in trial attributes)."""
    url = request.getfixturevalue("pg").url if kind == "postgresql" else request.getfixturevalue("journal_redis").url
    exp = _shared_experiment(tmp_path, "shared")
    first = _producer(exp, url, tmp_path / "p1")
    # Kill the first producer for real in the middle of a trial (its recipe written, no metrics).
    deadline = time.monotonic() + 240
    while not any((d / "recipe.yaml").is_file() and not (d / "metrics.json").is_file()
                  for d in (tmp_path / "p1" / "trials").glob("*")) if (tmp_path / "p1" / "trials").is_dir() else True:
        assert time.monotonic() < deadline and first.poll() is None, first.stdout.read() if first.poll() else "timeout"
        time.sleep(0.2)
    second = _producer(exp, url, tmp_path / "p2")
    time.sleep(1.0)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    out, _ = second.communicate(timeout=600)
    assert second.returncode == 0, out

    study = optuna.load_study(study_name="shared", storage=_storage(url))
    trials = study.get_trials(deepcopy=False)
    assert counted(study) == TRIALS
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    killed = [t for t in trials if t.state == TrialState.FAIL]
    assert killed, "the SIGKILLed producer's trial should be failed by its stopped heartbeat"
    retried = {optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(t) for t in trials}
    for t in killed:
        assert t.number in retried  # its candidate was queued again ...
    copies = [t for t in trials if optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(t) is not None]
    assert all(c.state == TrialState.COMPLETE for c in copies)  # ... and finished once
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == TRIALS and len({t.number for t in complete}) == TRIALS
    # The second producer's own files hold the trials it ran, the copy of the killed one included.
    ran_by_second = {int(d.name) for d in (tmp_path / "p2" / "trials").iterdir() if (d / "metrics.json").is_file()}
    assert {c.number for c in copies} <= ran_by_second


@pytest.mark.servers
@pytest.mark.slow
def test_a_database_restart_mid_study_loses_nothing(tmp_path, pg):
    """PostgreSQL goes down for two seconds while a producer is mid-search: the producer's next
    calls reconnect (or wait and retry) and the study still ends with its trial count."""
    exp = _shared_experiment(tmp_path, "restarted")
    producer = _producer(exp, pg.url, tmp_path / "p")
    trials = tmp_path / "p" / "trials"
    deadline = time.monotonic() + 240
    while not (trials.is_dir() and len([d for d in trials.iterdir() if (d / "metrics.json").is_file()]) >= 2):
        assert time.monotonic() < deadline and producer.poll() is None, producer.stdout.read() if producer.poll() else ""
        time.sleep(0.2)
    pg.restart(down_seconds=2.0)
    out, _ = producer.communicate(timeout=600)
    assert producer.returncode == 0, out
    study = optuna.load_study(study_name="restarted", storage=pg.url)
    assert counted(study) == TRIALS
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    assert len(complete) >= TRIALS


def _farm(tmp_path: Path, pg, name: str, during=None) -> optuna.Study:
    """The issue's whole shape on one machine: a PostgreSQL study, two producers, and one device
    worker on (durable) Redis that times every candidate. `during(broker, answers)` runs while
    the producers work."""
    from tests.servers import redis

    exp = _shared_experiment(tmp_path, name)
    answers = tmp_path / "answers"
    with redis(durable=True) as broker, open(tmp_path / "worker.log", "w") as log:
        worker = subprocess.Popen([sys.executable, "-m", "edgetune.cli", "bench-worker", "--broker", broker.url,
                                   "--queue", "farm-cpu", "--results", str(answers), "--visibility-timeout", "20"],
                                  stdout=log, stderr=subprocess.STDOUT)
        try:
            producers = [subprocess.Popen(
                [sys.executable, "-m", "edgetune.cli", "run", str(exp), "--storage", pg.url, "--run-dir",
                 str(tmp_path / f"p{i}"), "--torch-threads", "1", "--bench-queue", "farm-cpu", "--broker",
                 broker.url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
            if during is not None:
                during(broker, answers, producers)
            outs = [p.communicate(timeout=600)[0] for p in producers]
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    assert all(p.returncode == 0 for p in producers), "\n---\n".join(o[-4000:] for o in outs)
    study = optuna.load_study(study_name=name, storage=pg.url)
    done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    # A candidate whose timing the host disturbed (a restart, a loaded CI machine) is timed again
    # as a trial of its own (`remeasure_of`, study/trial/remeasure.py): the same candidate, not another.
    complete = [t for t in done if "remeasure_of" not in t.user_attrs]
    again = [t for t in done if "remeasure_of" in t.user_attrs]
    assert counted(study) == TRIALS and len(complete) == TRIALS, [(t.number, t.user_attrs) for t in done]
    assert {t.user_attrs["remeasure_of"] for t in again} <= {t.number for t in complete}
    assert len({t.number for t in complete}) == TRIALS
    assert all(t.user_attrs["latency_ms"] > 0 for t in complete)
    # One answer per distinct request, none without a request: both producers' identical
    # baselines share one, as do two candidates whose ratios thin to the same network.
    asked = {json.loads(m.read_text())["timing"]["request"] for m in tmp_path.glob("p*/*/metrics.json")} | {
        json.loads(m.read_text())["timing"]["request"] for m in tmp_path.glob("p*/trials/*/metrics.json")}
    assert {a.stem for a in answers.glob("bench-*.json")} == asked
    assert len(asked) >= 2
    return study


@pytest.mark.servers
@pytest.mark.slow
def test_a_redis_restart_mid_study_loses_nothing(tmp_path, pg):
    """Redis is killed (SIGKILL) and restarted while candidates are queued and being timed: the
    producers wait with backoff, the worker reconnects, and every trial is recorded once. (The
    same farm without the restart is every check of this test short of the restart: it was a
    test of its own, a minute of the suite for nothing this one does not check.)"""

    def restart_redis(broker, answers, producers):
        deadline = time.monotonic() + 300
        while len(list(answers.glob("bench-*.json"))) < 3:  # the baseline and two candidates answered
            assert time.monotonic() < deadline and all(p.poll() is None for p in producers), \
                [p.stdout.read() for p in producers if p.poll() is not None]
            time.sleep(0.2)
        broker.restart(down_seconds=3.0, kill=True)
        assert all(p.poll() is None for p in producers)  # the restart came mid-study

    _farm(tmp_path, pg, "farm-redis-restart", during=restart_redis)
    assert "connection to broker lost" in (tmp_path / "worker.log").read_text().lower()


def test_a_database_not_yet_accepting_connections_is_waited_for():
    """PostgreSQL refuses connections with this message while it replays its log after a restart;
    the request never reached the database, so it is repeated (it once ended the producer)."""
    from sqlalchemy.exc import OperationalError

    from edgetune.study.storage.backends import _retryable

    refused = OperationalError("SELECT 1", {}, Exception(
        'connection to server at "127.0.0.1", port 5432 failed: FATAL:  the database system is not yet accepting '
        "connections\nDETAIL:  Consistent recovery state has not been yet reached."))
    assert _retryable(refused, read=False) and _retryable(refused, read=True)
    lost = OperationalError("UPDATE trials", {}, Exception("server closed the connection unexpectedly"))
    assert not _retryable(lost, read=False)  # a write may have committed: not repeated


def test_a_connection_lost_mid_write_repeats_only_writes_that_leave_the_same_rows():
    """A restart can land between the pool's ping and a suggest's `set_trial_param`: the write
    is repeated (setting a value again leaves the same row; it once ended the producer, CI
    2026-11-30). Creating or finishing a trial is not: done twice it is two trials or an error."""
    from edgetune.study.storage.backends import repeatable

    assert all(repeatable(m) for m in ("set_trial_param", "set_trial_user_attr", "set_trial_system_attr",
                                       "record_heartbeat", "get_all_trials", "set_trial_intermediate_value"))
    assert not any(repeatable(m) for m in ("create_new_trial", "set_trial_state_values", "create_new_study",
                                           "delete_study"))
