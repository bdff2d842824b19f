"""Benchmark one request on this device: check the model, profile it, answer once per id.

Kept apart from any queue so the same function serves a Celery task, a test, or a script.
"""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path

import onnx

from edgetune.files import atomic_write_json
from edgetune.runtimes.profiler import Scoring, open_reference, profile_artifact
from edgetune.worker.messages import BenchRequest, BenchResult, decode_array


def _check(path: Path, what: str) -> None:
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # noqa: BLE001 - the checker raises several types for a bad file
        raise ValueError(f"{what} is not a valid ONNX model: {exc}") from None


def _optional(text: str | None):
    return None if text is None else decode_array(text)


def handle(request: BenchRequest, results: Path) -> BenchResult:
    """Benchmark `request` unless `results` already holds its answer (a redelivery after a
    worker died between benchmarking and acknowledging): exactly one result per id."""
    results.mkdir(parents=True, exist_ok=True)
    done = results / f"{request.id}.json"
    if done.is_file():
        try:
            cached = BenchResult.model_validate_json(done.read_text())
        except ValueError:  # a damaged answer (a disk filled mid-write, an edit): measured again
            done.unlink()
        else:
            if cached.error is None and not cached.metrics.get("latency_unreliable"):
                return cached
            # An error answer is not kept for ever: the request is tried again (the model may
            # have been fixed, the device freed), and its new answer replaces the old. Nor is a
            # latency the device's rounds did not agree on: asked again, it is timed again.
    with tempfile.TemporaryDirectory(prefix="edgetune-worker-") as tmp:
        work = Path(tmp)
        try:
            model = work / "model.onnx"
            model.write_bytes(request.model_bytes())
            _check(model, "the model")
            calibration = _optional(request.calibration)
            reference = None
            if request.reference_onnx is not None:
                ref_path = work / "reference.onnx"
                ref_path.write_bytes(base64.b64decode(request.reference_onnx, validate=True))
                _check(ref_path, "the reference model")
                (work / "reference").mkdir()
                reference = open_reference(ref_path, request.reference_benchmark or request.benchmark, None,
                                           calibration, work / "reference")
            try:
                scoring = Scoring(calibration, _optional(request.eval_images), _optional(request.eval_labels))
                report = profile_artifact(model, request.benchmark, decode_array(request.sample), scoring=scoring,
                                          reference=reference, work_dir=work)
            finally:
                if reference is not None:
                    reference.close()
            result = BenchResult(id=request.id, metrics=report.metrics, device=report.description)
        except Exception as exc:  # noqa: BLE001 - every failure becomes the producer's answer
            result = BenchResult(id=request.id, error=f"{type(exc).__name__}: {exc}"[:2000])
    atomic_write_json(done, result.model_dump())
    return result
