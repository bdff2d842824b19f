"""The device worker's message handling: validated JSON in, one result per request id out, and
no PyTorch needed on the device."""

from __future__ import annotations

import base64
import re
import subprocess
import sys

import numpy as np
import pydantic
import pytest

from edgetune.config.benchmark import INT8_FORMATS
from edgetune.worker.handler import handle
from edgetune.worker.messages import BenchRequest, encode_array
from tests.helpers import QUICK, bench_request, fmnist_sample


def test_a_request_is_benchmarked_once_per_id(resnet20, fmnist, tmp_path):
    _, path = resnet20
    request = bench_request(path, fmnist_sample(fmnist))
    first = handle(request, tmp_path / "results")
    assert first.error is None and first.metrics["latency_ms"] > 0
    assert 0.8 < first.metrics["latency_ratio"] < 1.25  # the model against itself
    # A redelivery (the worker died before acknowledging) gets the recorded answer, even if the
    # payload differs: nothing is measured or recorded twice.
    again = handle(request.model_copy(update={"onnx": base64.b64encode(b"junk").decode()}), tmp_path / "results")
    assert again == first
    # A message round-trips as JSON, the only form it travels in.
    assert BenchRequest.model_validate_json(request.model_dump_json()) == request


def test_a_bad_model_gets_an_error_answer_not_a_crash(resnet20, fmnist, tmp_path):
    _, path = resnet20
    request = bench_request(path, fmnist_sample(fmnist)).model_copy(update={
        "id": "req-broken-1", "onnx": base64.b64encode(b"\x08\x07 not a model").decode()})
    result = handle(request, tmp_path / "results")
    assert result.metrics == {} and "the model is not a valid ONNX model" in result.error


@pytest.mark.parametrize("change, message", [
    ({"id": "../../etc"}, "String should match pattern"),
    ({"sample": encode_array(np.zeros(3, np.float32))}, "sample must be a float32 batch"),
    ({"benchmark": {"runtime": "onnxruntime", "shell": "rm -rf /"}}, "Extra inputs are not permitted"),
    ({"command": "id"}, "Extra inputs are not permitted"),
])
def test_messages_are_validated(resnet20, fmnist, change, message):
    _, path = resnet20
    good = bench_request(path, fmnist_sample(fmnist)).model_dump()
    with pytest.raises(pydantic.ValidationError, match=message):
        BenchRequest.model_validate({**good, **change})
    # An object array could carry a pickle: numpy refuses to load it.
    with pytest.raises(pydantic.ValidationError, match="allow_pickle"):
        buf = __import__("io").BytesIO()
        np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        BenchRequest.model_validate({**good, "sample": base64.b64encode(buf.getvalue()).decode()})


def test_requests_over_the_size_limits_are_refused(resnet20, fmnist, monkeypatch):
    """A worker on a small device must not be made to decode a model, a sample or calibration
    images of any size it is sent: each has a limit, checked before the bytes are used."""
    from edgetune.worker import messages

    _, path = resnet20
    good = bench_request(path, fmnist_sample(fmnist)).model_dump()
    BenchRequest.model_validate(good)
    big_sample = encode_array(np.zeros((65, 3, 256, 256), np.float32))  # one batch over the real limit
    with pytest.raises(pydantic.ValidationError, match="sample must be a float32 batch of at most"):
        BenchRequest.model_validate({**good, "sample": big_sample})
    # The model and image limits are hundreds of MiB; lowered here to keep the test small.
    monkeypatch.setattr(messages, "MAX_MODEL_BYTES", 4 * 2**20)
    monkeypatch.setattr(messages, "MAX_IMAGE_VALUES", 1000)
    with pytest.raises(pydantic.ValidationError, match="model larger than 4 MiB"):
        BenchRequest.model_validate({**good, "onnx": base64.b64encode(bytes(4 * 2**20 + 3)).decode()})
    with pytest.raises(pydantic.ValidationError, match="model larger than 4 MiB"):
        BenchRequest.model_validate({**good, "reference_onnx": base64.b64encode(bytes(4 * 2**20 + 3)).decode()})
    images = encode_array(np.zeros((11, 1, 10, 10), np.float32))
    for field in ("calibration", "eval_images"):
        with pytest.raises(pydantic.ValidationError, match="images must be a float32 batch of at most 1000"):
            BenchRequest.model_validate({**good, field: images, "eval_labels": encode_array(np.zeros(11), np.int64)})
    BenchRequest.model_validate({**good, "calibration": encode_array(np.zeros((10, 1, 10, 10), np.float32))})


