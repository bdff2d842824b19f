"""A run directory as the tables the analysis reads: one row per trial, from the study itself
(so a report of a running study is current), and the baseline measured for it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from edgetune.errors import EdgetuneError
from edgetune.objectives import Objective


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
        """Completed search trials (not the baseline, not reference recipes)."""
        f = self.frame
        ref = f["reference"].notna() if "reference" in f else False
        return f[(f["state"] == "COMPLETE") & ~ref]

    def onnx(self, trial: int | str) -> Path:
        return self.run_dir / ("baseline" if trial == "baseline" else f"trials/{int(trial):04d}") / "model.onnx"


def load_run(run_dir: Path, storage: str | None = None) -> RunData:
    from edgetune.study import trials_frame
    from edgetune.trial_export import open_study

    study = open_study(run_dir, storage)
    saved = run_dir / "baseline" / "metrics.json"
    if not saved.is_file():
        raise EdgetuneError(f"{run_dir} has no measured baseline yet ({saved} is missing): the study has not "
                            "started its first trial; run the report again later")
    baseline = json.loads(saved.read_text())["metrics"]
    names = study.user_attrs.get("objectives") or ["value"]
    objectives = [Objective(m, d.name.lower()) for m, d in zip(names, study.directions, strict=False)]
    return RunData(study.study_name, run_dir, trials_frame(study, baseline, objectives), objectives, baseline)
