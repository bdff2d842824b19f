"""A candidate's fine-tuning, as Distiller's loop ran it: pruners at the start of their epoch,
gradual pruners masking along their ramp, the recipe's LR schedulers per epoch, or a cosine over
every step; the norm statistics re-estimated for the weights it ends with."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch import nn

from edgetune.compress.base import CompressionRecord
from edgetune.compress.gradual import GradualMasks
from edgetune.compress.recipe import apply_pruners
from edgetune.compress.regularize import regularization, with_penalty
from edgetune.config.experiment import FinetuneSpec
from edgetune.config.recipe import Schedule
from edgetune.executors.base import Stage
from edgetune.study.trial.making import Making
from edgetune.study.trial.reject import StopRule
from edgetune.study.trial.workbench import TrialSetup, Workbench
from edgetune.training.baseline import cosine_schedule
from edgetune.training.loop import EvalResult, Training, teaching_for, train_epoch


def _optimizer(model: nn.Module, ft: FinetuneSpec, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=ft.momentum, weight_decay=ft.weight_decay,
                           nesterov=ft.momentum > 0)



def finetune(model: nn.Module, it: Making, schedule: Schedule, plan: dict[int, list[str]],
             after_epoch: Callable[[int, EvalResult], None] | None = None,
             stop_when: StopRule | None = None) -> tuple[float, float, EvalResult | None]:
    """Distiller's loop: pruners act at the start of their epoch, gradual pruners mask along their
    ramp (after every step) and thin when the loop ends, LR schedulers step at the end of each
    epoch their policy covers. Returns the wall time, the final learning rate, and the last
    epoch's validation result when epochs were evaluated (not when thinning followed it). The
    structures its pruners remove are added to `it.thinning`."""
    bench, setup, ft, stage, thinning = it.bench, it.setup, it.ft, it.stage, it.thinning
    if ft.epochs == 0:
        return 0.0, ft.learning_rate, None
    t0, gen = time.perf_counter(), torch.Generator().manual_seed(bench.seed)
    model.to(bench.device)
    optimizer = _optimizer(model, ft, ft.learning_rate)
    schedulers = {n: s.build(optimizer) for n, s in schedule.lr_schedulers.items()}
    cosine = (cosine_schedule(optimizer, ft.epochs * math.ceil(len(bench.train) / ft.batch_size))
              if bench.cosine_steps(ft, schedule.schedules_learning_rate()) else None)
    last: EvalResult | None = None
    masks = GradualMasks(schedule)
    # The unpruned network (or the user's teacher) teaches the pruned copy; asked once per image
    # when the images are not augmented.
    teacher = bench.teacher(ft.distill) if ft.distill is not None else None
    if teacher is not None and not ft.augment and bench.train.labels.ndim == 1:
        stage("the teacher's logits, once per image")
    precision = bench.training_precision(ft)
    teacher, _ = teaching_for(teacher, bench.data, bench.train, torch.device(bench.device), once=not ft.augment,
                              precision=precision)
    for epoch in range(ft.epochs):
        if epoch > 0 and plan.get(epoch):
            thinning += _prune_during(model, bench, setup, schedule, plan[epoch], epoch, stage)
            # Thinning replaced the parameters: a fresh optimizer at the current learning rate.
            lr = optimizer.param_groups[0]["lr"]
            optimizer = _optimizer(model, ft, lr)
            for sched in [*schedulers.values(), *([cosine] if cosine else [])]:
                sched.optimizer = optimizer
        if masks and (moved := masks.at_epoch(model, epoch)):
            stage("gradual pruning: " + ", ".join(f"{n} at {s:.0%}" for n, s in moved.items()))
        stage(f"fine-tuning epoch {epoch + 1}/{ft.epochs}")
        loss = with_penalty(bench.loss, regularization(model, schedule, epoch))  # Distiller's regularisers
        training = Training(batch_size=ft.batch_size, augmented=ft.augment, precision=precision, device=bench.device,
                            split=bench.train, teacher=teacher, loss=loss)
        train_epoch(model, bench.data, optimizer, training, generator=gen, step_hook=_each_step(masks, cosine))
        for policy in schedule.policies:
            if policy.lr_scheduler is not None and policy.active(epoch):
                schedulers[policy.lr_scheduler.instance_name].step()
        if epoch == ft.epochs - 1 and bench.settles(model):  # the statistics of the weights it ends with
            stage("re-estimating norm statistics after fine-tuning")
            bench.settle(model)
        if after_epoch is not None:
            stage(f"evaluating epoch {epoch + 1}/{ft.epochs}")
            last = bench.evaluate(model, stop_when if epoch == ft.epochs - 1 else None)
            after_epoch(epoch, last)
    model.cpu()
    if teacher is not None:
        teacher.model.cpu()
    if masks:  # what the ramps masked is removed for real; the thinned network is scored afresh
        stage("thinning the gradual pruners")
        thinning += apply_pruners(model, schedule, bench.example(), masks.names, bench.batches, setup.staircases)
        last = None
    return time.perf_counter() - t0, float(optimizer.param_groups[0]["lr"]), last


def _each_step(masks: GradualMasks, cosine: torch.optim.lr_scheduler.LRScheduler | None
               ) -> Callable[[], None] | None:
    """After every optimiser step: the gradual pruners' masks re-applied, the cosine advanced."""
    hooks = [h for h in ((masks.apply if masks else None), (cosine.step if cosine else None)) if h is not None]
    if not hooks:
        return None

    def each() -> None:
        for hook in hooks:
            hook()

    return each


def _prune_during(model: nn.Module, bench: Workbench, setup: TrialSetup, schedule: Schedule, names: list[str],
                  epoch: int, stage: Stage) -> list[CompressionRecord]:
    """The pruners of a later epoch, acting on the network being fine-tuned; its norm statistics
    re-estimated for the new shape before training goes on."""
    stage(f"pruning at epoch {epoch}")
    model.cpu()
    records = apply_pruners(model, schedule, bench.example(), names, bench.batches, setup.staircases)
    if bench.recovers(model):
        stage(f"recovering after pruning at epoch {epoch}")
        bench.recover(model)
    model.to(bench.device)
    return records
