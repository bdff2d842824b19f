"""Optional trackers receive every trial: MLflow in a local SQLite database, W&B offline (no
account, no network), each with the sweep's parameter names, the metrics and the ONNX file."""

from __future__ import annotations

import pytest
import yaml

from edgetune.config.experiment import load_experiment
from edgetune.errors import ConfigError
from edgetune.study import run_study
from tests.helpers import experiment

# Runs studies or trains networks: the `slow` tier (`pytest -m 'not slow'` leaves it out).
pytestmark = pytest.mark.slow


def test_every_registered_tracker_is_tested_here():
    """A tracker added to the registry without a test of its own fails the suite."""
    from edgetune.catalog import TRACKERS

    assert set(TRACKERS) == {"mlflow", "wandb"}


def test_every_trial_reaches_mlflow_and_wandb(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DISABLE_GIT", "true")
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    path = experiment(tmp_path, trials=2, epochs=0,
                      tracking={"mlflow": {"uri": uri}, "wandb": {"project": "edgetune-test", "dir": str(tmp_path / "wb")}})
    spec, _ = load_experiment(path)
    run_study(spec)

    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["trial-0", "trial-1"]
    for r in runs:
        assert set(r.data.params) == {"stage_1", "stage_3"}  # the sweep's names
        assert r.data.metrics["latency_ms"] > 0 and "top1" in r.data.metrics
        assert r.data.tags["edgetune.state"] == "COMPLETE"
        assert [a.path for a in client.list_artifacts(r.info.run_id, "onnx")] == ["onnx/model.onnx"]

    offline = sorted((tmp_path / "wb" / "wandb").glob("offline-run-*"))
    assert len(offline) == 2
    for run_dir in offline:
        log = next(run_dir.glob("run-*.wandb")).read_bytes()  # W&B's record log (protobuf strings inside)
        for key in (b"stage_1", b"stage_3", b"latency_ms", b"top1", b"model.onnx", b"tiny-trial-"):
            assert key in log, key


def test_tracking_settings_are_checked(tmp_path):
    path = experiment(tmp_path, trials=1, tracking={"mlflow": {"uri": str(tmp_path / "mlruns")}})
    with pytest.raises(ConfigError, match="MLflow's file store, deprecated upstream; use sqlite:///"):
        load_experiment(path)
    spec = yaml.safe_load(path.read_text())
    spec["tracking"] = {"wandb": {"project": "p", "offline": True}}
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError, match="offline"):
        load_experiment(path)