# The `edgetune` command as it runs on a device where only `edgetune[worker]` is installed.
WITHOUT_SEARCH_EXTRA = (
    "import sys\n"
    "for name in ('torch', 'torch_pruning', 'optuna', 'tensorly', 'scipy', 'pandas', 'cmaes'):\n"
    "    sys.modules[name] = None\n"
    "sys.argv[0] = 'edgetune'\n"
    "from edgetune.cli import main\n"
    "main()\n")


def test_the_device_install_has_no_pytorch_and_says_what_is_missing(tmp_path):
    """`pip install 'edgetune[worker,openvino]'` pulls no PyTorch; a search command run there
    names the extra to install instead of failing with a traceback."""
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    device = project["dependencies"] + project["optional-dependencies"]["worker"] + \
        project["optional-dependencies"]["openvino"]
    assert not [d for d in device if d.split("[")[0].split(">")[0].split("=")[0] in ("torch", "optuna", "torch-pruning")]
    done = subprocess.run([sys.executable, "-c", WITHOUT_SEARCH_EXTRA, "train", "--epochs", "1", "--out",
                           str(tmp_path / "ck.pt")], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "needs the 'torch' package: pip install 'edgetune[search]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_worker_needs_no_pytorch(resnet20, fmnist, tmp_path):
    _, path = resnet20
    (tmp_path / "request.json").write_text(bench_request(path, fmnist_sample(fmnist, 8)).model_dump_json())
    code = ("import sys; sys.modules['torch'] = None\n"
            "from pathlib import Path\n"
            "from edgetune.worker.handler import handle\n"
            "from edgetune.worker.messages import BenchRequest\n"
            f"r = handle(BenchRequest.model_validate_json(Path({str(tmp_path / 'request.json')!r}).read_text()), "
            f"Path({str(tmp_path / 'results')!r}))\n"
            "assert r.error is None, r.error\n"
            "print(r.metrics['latency_ms'])\n")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.strip().splitlines()[-1]) > 0


