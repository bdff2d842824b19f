"""The recipe tried on the network at the sweep's bounds before any trial is spent.

A weight name the network does not have, a block that cannot be removed or a group the method
cannot cut would otherwise fail inside every trial, and a study would end with nothing feasible
and no error. Compressing two copies of the unpruned network, one at the least pruning the
sweep allows and one at the most, finds those now, with the pruner's key; `edgetune run
--dry-run` prints what each bound removes and stops there.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch_pruning as tp

from edgetune.compress.base import CompressionRecord
from edgetune.compress.recipe import apply_pruners
from edgetune.compress.regularize import parameters_of
from edgetune.config.sweep import ParameterSpec
from edgetune.errors import ConfigError
from edgetune.metrics.table import BEFORE_FT, METRICS
from edgetune.search.space.mapping import Target, apply, extremes
from edgetune.search.space.parameters import fixed_values, searched
from edgetune.study.planning.plan import Plan
from edgetune.study.trial.workbench import Workbench
from edgetune.training.loop import evaluate

LESS = ("width", "blocks")  # fields where a smaller value prunes more


@dataclass(frozen=True)
class Bound:
    """The recipe at one end of the sweep: the values, what each pruner removed, what is left."""

    label: str
    params: dict[str, Any]
    records: list[CompressionRecord]
    macs: float
    parameters: float


def bound_values(plan: Plan) -> dict[str, dict[str, Any]]:
    """The pruning parameters at the least and the most pruning the sweep allows (the others,
    fine-tuning and precision, at their first value: they do not change the shapes)."""
    fixed = {k: v for k, v in fixed_values(plan.sweep).items() if plan.targets[k].section == "pruners"}
    least, most = dict(fixed), dict(fixed)
    for name, spec in searched(plan.sweep).items():
        target = plan.targets[name]
        if target.section != "pruners" or spec.widths == "measured":  # measured widths: known once profiled
            continue
        low, high = _ends(spec, target)
        least[name], most[name] = low, high
    return {"least pruning": least, "most pruning": most}


def _ends(spec: ParameterSpec, target: Target) -> tuple[Any, Any]:
    values = spec.values if spec.values is not None else extremes(spec)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return values[0], values[-1]
    low, high = min(values), max(values)
    return (high, low) if target.field in LESS else (low, high)


def check_bounds(plan: Plan, bench: Workbench, labels: tuple[str, ...] = ("most pruning",)) -> list[Bound]:
    """Compress a copy of the unpruned network at each bound; a recipe the network cannot take
    raises the method's error (a ConfigError naming the pruner's key) before any trial."""
    out = []
    example = bench.example()
    for label, params in bound_values(plan).items():
        if label not in labels:
            continue
        schedule, _ = apply(plan.raw_schedule, plan.targets, params, plan.sweep_source)
        # Widths rounded to the device's measured staircase are known once it is profiled, after
        # this check: the shapes are checked unrounded (a rounding only keeps fewer or more of
        # the same layer's filters).
        schedule = schedule.model_copy(update={"pruners": {
            n: p.model_copy(update={"round_to": None}) if p.round_to == "measured" else p
            for n, p in schedule.pruners.items()}})
        model = copy.deepcopy(bench.start).eval()
        parameters_of(bench.start, schedule)  # a regulariser's weight the network lacks fails here too
        records = apply_pruners(model, schedule, example, None, bench.batches)
        macs, count = tp.utils.count_ops_and_params(model, example_inputs=example)
        out.append(Bound(label, params, records, float(macs), float(count)))
    return out


def check_metric_names(plan: Plan, bench: Workbench) -> None:
    """The user's `evaluate`, called once on a few validation images, must give every metric the
    sweep names that edgetune does not: found wanting before anything is written."""
    if bench.metric is not None:
        user_metric_names(plan, evaluate(bench.start, bench.data, bench.val.subset(64), metric=bench.metric).as_dict())


def user_metric_names(plan: Plan, figures: dict[str, Any]) -> list[str] | None:
    """What the user's `evaluate` returned among `figures` (None without one), once every metric
    the sweep names is found there or among edgetune's own."""
    if (function := plan.user_code("evaluate")) is None:
        return None
    theirs = sorted(k for k in figures if k not in METRICS and not k.endswith(BEFORE_FT)
                    and not k.startswith(("throughput_b", "top1_epoch")))
    named = [o.metric for o in plan.objectives] + [c.metric for c in plan.constraints]
    missing = [m for m in named if m not in figures and m not in METRICS]
    if missing:
        raise ConfigError(f"the sweep names metric {missing[0]!r}, which neither edgetune nor the evaluate function "
                          f"{function.removeprefix('python:')!r} gives; it returned {', '.join(theirs) or 'nothing'}",
                          key="sweep.metric")
    return theirs
