"""MLflow: one MLflow run per trial in an experiment named after the study; parameters,
metrics, state tags and the ONNX file as an artefact. A local `sqlite:///` URI needs no server
(MLflow's plain-file store is deprecated upstream, so the default suggested is SQLite)."""

from __future__ import annotations

from pathlib import Path

from edgetune.config.experiment import MlflowSpec
from edgetune.errors import MissingExtraError
from edgetune.tracking.base import Tracker, TrialRecord


class MlflowTracker(Tracker):
    def __init__(self, spec: MlflowSpec, study_name: str, run_dir: Path) -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise MissingExtraError("mlflow", "tracking") from None
        self.client = MlflowClient(tracking_uri=spec.uri)
        name = spec.experiment or study_name
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            self.experiment_id = found.experiment_id
        else:
            # Artefacts beside the run directory unless the server has its own store.
            location = (run_dir / "mlartifacts").resolve().as_uri() if spec.uri.startswith("sqlite") else None
            self.experiment_id = self.client.create_experiment(name, artifact_location=location)
        self.study_name = study_name

    def log_trial(self, record: TrialRecord) -> None:
        tags = {"edgetune.study": self.study_name, "edgetune.trial": str(record.number),
                "edgetune.state": record.state, **({"edgetune.reference": record.reference} if record.reference else {})}
        run = self.client.create_run(self.experiment_id, run_name=f"trial-{record.number}", tags=tags)
        run_id = run.info.run_id
        try:
            for key, value in record.params.items():
                self.client.log_param(run_id, key, value)
            for key, value in record.numeric_metrics().items():
                self.client.log_metric(run_id, key, value)
            if record.onnx is not None and record.onnx.is_file():
                self.client.log_artifact(run_id, str(record.onnx), artifact_path="onnx")
        finally:
            self.client.set_terminated(run_id, status="FINISHED" if record.state == "COMPLETE" else "FAILED")
