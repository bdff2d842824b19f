"""The Celery application between producers and device workers, on Redis.

JSON only (a worker never unpickles what it is sent); late acknowledgement, so a worker killed
mid-benchmark leaves its message to be delivered again (after Redis's visibility timeout);
one message at a time per worker, since two benchmarks on one device would time each other.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from edgetune.errors import EdgetuneError, MissingExtraError
from edgetune.worker.messages import BenchRequest, BenchResult

TASK = "edgetune.benchmark"


def make_app(broker: str, results_dir: Path | None = None, visibility_timeout: float = 3600.0):
    try:
        from celery import Celery
    except ImportError:
        raise MissingExtraError("celery", "worker") from None
    app = Celery("edgetune", broker=broker, backend=broker)
    app.conf.update(
        task_serializer="json", result_serializer="json", accept_content=["json"], result_accept_content=["json"],
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": visibility_timeout},
        result_backend_transport_options={"visibility_timeout": visibility_timeout},
        broker_connection_retry_on_startup=True, result_expires=7 * 24 * 3600,
        worker_hijack_root_logger=False,
    )
    if results_dir is not None:
        @app.task(name=TASK)
        def benchmark(payload: dict[str, Any]) -> dict[str, Any]:
            from edgetune.worker.handler import handle

            try:
                request = BenchRequest.model_validate(payload)
            except Exception as exc:  # noqa: BLE001 - a malformed message gets an answer saying so
                return BenchResult(id=str(payload.get("id", "?"))[:64], error=f"invalid request: {exc}"[:2000]).model_dump()
            return handle(request, results_dir).model_dump()

    return app


def run_worker(broker: str, queue: str, results_dir: Path, visibility_timeout: float = 3600.0) -> None:
    """Serve one queue (one kind of device) until stopped; benchmarks run one at a time."""
    app = make_app(broker, results_dir, visibility_timeout)
    app.worker_main(["worker", "--queues", queue, "--pool", "solo", "--concurrency", "1", "--loglevel", "INFO",
                     "--without-gossip", "--without-mingle", "--hostname", f"edgetune-{queue}@%h"])


def submit(app, queue: str, request: BenchRequest, timeout: float) -> BenchResult:
    """Send a request and wait for its answer; the request id is the task id, so sending the
    same request again (a producer retrying) names the same result."""
    result = app.send_task(TASK, args=[request.model_dump(mode="json")], queue=queue, task_id=request.id)
    deadline = time.monotonic() + timeout
    while not result.ready():
        if time.monotonic() > deadline:
            raise EdgetuneError(f"no device answered benchmark {request.id} on queue '{queue}' within {timeout:.0f} s")
        time.sleep(0.2)
    return BenchResult.model_validate(result.get(timeout=10))
