"""A run directory as the tables the analysis reads: one row per trial, from the study itself
(so a report of a running study is current), and the baseline measured for it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from edgetune.errors import ConfigError, EdgetuneError
from edgetune.files import read_yaml
from edgetune.metrics.objectives import Objective
from edgetune.study.records.held import with_final
from edgetune.study.records.results import open_study, study_objectives, trials_frame
from edgetune.study.storage.rundir import RunDir


@dataclass
class RunData:
    name: str
    run_dir: Path
    frame: pd.DataFrame  # trials_frame: the baseline row first, then every trial
    objectives: list[Objective]
    baseline: dict[str, Any]

    @property
    def params(self) -> list[str]:
        return [c for c in self.frame.columns if c.startswith("param.")]

    @property
    def candidates(self) -> pd.DataFrame:
        """Completed search trials (not the baseline, not reference recipes), each candidate once:
        a repeat answered from an earlier trial is that trial again, not a second point."""
        f = self.frame
        ref = f["reference"].notna() if "reference" in f else pd.Series(False, index=f.index)
        repeat = f["duplicate_of"].notna() if "duplicate_of" in f else pd.Series(False, index=f.index)
        return f[(f["state"] == "COMPLETE") & ~ref & ~repeat]

    @cached_property
    def experiment(self) -> dict[str, Any]:
        """The experiment as the run resolved it (experiment.resolved.yaml), read once."""
        resolved = RunDir(self.run_dir).resolved_experiment
        return (yaml.safe_load(resolved.read_text()) or {}) if resolved.is_file() else {}

    @cached_property
    def sweep(self) -> dict[str, Any]:
        """The sweep the run searched: inline in the resolved experiment, or (a study begun with
        `--sweep FILE` before the run inlined it) read from the file it names; {} when that file
        is gone or unreadable, so the report draws no limits rather than failing."""
        sweep = self.experiment.get("sweep")
        if isinstance(sweep, str):
            try:
                sweep = read_yaml(sweep, "sweep")
            except ConfigError:
                return {}
        return sweep if isinstance(sweep, dict) else {}

    def onnx(self, trial: int | str) -> Path:
        return RunDir(self.run_dir).onnx(trial)


def load_run(run_dir: Path, storage: str | None = None) -> RunData:
    study = open_study(run_dir, storage)
    saved = RunDir(run_dir).baseline_metrics
    if not saved.is_file():
        raise EdgetuneError(f"{run_dir} has no measured baseline yet ({saved} is missing): the study has not "
                            "started its first trial; run the report again later")
    baseline = json.loads(saved.read_text())["metrics"]
    objectives = [o if o.metric else Objective("value", o.goal) for o in study_objectives(study)]
    frame = with_final(trials_frame(study, baseline, objectives), RunDir(run_dir).final)
    return RunData(study.study_name, run_dir, frame, objectives, baseline)
