"""Where a sweep parameter lands: a field of the schedule, or a fine-tuning setting.

The seed's pipeline mapped W&B arguments onto a base schedule by hand for each study; these
rules cover the names its sweep files use, so those files run unchanged:

- `epochs`, `learning_rate` (and `finetune.<field>`) set fine-tuning;
- a pruner's name sets its `desired_sparsity` (`filter_pruner_layer_3.1`, dots included), or a
  gradual pruner's `final_sparsity`;
- `<pruner>_width` sets the channels its layers keep instead (`{widths: measured}` searches the
  device's measured staircase);
- `<instance>_<field>` sets that field of a pruner or LR scheduler
  (`layer_1_conv_pruner_group_type`, `exp_finetuning_lr_gamma`);
- a dotted path sets any field (`pruners.filter_pruner_70.desired_sparsity`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from edgetune.config.recipe import LRSchedulerSpec, Schedule, parse_schedule
from edgetune.config.sweep import ParameterSpec, SweepSpec
from edgetune.errors import ConfigError
from edgetune.search.space.parameters import applied, distribution

FINETUNE_ALIASES = {"epochs": "epochs", "learning_rate": "learning_rate", "lr": "learning_rate",
                    "distill_alpha": "distill.alpha", "distill_temperature": "distill.temperature"}
# Settings outside the schedule a sweep may search: precision trades against pruning.
SETTING_ALIASES = {"precision": ("benchmark", "precision")}
PRUNER_FIELDS = ("desired_sparsity", "final_sparsity", "initial_sparsity", "width", "blocks", "group_type", "class",
                 "weights")
# A pruner says how much to remove or how much to keep, not both: a sweep's value of one
# replaces the recipe's other.
EITHER_OR = {"width": ("desired_sparsity",), "blocks": ("desired_sparsity",),
             "desired_sparsity": ("width", "blocks")}
SECTIONS = ("pruners", "lr_schedulers", "extensions")


@dataclass(frozen=True)
class Target:
    """A resolved parameter: `section` is 'finetune' or a schedule section; `field` inside it."""

    section: str
    instance: str | None
    field: str


def _scheduler_fields(spec: LRSchedulerSpec) -> list[str]:
    return spec.accepted()


def _fields(schedule: Schedule, section: str, instance: str) -> list[str]:
    if section == "pruners":
        return list(PRUNER_FIELDS)
    if section == "lr_schedulers":
        return _scheduler_fields(schedule.lr_schedulers[instance])
    return ["class", "thinning_func_str", "arch", "dataset"]


def _instances(schedule: Schedule, section: str) -> list[str]:
    table: dict[str, Any] = getattr(schedule, section)
    # Longest first, so `filter_pruner_layer_3.1` wins over a pruner named `filter_pruner_layer_3`.
    return sorted(table, key=len, reverse=True)


def resolve(name: str, schedule: Schedule, settings: dict[str, list[str]], source: str = "<sweep>") -> Target:
    """`settings`: section -> fields outside the schedule (finetune, benchmark) a sweep may set."""
    if name in FINETUNE_ALIASES:
        return Target("finetune", None, FINETUNE_ALIASES[name])
    if name in SETTING_ALIASES:
        return Target(SETTING_ALIASES[name][0], None, SETTING_ALIASES[name][1])
    if name in schedule.pruners:  # a gradual pruner's sparsity is where its ramp ends
        return Target("pruners", name, "final_sparsity" if schedule.pruners[name].gradual else "desired_sparsity")
    head, _, rest = name.partition(".")
    if head in settings and rest.split(".")[0] in settings[head]:  # `finetune.distill.alpha` nests
        return Target(head, None, rest)
    if head in SECTIONS and rest:
        for inst in _instances(schedule, head):
            if rest.startswith(inst + "."):
                field = rest[len(inst) + 1:]
                if field in _fields(schedule, head, inst):
                    return Target(head, inst, field)
                raise ConfigError(
                    f"'{field}' is not a field of {head}.{inst}; fields: {', '.join(_fields(schedule, head, inst))}",
                    source=source, key=f"parameters.{name}",
                )
    for section in ("pruners", "lr_schedulers"):
        for inst in _instances(schedule, section):
            if name.startswith(inst + "_"):
                field = name[len(inst) + 1:]
                if field in _fields(schedule, section, inst):
                    return Target(section, inst, field)
    accepted = [*schedule.pruners, *(f"{p}_{f}" for p in schedule.pruners for f in PRUNER_FIELDS[1:4]),
                "epochs", "learning_rate", "precision", "pruners.<name>.<field>", "lr_schedulers.<name>.<field>",
                "finetune.<field>", "benchmark.<field>", "calibrate.<field>"]
    raise ConfigError(
        f"sweep parameter '{name}' matches nothing in the schedule or fine-tuning settings; "
        f"accepted names include: {', '.join(accepted)}",
        source=source, key=f"parameters.{name}",
    )


def apply(
    raw_schedule: dict[str, Any], targets: dict[str, Target], values: dict[str, Any], source: str = "<sweep>"
) -> tuple[Schedule, dict[str, dict[str, Any]]]:
    """The schedule with the sweep's values written in, validated again, and the overrides of
    settings outside it by section (`{"finetune": {...}, "benchmark": {...}}`)."""
    raw = copy.deepcopy(raw_schedule)
    settings: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        target = targets[name]
        if target.instance is None:
            node = settings.setdefault(target.section, {})
            *parents, leaf = target.field.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        else:
            entry = raw[target.section][target.instance]
            entry[target.field] = value
            if target.section == "pruners":
                for other in EITHER_OR.get(target.field, ()):
                    entry.pop(other, None)
    try:
        schedule = parse_schedule(raw, source=f"{source} applied to the schedule")
    except ConfigError as exc:
        raise ConfigError(f"the sweep's values {values} make an invalid schedule: {exc}") from None
    return schedule, settings


def resolve_all(
    sweep_params: dict[str, Any], schedule: Schedule, settings: dict[str, list[str]], source: str = "<sweep>"
) -> dict[str, Target]:
    return {name: resolve(name, schedule, settings, source) for name in sweep_params}


def extremes(spec: ParameterSpec) -> list[Any]:
    """The least and the most a parameter can give a candidate (a normal prior: its values at the
    searched quantiles' ends), after W&B's transforms: log bounds, rounding."""
    d = distribution(spec)
    return [applied(spec, d.low), applied(spec, d.high)]  # type: ignore[attr-defined]


def candidate_values(spec: ParameterSpec) -> list[Any]:
    """What a parameter can give a trial, as far as a check before the search can tell: its
    values, its constant, or the two ends of its range."""
    return list(spec.values) if spec.values is not None else (
        [spec.value] if spec.distribution == "constant" else extremes(spec))


def check_ranges(
    raw_schedule: dict[str, Any], targets: dict[str, Target], sweep: SweepSpec, source: str = "<sweep>"
) -> None:
    """Try each parameter's extremes on the schedule before any trial runs, so that a range the
    schedule cannot take (a sparsity of 1.0, a group type of 'Rows') fails now, naming the key."""
    for name, spec in sweep.parameters.items():
        if targets[name].instance is None or spec.widths == "measured":  # checked once measured
            continue
        for value in candidate_values(spec):
            try:
                apply(raw_schedule, targets, {name: value}, source)
            except ConfigError:
                raise ConfigError(
                    f"value {value!r} is not accepted by {targets[name].section}."
                    f"{targets[name].instance}.{targets[name].field} in the schedule",
                    source=source, key=f"parameters.{name}",
                ) from None
