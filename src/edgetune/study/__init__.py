"""A study, along the data's path: the plan (plan.py), the target profile measured once
(profile.py), each candidate (candidate.py) judged by the evaluator (evaluator.py), the runner
that drives them (runner.py), what the study holds (results.py), where it is stored
(storage.py) and every path of its run directory (rundir.py)."""

from edgetune.errors import redact_url
from edgetune.study.candidate import CandidateResult, run_candidate
from edgetune.study.plan import Plan, plan_study
from edgetune.study.profile import TargetProfile
from edgetune.study.reporter import Reporter
from edgetune.study.results import (
    StudyOutcome,
    best_trial_number,
    best_trials,
    counted,
    feasible_trials,
    open_study,
    trials_frame,
    write_trials_csv,
)
from edgetune.study.rundir import RunDir
from edgetune.study.runner import run_study
from edgetune.study.workbench import TrialSetup, Workbench

__all__ = ["CandidateResult", "Plan", "Reporter", "RunDir", "StudyOutcome", "TargetProfile", "TrialSetup",
           "Workbench", "best_trial_number", "best_trials", "counted", "feasible_trials", "open_study", "plan_study",
           "redact_url", "run_candidate", "run_study", "trials_frame", "write_trials_csv"]
