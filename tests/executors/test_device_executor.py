"""The device-worker executor as a study uses it: the request it builds for each measurement
(calibration and scoring images with a reduced precision; the reference opened as
`open_reference` said), answered by the worker's own handler in this process. The Celery round
trip is tests/worker's."""

from __future__ import annotations

import pydantic
import pytest

from edgetune.worker.handler import handle
from edgetune.worker.messages import BenchRequest
from tests.helpers import QUICK, bench_request, fmnist_sample


def test_int8_is_calibrated_and_scored_on_the_device(resnet20, fmnist, tmp_path, monkeypatch):
    """A reduced precision travels with its calibration images and held-out images: the worker
    quantises with them and reports the deployed model's accuracy, the producer's device-worker
    executor builds exactly that request."""
    from edgetune.config.benchmark import BenchmarkSpec
    from edgetune.executors.base import Scoring
    from edgetune.executors.device import DeviceWorkerExecutor

    _, path = resnet20
    images = fmnist.normalize(fmnist.val.images[:200]).numpy()
    labels = fmnist.val.labels[:200].numpy()
    spec = BenchmarkSpec(**{**QUICK, "throughput_batches": [8]}, precision="int8")
    sent: list[BenchRequest] = []

    # The Celery round trip is tested below; here, the request itself.
    monkeypatch.setattr("edgetune.worker.app.submit",
                        lambda app, queue, request, timeout: (sent.append(request), handle(request, tmp_path / "r"))[1])
    executor = DeviceWorkerExecutor("redis://unused", "q", 60, app=object())
    executor.open_reference(path, spec)
    metrics = executor.measure(path, spec, fmnist_sample(fmnist, 8),
                               scoring=Scoring(images[:100], images, labels)).metrics
    assert sent[0].calibration is not None and sent[0].eval_labels is not None
    assert metrics["max_abs_diff"] >= 0 and 0 < metrics["latency_ms"]
    fp32 = handle(bench_request(path, fmnist_sample(fmnist, 8)).model_copy(update={
        "id": "fp32-scored-1", "benchmark": spec.model_copy(update={"precision": "fp32"}),
        "eval_images": sent[0].eval_images, "eval_labels": sent[0].eval_labels}), tmp_path / "r").metrics
    assert abs(metrics["deployed_top1"] - fp32["deployed_top1"]) < 5  # int8 keeps ResNet-20's accuracy
    assert fp32["deployed_top1"] > 80
    with pytest.raises(pydantic.ValidationError, match="eval_images and eval_labels come together"):
        BenchRequest.model_validate({**sent[0].model_dump(), "eval_labels": None})


def test_the_worker_opens_the_reference_as_the_producer_opened_it(resnet20, fmnist, tmp_path, monkeypatch):
    """An INT8 format is timed against the FP32 network (the Executor's contract: the reference
    stays as `open_reference` opened it). The worker once opened the reference at the model's
    own settings, so every format read about 1.00x "FP32": a format against itself."""
    from edgetune.config.benchmark import BenchmarkSpec
    from edgetune.executors.base import Scoring
    from edgetune.executors.device import DeviceWorkerExecutor
    from edgetune.worker import handler

    _, path = resnet20
    fp32 = BenchmarkSpec(**{**QUICK, "throughput_batches": []})
    int8 = fp32.model_copy(update={"precision": "int8", "int8_format": "qdq-u8-tensor"})
    opened: list[str] = []
    real = handler.open_reference
    monkeypatch.setattr(handler, "open_reference",
                        lambda onnx, spec, *a: (opened.append(f"{spec.precision}/{spec.int8_format}"), real(onnx, spec, *a))[1])
    sent: list[BenchRequest] = []
    monkeypatch.setattr("edgetune.worker.app.submit",
                        lambda app, queue, request, timeout: (sent.append(request), handle(request, tmp_path / "r"))[1])
    executor = DeviceWorkerExecutor("redis://unused", "q", 60, app=object())
    executor.open_reference(path, fp32)
    calibration = fmnist_sample(fmnist, 64)
    executor.measure(path, int8, fmnist_sample(fmnist, 8), scoring=Scoring(calibration))
    executor.measure(path, fp32, fmnist_sample(fmnist, 8), scoring=Scoring(calibration))
    assert opened == ["fp32/auto", "fp32/auto"]
    # Opened as the model is, the request carries no settings of its own (its id is the one such
    # requests always had, so a resumed study's answers are found again).
    assert sent[0].reference_benchmark == fp32 and sent[1].reference_benchmark is None
    executor.open_reference(path, int8)
    executor.measure(path, int8, fmnist_sample(fmnist, 8), scoring=Scoring(calibration))
    assert opened[-1] == "int8/qdq-u8-tensor" and sent[-1].reference_benchmark is None
