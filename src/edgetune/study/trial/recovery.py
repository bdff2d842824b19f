"""What a study recovers without training after pruning (`calibrate:`), as its workbench carries
it: the settings checked against the data before anything is written, and a study begun before
recovery existed kept as its first trials were made, not mixed."""

from __future__ import annotations

import dataclasses
import logging

import optuna

from edgetune.config.experiment import ExperimentSpec
from edgetune.errors import ConfigError
from edgetune.study.planning.plan import Plan
from edgetune.study.trial.reporter import Reporter
from edgetune.study.trial.workbench import Workbench


def check_recovery_images(spec: ExperimentSpec, images: int) -> None:
    """Re-estimation needs training images: asked for by name without them it is an error, left
    at its default it is turned off with a warning (the study's trials then record no
    re-estimated score)."""
    if images >= 2 or not spec.calibrate.batchnorm:
        return
    if "batchnorm" in spec.calibrate.model_fields_set:
        raise ConfigError(f"calibrate.batchnorm re-estimates norm statistics on training images, and the training "
                          f"split has {images}; give data with at least 2 training images or set "
                          "calibrate.batchnorm: false", key="calibrate.batchnorm")
    logging.getLogger("edgetune").warning("the training split has %d image(s): norm statistics are not "
                                          "re-estimated after pruning (calibrate.batchnorm)", images)
    spec.calibrate.batchnorm = False


def with_recovery(plan: Plan, study: optuna.Study, bench: Workbench, reporter: Reporter) -> Workbench:
    """The workbench that re-estimates norm statistics as `calibrate:` says, unless the study was
    begun before edgetune re-estimated them: its trials go on as they were made, not mixed."""
    if "calibrate" not in study.user_attrs:
        reporter.stage("this study was begun before norm statistics were re-estimated after pruning, before "
                       "fine-tuning went only to promoted candidates and before the CPU trained in channels_last: "
                       "its trials go on as they were made (a new --run-dir starts one with all three)")
        return dataclasses.replace(bench, begun_before_recovery=True, begun_before_cosine=True)
    if "finetune_schedule" not in study.user_attrs and plan.spec.finetune.schedule == "auto":
        reporter.stage("this study was begun before fine-tuning followed a cosine over its steps: its trials go "
                       "on at a constant learning rate, as they were made (a new --run-dir starts one with it)")
        bench = dataclasses.replace(bench, begun_before_cosine=True)
    return dataclasses.replace(bench, calibrate=plan.spec.calibrate)
