"""A study, along the data's path: the plan made before any trial (planning/), one trial's
candidate built, recovered, fine-tuned and measured and judged by the evaluator (trial/), the
runner that drives the trials and the final stage that trains the front again (runner.py,
final.py, preflight.py for the dry run), what the study holds read back (records/), and where
it is kept (storage/: the run directory and Optuna's storages). Each subpackage imports only
those listed after it (pyproject.toml's import-linter contract)."""

from edgetune.errors import redact_url
from edgetune.study.planning.plan import Plan, plan_study
from edgetune.study.records.results import (
    StudyOutcome,
    best_trial_number,
    best_trials,
    counted,
    feasible_trials,
    open_study,
    trials_frame,
    write_trials_csv,
)
from edgetune.study.runner import run_study
from edgetune.study.storage.rundir import RunDir
from edgetune.study.trial.candidate import CandidateResult, run_candidate
from edgetune.study.trial.profile import TargetProfile
from edgetune.study.trial.reporter import Reporter
from edgetune.study.trial.workbench import TrialSetup, Workbench

__all__ = ["CandidateResult", "Plan", "Reporter", "RunDir", "StudyOutcome", "TargetProfile", "TrialSetup",
           "Workbench", "best_trial_number", "best_trials", "counted", "feasible_trials", "open_study", "plan_study",
           "redact_url", "run_candidate", "run_study", "trials_frame", "write_trials_csv"]
