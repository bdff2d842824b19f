"""The Celery application between producers and device workers, on Redis.

JSON only (a worker never unpickles what it is sent); late acknowledgement, so a worker killed
mid-benchmark leaves its message to be delivered again (after Redis's visibility timeout);
one message at a time per worker, since two benchmarks on one device would time each other.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgetune.config.base import broker_url
from edgetune.errors import EdgetuneError, MissingExtraError, redact_url
from edgetune.worker.handler import handle
from edgetune.worker.messages import BenchRequest, BenchResult

TASK = "edgetune.benchmark"


def with_tls_defaults(url: str) -> str:
    """`rediss://` verifies the server's certificate unless the URL says otherwise (Celery
    refuses a TLS URL that does not say); `ssl_ca_certs=/path/ca.crt` names a private CA."""
    if not url.startswith("rediss://") or "ssl_cert_reqs=" in url:
        return url
    return url + ("&" if "?" in url else "?") + "ssl_cert_reqs=required"


def make_app(broker: str, results_dir: Path | None = None, visibility_timeout: float = 3600.0):
    try:
        from celery import Celery
    except ImportError:
        raise MissingExtraError("celery", "worker") from None
    broker = with_tls_defaults(broker)
    app = Celery("edgetune", broker=broker, backend=broker)
    # Kombu sweeps for messages whose worker died every interval x throttle seconds (100 s by
    # default) once they are older than the visibility timeout: a killed worker's benchmark
    # would wait that long on top of it. Sweeping every few seconds costs one sorted-set range
    # read on Redis.
    sweep = {"unacked_restore_interval": max(1, min(10, round(visibility_timeout / 2))), "unacked_restore_throttle": 1}
    app.conf.update(
        task_serializer="json", result_serializer="json", accept_content=["json"], result_accept_content=["json"],
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": visibility_timeout, **sweep},
        result_backend_transport_options={"visibility_timeout": visibility_timeout},
        broker_connection_retry_on_startup=True, broker_connection_max_retries=None, result_expires=7 * 24 * 3600,
        # A worker whose broker restarts mid-benchmark keeps trying to store the answer rather
        # than dropping it (the producer would then wait for nothing).
        result_backend_always_retry=True, result_backend_max_retries=120,
        result_backend_max_sleep_between_retries_ms=5000,
        worker_hijack_root_logger=False, worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    if results_dir is not None:
        @app.task(name=TASK)
        def benchmark(payload: Any) -> dict[str, Any]:
            return answer(payload, results_dir)

    return app


def answer(payload: Any, results_dir: Path) -> dict[str, Any]:
    """A message's answer: the benchmark, or an error naming what is wrong with the message
    (a list, a string or null is not a request; a bad field is named), never an exception."""
    if not isinstance(payload, dict):
        return BenchResult(id="?", error=f"invalid request: a JSON object is expected, got "
                                         f"{type(payload).__name__}").model_dump()
    try:
        request = BenchRequest.model_validate(payload)
    except Exception as exc:  # noqa: BLE001 - a malformed message gets an answer saying so
        fields = ", ".join(".".join(map(str, e["loc"])) for e in getattr(exc, "errors", list)()) or "?"
        return BenchResult(id=str(payload.get("id", "?"))[:64],
                           error=f"invalid request (fields: {fields}): {exc}"[:2000]).model_dump()
    return handle(request, results_dir).model_dump()


def run_worker(broker: str, queue: str, results_dir: Path, visibility_timeout: float = 3600.0,
               connect_timeout: float = 60.0, say: Callable[[str], None] = print) -> None:
    """Serve one queue (one kind of device) until stopped; benchmarks run one at a time. The
    broker must answer within `connect_timeout` seconds (0: wait for it forever, each try
    counted); once served, a broker that goes away is waited for, as Celery does."""
    try:
        broker_url(broker)
    except ValueError as exc:
        raise EdgetuneError(f"--broker: {exc}") from None
    app = make_app(broker, results_dir, visibility_timeout)
    wait_for_broker(app, broker, connect_timeout, say)
    app.worker_main(["worker", "--queues", queue, "--pool", "solo", "--concurrency", "1", "--loglevel", "INFO",
                     "--without-gossip", "--without-mingle", "--hostname", f"edgetune-{queue}@%h"])


def wait_for_broker(app: Any, broker: str, seconds: float, say: Callable[[str], None] = print) -> None:
    """Return once the broker accepts a connection; an unreachable one is tried again every few
    seconds, each try said with its count, and after `seconds` (unless 0) refused by name."""
    deadline, tries = time.monotonic() + seconds, 0
    while True:
        tries += 1
        try:
            with app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=5)
            return
        except _unreachable() as exc:
            reason = f"{type(exc).__name__}: {str(exc)[:200]}"
            if seconds and time.monotonic() >= deadline:
                raise EdgetuneError(f"bench-worker: the broker {redact_url(broker)} did not answer in {seconds:.0f} s "
                                    f"({tries} {'try' if tries == 1 else 'tries'}; {reason}); check the URL, that Redis runs there and this "
                                    "machine reaches it, or give --connect-timeout 0 to wait for it") from None
            say(f"broker {redact_url(broker)} unreachable (try {tries}: {reason}); trying again in 5 s")
            time.sleep(5 if not seconds else max(0.0, min(5.0, deadline - time.monotonic())))


def _unreachable() -> tuple[type[BaseException], ...]:
    from kombu.exceptions import OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return OperationalError, RedisConnectionError, RedisTimeoutError, ConnectionError


def submit(app, queue: str, request: BenchRequest, timeout: float) -> BenchResult:
    """Send a request and wait for its answer, riding out a broker that is down or restarting
    (backoff up to 5 s between tries) until `timeout`; then the trial fails with the reason.

    The request id is the task id and the worker answers each id once, so a send repeated after
    an unclear failure names the same answer rather than a second benchmark."""
    unreachable = _unreachable()
    deadline = time.monotonic() + timeout
    delay, sent, last_error = 0.2, None, ""
    while True:
        try:
            if sent is None:
                sent = app.send_task(TASK, args=[request.model_dump(mode="json")], queue=queue, task_id=request.id,
                                     retry=False)
            if sent.ready():
                return BenchResult.model_validate(sent.get(timeout=10))
            delay = 0.2
        except unreachable as exc:
            last_error = f"; the broker was unreachable ({type(exc).__name__}: {str(exc)[:200]})"
            delay = min(2 * delay, 5.0)
        if time.monotonic() > deadline:
            what = "sent" if sent is None else "answered"
            raise EdgetuneError(f"benchmark {request.id} was not {what} on queue '{queue}' within "
                                f"{timeout:.0f} s{last_error}")
        time.sleep(delay)