@pytest.mark.servers
def test_a_device_worker_answers_over_celery_and_redis(resnet20, fmnist, tmp_path):
    """A real Redis server and a real `edgetune bench-worker` process, in which PyTorch and the
    rest of the search extra cannot be imported: a request goes out on the device's queue and
    its metrics come back."""
    from edgetune.worker.app import make_app, submit
    from tests.servers import redis_server

    _, path = resnet20
    with redis_server() as url:
        worker = subprocess.Popen([sys.executable, "-c", WITHOUT_SEARCH_EXTRA, "bench-worker", "--broker", url,
                                   "--queue", "test-cpu", "--results", str(tmp_path / "results")],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            app = make_app(url)
            request = bench_request(path, fmnist_sample(fmnist, 8)).model_copy(update={"id": "celery-req-1"})
            result = submit(app, "test-cpu", request, timeout=120)
            assert result.error is None and result.metrics["latency_ms"] > 0, result.error
            assert (tmp_path / "results" / "celery-req-1.json").is_file()
        finally:
            worker.terminate()
            out, _ = worker.communicate(timeout=60)
        assert "ready" in out.lower()


@pytest.mark.servers
def test_a_device_worker_answers_over_tls_with_a_password(resnet20, fmnist, tmp_path):
    """`rediss://` with a private CA and a password: the worker and the producer verify the
    server's certificate (a client that does not trust the CA is refused)."""
    from edgetune.worker.app import make_app, submit
    from tests.servers import redis

    _, path = resnet20
    with redis(password="tls-pw-9", tls=True) as server:
        assert server.url.startswith("rediss://:tls-pw-9@") and "ssl_ca_certs=" in server.url
        worker = subprocess.Popen([sys.executable, "-c", WITHOUT_SEARCH_EXTRA, "bench-worker", "--broker",
                                   server.url, "--queue", "tls-cpu", "--results", str(tmp_path / "results")],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            request = bench_request(path, fmnist_sample(fmnist, 8)).model_copy(update={"id": "tls-req-0001"})
            result = submit(make_app(server.url), "tls-cpu", request, timeout=120)
            assert result.error is None and result.metrics["latency_ms"] > 0, result.error
            untrusting = make_app(server.url.split("?")[0])  # no CA given: the system store lacks it
            with pytest.raises(Exception, match="certificate verify failed"):
                untrusting.backend.client.ping()
        finally:
            worker.terminate()
            out, _ = worker.communicate(timeout=60)
        assert "ready" in out.lower()


@pytest.mark.servers
@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_a_study_benchmarks_on_a_device_worker(tmp_path, precision):
    """`edgetune run --bench-queue`: the baseline and every candidate are timed by the worker
    process, each request answered once and recorded under its id. The broker needs a
    password, which works and is not written into the run directory. int8 is calibrated and
    scored on the device, after fine-tuning too."""
    import csv
    import os

    import yaml

    from tests.helpers import experiment
    from tests.servers import redis_server

    exp = experiment(tmp_path, trials=2, epochs=0 if precision == "fp32" else 1)
    spec = yaml.safe_load(exp.read_text())
    spec["benchmark"].update(precision=precision, calibration_images=64)
    exp.write_text(yaml.safe_dump(spec))
    # A cache of its own: an INT8 format table another run measured on this queue would be read,
    # not measured (what the cache is for, not what this test checks).
    env = {**os.environ, "EDGETUNE_CACHE": str(tmp_path / "cache")}
    with redis_server(password="s3cret-pw") as url:
        worker = subprocess.Popen([sys.executable, "-m", "edgetune.cli", "bench-worker", "--broker", url,
                                   "--queue", "dev-cpu", "--results", str(tmp_path / "answers")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            done = subprocess.run([sys.executable, "-m", "edgetune.cli", "run", str(exp), "--bench-queue", "dev-cpu",
                                   "--broker", url], check=False, capture_output=True, text=True, timeout=600, env=env)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with open(tmp_path / "run" / "trials.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["state"] for r in rows] == ["BASELINE", "COMPLETE", "COMPLETE"]
    assert all(float(r["latency_ms"]) > 0 for r in rows)
    answers = list((tmp_path / "answers").glob("bench-*.json"))
    # The baseline and two candidates, each benchmarked once by the worker; int8 after
    # fine-tuning asks again for the new weights' deployed accuracy, and the INT8 formats are
    # measured there too (`int8_format: auto`), each quantised, timed and scored by the worker.
    formats = len(INT8_FORMATS) if precision == "int8" else 0
    assert len(answers) == (3 if precision == "fp32" else 5) + formats
    if precision == "int8":
        assert all(float(r["deployed_top1"]) > 0 for r in rows)
        with open(tmp_path / "run" / "int8-formats.csv") as fh:
            measured = list(csv.DictReader(fh))
        assert [r["format"] for r in measured] == list(INT8_FORMATS)
        assert all(float(r["latency_ms"]) > 0 and float(r["top1"]) > 0 for r in measured)
        # Timed against the FP32 network, not against itself: the worker opens the reference as
        # it is told (a ratio of a format to itself reads 1.00 within noise every time).
        assert len({r["x_fp32"] for r in measured}) > 1
        chosen = [r["format"] for r in measured if r["chosen"] == "True"]
        import optuna

        study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
        assert {t.user_attrs["int8_format"] for t in study.trials if t.user_attrs.get("precision") == "int8"} \
            == set(chosen)
    resolved = (tmp_path / "run" / "experiment.resolved.yaml").read_text()
    assert "s3cret-pw" not in resolved and ":***@127.0.0.1" in resolved


@pytest.mark.servers
def test_a_worker_killed_mid_benchmark_is_replaced_and_nothing_is_lost(resnet20, fmnist, tmp_path):
    """SIGKILL the worker while it benchmarks: the request was not acknowledged (late ack), so
    after the visibility timeout Redis hands it to the restarted worker, which answers once."""
    import signal
    import time

    from edgetune.worker.app import make_app
    from tests.servers import redis_server

    _, path = resnet20
    slow = {**QUICK, "runs_per_round": 200, "min_rounds": 30, "max_rounds": 30, "throughput_batches": [8]}
    request = bench_request(path, fmnist_sample(fmnist, 8)).model_copy(update={"id": "killed-req-1"})
    request = request.model_copy(update={"benchmark": request.benchmark.model_copy(update=slow)})

    def start_worker(log):
        return subprocess.Popen([sys.executable, "-m", "edgetune.cli", "bench-worker", "--broker", url, "--queue",
                                 "kill-q", "--results", str(tmp_path / "answers"), "--visibility-timeout", "5"],
                                stdout=log, stderr=subprocess.STDOUT, text=True)

    with redis_server() as url:
        app = make_app(url)
        pending = app.send_task("edgetune.benchmark", args=[request.model_dump(mode="json")], queue="kill-q",
                                task_id=request.id)
        log1 = open(tmp_path / "worker1.log", "w")  # noqa: SIM115 - closed below
        first = start_worker(log1)
        deadline = time.monotonic() + 60
        while "killed-req-1" not in (tmp_path / "worker1.log").read_text():  # received, now benchmarking
            assert time.monotonic() < deadline, (tmp_path / "worker1.log").read_text()
            time.sleep(0.1)
        time.sleep(1.0)
        first.send_signal(signal.SIGKILL)
        first.wait()
        log1.close()
        assert not (tmp_path / "answers" / "killed-req-1.json").exists()  # it died before answering
        with open(tmp_path / "worker2.log", "w") as log2:
            second = start_worker(log2)
            try:
                answer = pending.get(timeout=180)
            finally:
                second.terminate()
                second.wait(timeout=60)
    assert answer["error"] is None and answer["metrics"]["latency_ms"] > 0
    assert [p.name for p in (tmp_path / "answers").iterdir()] == ["killed-req-1.json"]


@pytest.mark.parametrize("payload, says", [
    ([1, 2], "a JSON object is expected, got list"), ("benchmark me", "a JSON object is expected, got str"),
    (None, "a JSON object is expected, got NoneType"),
    ({"id": "req-00000009", "onnx": "!!", "sample": "!!"}, "fields: onnx, sample"),
])
def test_a_message_that_is_not_a_request_gets_an_answer_naming_what_is_wrong(tmp_path, payload, says):
    from edgetune.worker.app import answer

    result = answer(payload, tmp_path)
    assert result["metrics"] == {} and says in result["error"]


@pytest.mark.parametrize("setting", [{"warmup": 10**12}, {"max_seconds": 1e12}, {"runs_per_round": 10**9},
                                     {"throughput_batches": [1] * 100}, {"repeats": 10**6}])
def test_benchmark_settings_that_would_tie_a_worker_up_are_refused(resnet20, fmnist, setting):
    _, path = resnet20
    good = bench_request(path, fmnist_sample(fmnist)).model_dump()
    with pytest.raises(pydantic.ValidationError, match="less than or equal|at most"):
        BenchRequest.model_validate({**good, "benchmark": {**good["benchmark"], **setting}})


def test_a_damaged_or_failed_cached_answer_is_measured_again(resnet20, fmnist, tmp_path):
    _, path = resnet20
    request = bench_request(path, fmnist_sample(fmnist))
    cache = tmp_path / "results" / f"{request.id}.json"
    cache.parent.mkdir()
    cache.write_text('{"id": "req-00000001", "metr')  # a write cut short
    first = handle(request, tmp_path / "results")
    assert first.error is None and first.metrics["latency_ms"] > 0
    cache.write_text(first.model_copy(update={"metrics": {}, "error": "RuntimeError: device busy"}).model_dump_json())
    again = handle(request, tmp_path / "results")
    assert again.error is None and again.metrics["latency_ms"] > 0  # an error answer is not kept for ever
    # A latency the device's rounds did not agree on is timed again when asked again (a study
    # re-measures such trials); a trusted one is kept.
    busy = {**again.metrics, "latency_ms": 99.0, "latency_unreliable": "the interleaved rounds disagree"}
    cache.write_text(again.model_copy(update={"metrics": busy}).model_dump_json())
    third = handle(request, tmp_path / "results")
    assert third.metrics["latency_ms"] != 99.0 and third.metrics["latency_ms"] > 0
    assert handle(request, tmp_path / "results") == third or third.metrics.get("latency_unreliable")


def test_a_worker_whose_broker_never_answers_gives_up_naming_it_without_its_password(tmp_path):
    """It retried forever, silently; now each try is counted and, after --connect-timeout, the
    worker exits non-zero naming the broker (its password hidden) and what to check."""
    done = subprocess.run([sys.executable, "-m", "edgetune.cli", "bench-worker", "--broker",
                           "redis://:hunter2@127.0.0.1:1/0", "--queue", "q", "--connect-timeout", "2",
                           "--results", str(tmp_path / "r")], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "the broker redis://:***@127.0.0.1:1/0 did not answer in 2 s" in done.stderr
    assert re.search(r"\(\d+ tr(y|ies); OperationalError", done.stderr) and "hunter2" not in done.stdout + done.stderr
