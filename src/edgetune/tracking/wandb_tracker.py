"""Weights & Biases, the first seed's tracker: one W&B run per trial (as a W&B sweep makes),
grouped by study, config = the trial's parameters, summary = its metrics, the ONNX file as a
model artefact. Offline by default: no account, no network."""

from __future__ import annotations

import os
from pathlib import Path

from edgetune.config.experiment import WandbSpec
from edgetune.errors import MissingExtraError
from edgetune.tracking.base import Tracker, TrialRecord


class WandbTracker(Tracker):
    def __init__(self, spec: WandbSpec, study_name: str, run_dir: Path) -> None:
        try:
            import wandb
        except ImportError:
            raise MissingExtraError("wandb", "tracking") from None
        self.wandb = wandb
        self.spec = spec
        self.group = study_name
        self.dir = spec.dir or run_dir / "wandb"
        self.dir.mkdir(parents=True, exist_ok=True)

    def log_trial(self, record: TrialRecord) -> None:
        os.environ.setdefault("WANDB_SILENT", "true")
        run = self.wandb.init(
            project=self.spec.project, entity=self.spec.entity, mode=self.spec.mode, dir=str(self.dir),
            group=self.group, name=f"{self.group}-trial-{record.number}", job_type="trial",
            config={**record.params, "trial": record.number}, reinit="create_new",
            tags=[record.state.lower(), *([f"reference:{record.reference}"] if record.reference else [])],
        )
        try:
            metrics = record.numeric_metrics()
            run.log(metrics)
            run.summary.update({**metrics, "state": record.state})
            if record.onnx is not None and record.onnx.is_file():
                artifact = self.wandb.Artifact(f"{self.group}-trial-{record.number}", type="model",
                                               metadata={"trial": record.number, "state": record.state})
                artifact.add_file(str(record.onnx), name="model.onnx")
                run.log_artifact(artifact)
        finally:
            run.finish()
