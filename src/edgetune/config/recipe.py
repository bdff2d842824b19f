"""The Distiller schedule format as a pydantic schema that rejects unknown keys.

Distiller itself is pinned to PyTorch 1.3; edgetune reads its files and implements the
semantics (`edgetune.compress.recipe`). This module imports no PyTorch: LR scheduler arguments
are checked against torch's signatures only when a schedule names a scheduler.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgetune.catalog import COMPRESSION_METHODS, MethodTraits, method_traits, names_where
from edgetune.config.base import Strict, validate
from edgetune.config.distiller import unsupported
from edgetune.errors import ConfigError, closest
from edgetune.files import read_yaml

# Distiller's class names, with its group type, for the recipes its users already have. Its
# ranked pruners scored the named weight alone; edgetune's own names score the coupled group.
DISTILLER_CLASSES: dict[tuple[str, str], tuple[str, str]] = {
    ("L1RankedStructureParameterPruner", "Filters"): ("filters-l1", "layer"),
    ("L1RankedStructureParameterPruner", "Channels"): ("channels-l1", "layer"),
    ("L2RankedStructureParameterPruner", "Filters"): ("filters-l2", "layer"),
    ("L2RankedStructureParameterPruner", "Channels"): ("channels-l2", "layer"),
    ("GradientRankedFilterPruner", "Filters"): ("filters-taylor", "layer"),
    ("FMReconstructionChannelPruner", "Channels"): ("channels-reconstruct", "layer"),
    # Element-wise magnitude pruning: zeroed weights, flagged (no dense speed-up).
    ("LevelPruner", "Elements"): ("magnitude", "layer"),
    # Gradual pruning (AGP): masks ramped during fine-tuning, then the same method thins
    # (edgetune.compress.gradual); ranked by the named weight alone, so what was masked is removed.
    ("L1RankedStructureParameterPruner_AGP", "Filters"): ("filters-l1", "layer"),
    ("L1RankedStructureParameterPruner_AGP", "Channels"): ("channels-l1", "layer"),
    ("L2RankedStructureParameterPruner_AGP", "Filters"): ("filters-l2", "layer"),
    ("L2RankedStructureParameterPruner_AGP", "Channels"): ("channels-l2", "layer"),
    ("AutomatedGradualPruner", "Elements"): ("magnitude", "layer"),
}
GRADUAL_CLASSES = ("L1RankedStructureParameterPruner_AGP", "L2RankedStructureParameterPruner_AGP",
                   "AutomatedGradualPruner")


def accepted_classes() -> list[str]:
    return sorted({c for c, _ in DISTILLER_CLASSES}) + list(COMPRESSION_METHODS)


def resolve_class(class_: str, group_type: str | None) -> tuple[str, str]:
    """(method name, ranking scope) for a recipe's `class` and `group_type`, or ValueError."""
    if class_ in COMPRESSION_METHODS:
        wants = {"channels": "Channels", "filters": "Filters"}.get(method_traits(class_).family)
        if group_type is not None and wants is not None and group_type != wants:
            raise ValueError(f"class '{class_}' prunes {wants.lower()}, but group_type is '{group_type}'")
        return class_, "group"
    types = [g for c, g in DISTILLER_CLASSES if c == class_]
    if not types:
        raise ValueError(f"unknown pruner class '{class_}'; did you mean {', '.join(closest(class_, accepted_classes()))}? "
                         f"accepted: {', '.join(accepted_classes())}")
    group = group_type or types[0]
    if (class_, group) not in DISTILLER_CLASSES:
        raise ValueError(f"class '{class_}' takes group_type {' or '.join(types)}, not '{group}'")
    return DISTILLER_CLASSES[(class_, group)]




class PrunerSpec(Strict):
    """`class` is one of Distiller's pruner classes or an edgetune method name (see
    `edgetune.compress.METHODS`); `desired_sparsity` is the fraction of filters, channels, rank
    or weights to remove, or `width` the filters or channels each layer keeps (a search space
    in the widths a device runs fast, not in ratios that land between them)."""

    class_: str = Field(alias="class")
    group_type: Literal["Filters", "Channels"] | None = None
    # Distiller's `Leader`: the listed weights lose the same filters. edgetune ranks every
    # coupled group (Torch-Pruning's dependency graph) as one, so coupled weights always do.
    group_dependency: Literal["Leader"] | None = None
    desired_sparsity: float = Field(default=0.0, ge=0.0, lt=1.0)
    # Gradual pruning (the *_AGP classes, AutomatedGradualPruner): the ramp's two ends. The
    # network is thinned to `final_sparsity` (its `desired_sparsity`) when fine-tuning ends.
    initial_sparsity: float | None = Field(default=None, ge=0.0, lt=1.0)
    final_sparsity: float | None = Field(default=None, ge=0.0, lt=1.0)
    width: int | None = Field(default=None, ge=1)
    # Depth pruning (`blocks*` classes): the removable residual blocks each named module keeps,
    # instead of `desired_sparsity` (the fraction of them removed).
    blocks: int | None = Field(default=None, ge=0)
    weights: list[str] = Field(min_length=1)
    n_samples: int | None = Field(default=None, ge=1, le=100_000)
    # Kept widths rounded down to a multiple (8: a SIMD block) or to the device's measured
    # staircase (`measured`; edgetune profile-widths), so no candidate is a width that runs slower
    # than a wider one.
    round_to: int | Literal["measured"] | None = Field(default=None)

    @model_validator(mode="before")
    @classmethod
    def _one_weight(cls, data: Any) -> Any:
        """Distiller reads `weights: module.conv1.weight` (one string) as a list of one."""
        if isinstance(data, dict) and isinstance(data.get("weights"), str):
            data = {**data, "weights": [data["weights"]]}
        return data

    @model_validator(mode="after")
    def _known_method(self) -> PrunerSpec:
        self.method_and_scope()
        if self.gradual:
            if self.final_sparsity is None:
                raise ValueError(f"{self.class_} ramps from `initial_sparsity` to `final_sparsity`: give "
                                 "`final_sparsity`")
            if self.initial_sparsity is not None and self.initial_sparsity > self.final_sparsity:
                raise ValueError(f"initial_sparsity ({self.initial_sparsity}) is above final_sparsity "
                                 f"({self.final_sparsity})")
            self.desired_sparsity = self.final_sparsity
            return self
        if self.initial_sparsity is not None or self.final_sparsity is not None:
            raise ValueError(f"initial_sparsity and final_sparsity belong to gradual pruners "
                             f"({', '.join(GRADUAL_CLASSES)}); '{self.class_}' prunes once: give desired_sparsity")
        if self.n_samples is not None and not self.traits.samples_images:
            raise ValueError(f"n_samples applies to {', '.join(sorted(names_where(COMPRESSION_METHODS, samples_images=True)))}, "
                             f"not '{self.class_}'")
        if "desired_sparsity" not in self.model_fields_set and self.width is None and self.blocks is None:
            raise ValueError("give `desired_sparsity` (the fraction to remove), `width` (the channels to keep) or, "
                             "for depth pruning, `blocks` (the blocks to keep)")
        if self.blocks is not None and self.family != "blocks":
            raise ValueError(f"blocks applies to depth pruning (class {', '.join(names_where(COMPRESSION_METHODS, family='blocks'))}), "
                             f"not '{self.class_}'")
        if self.blocks is not None and "desired_sparsity" in self.model_fields_set and self.desired_sparsity:
            raise ValueError(f"give `desired_sparsity` or `blocks`, not both (got {self.desired_sparsity} and "
                             f"{self.blocks})")
        if self.width is not None and "desired_sparsity" in self.model_fields_set and self.desired_sparsity:
            raise ValueError(f"give `desired_sparsity` or `width`, not both (got {self.desired_sparsity} and "
                             f"{self.width})")
        for key, value in (("round_to", self.round_to), ("width", self.width)):
            if value is not None and not self.traits.takes_width:
                raise ValueError(f"{key} applies to the methods that keep a width per layer "
                                 f"({', '.join(names_where(COMPRESSION_METHODS, takes_width=True))}), not '{self.class_}'")
        if isinstance(self.round_to, int) and self.round_to < 1:
            raise ValueError(f"round_to must be a positive multiple or 'measured', got {self.round_to}")
        return self

    def method_and_scope(self) -> tuple[str, str]:
        return resolve_class(self.class_, self.group_type)

    @property
    def method(self) -> str:
        return self.method_and_scope()[0]

    @property
    def traits(self) -> MethodTraits:
        return method_traits(self.method)

    @property
    def family(self) -> str:
        return self.traits.family

    @property
    def gradual(self) -> bool:
        return self.class_ in GRADUAL_CLASSES


class ExtensionSpec(Strict):
    class_: Literal["FilterRemover", "ChannelRemover", "StructureRemover"] = Field(alias="class")
    thinning_func_str: str | None = None
    arch: str | None = None
    dataset: str | None = None


class LRSchedulerSpec(BaseModel):
    """Keyword arguments beyond `class` go to the torch scheduler of that name, or to Distiller's
    MultiStepMultiGammaLR (`milestones`, `gammas`: the rate is multiplied by gammas[i] at
    milestones[i])."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    class_: Literal["ExponentialLR", "StepLR", "MultiStepLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts",
                    "PolynomialLR", "LinearLR", "ConstantLR", "MultiStepMultiGammaLR"] = Field(alias="class")

    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def accepted(self) -> list[str]:
        """Keyword arguments the scheduler takes, besides the optimizer."""
        if self.class_ == "MultiStepMultiGammaLR":
            return ["milestones", "gammas"]
        import torch

        cls = getattr(torch.optim.lr_scheduler, self.class_)
        params = inspect.signature(cls.__init__).parameters
        return [p for p in params if p not in ("self", "optimizer", "last_epoch", "verbose")]

    def build(self, optimizer: Any) -> Any:
        """The torch scheduler on `optimizer`."""
        import torch

        if self.class_ == "MultiStepMultiGammaLR":
            return torch.optim.lr_scheduler.LambdaLR(optimizer, multi_gamma(**self.kwargs()))
        return getattr(torch.optim.lr_scheduler, self.class_)(optimizer, **self.kwargs())


def multi_gamma(milestones: list[int], gammas: list[float]) -> Any:
    """Distiller's MultiStepMultiGammaLR as a factor of the initial rate at each epoch."""
    if len(milestones) != len(gammas) or list(milestones) != sorted(milestones):
        raise ValueError(f"milestones (increasing) and gammas pair up one to one, got {milestones} and {gammas}")

    def factor(epoch: int) -> float:
        out = 1.0
        for milestone, gamma in zip(milestones, gammas, strict=True):
            if epoch >= milestone:
                out *= gamma
        return out

    return factor


class InstanceRef(Strict):
    instance_name: str


GroupType = Literal["Filters", "3D", "Channels", "Rows", "Cols", "2D", "4D"]


class RegularizerSpec(Strict):
    """Distiller's regularisers, added to the fine-tuning loss while their policy is active:
    L1 and L2 (`reg_regims: {weight: strength}`) and group lasso (`{weight: [strength, group]}`,
    the sum of each group's L2 norm: filters (`Filters`, Distiller's `3D`), `Channels`, a
    matrix's `Rows` or `Cols`, kernels (`2D`) or the whole tensor (`4D`))."""

    class_: Literal["L1Regularizer", "L2Regularizer", "GroupLassoRegularizer"] = Field(alias="class")
    reg_regims: dict[str, float | tuple[float, GroupType]] = Field(min_length=1)
    threshold_criteria: str | None = None

    @model_validator(mode="after")
    def _regims_fit_the_class(self) -> RegularizerSpec:
        if self.threshold_criteria is not None:
            raise ValueError("threshold_criteria (zeroing groups under a threshold) is not run: a structured pruner "
                             "removes the filters group lasso drove towards zero")
        lasso = self.class_ == "GroupLassoRegularizer"
        for weight, regim in self.reg_regims.items():
            if lasso != isinstance(regim, tuple):
                raise ValueError(f"{weight}: {self.class_} takes "
                                 f"{'[strength, group type]' if lasso else 'a strength'}, got {regim!r}")
        return self


class Policy(Strict):
    pruner: InstanceRef | None = None
    regularizer: InstanceRef | None = None
    extension: InstanceRef | None = None
    lr_scheduler: InstanceRef | None = None
    epochs: list[int] | None = None
    starting_epoch: int | None = None
    ending_epoch: int | None = None
    frequency: int = 1

    def active(self, epoch: int) -> bool:
        if self.epochs is not None:
            return epoch in self.epochs
        start = self.starting_epoch or 0
        end = self.ending_epoch if self.ending_epoch is not None else 10**9
        return start <= epoch < end and (epoch - start) % max(self.frequency, 1) == 0


class Schedule(Strict):
    version: int = 1
    pruners: dict[str, PrunerSpec] = Field(default_factory=dict)
    extensions: dict[str, ExtensionSpec] = Field(default_factory=dict)
    lr_schedulers: dict[str, LRSchedulerSpec] = Field(default_factory=dict)
    regularizers: dict[str, RegularizerSpec] = Field(default_factory=dict)
    policies: list[Policy] = Field(default_factory=list)

    def schedules_learning_rate(self) -> bool:
        """Whether a policy steps a learning-rate scheduler (then fine-tuning keeps its rate
        constant between the scheduler's steps, as Distiller did)."""
        return any(p.lr_scheduler is not None for p in self.policies)

    def check_lr_schedulers(self, source: str) -> None:
        """Catch a misspelt or missing scheduler argument at load time, not epochs into a trial."""
        for name, spec in self.lr_schedulers.items():
            accepted = spec.accepted()
            for key in spec.kwargs():
                if key not in accepted:
                    raise ConfigError(
                        f"{spec.class_} takes no argument '{key}'; it accepts: {', '.join(accepted)}",
                        source=source, key=f"lr_schedulers.{name}.{key}",
                    )
            import torch

            try:
                spec.build(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1))
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{spec.class_}: {exc}", source=source, key=f"lr_schedulers.{name}") from None

    def policies_naming(self, kind: Literal["pruner", "regularizer", "lr_scheduler", "extension"],
                        name: str) -> list[Policy]:
        """The policies that name instance `name` of `kind`, in the file's order."""
        return [p for p in self.policies if (ref := getattr(p, kind)) is not None and ref.instance_name == name]

    def acts(self, kind: Literal["pruner", "regularizer"], name: str) -> bool:
        """As Distiller: with policies, only what a policy names acts. A schedule with no policies
        at all (edgetune's shorthand for a one-shot recipe) applies everything it defines."""
        return not self.policies or bool(self.policies_naming(kind, name))

    def applied_pruners(self) -> list[str]:
        return [n for n in self.pruners if self.acts("pruner", n)]

    def notes(self) -> list[str]:
        """What edgetune reads differently from Distiller, said once when a study starts."""
        out = [f"{kind} {n} is in no policy, so it is not applied (as in Distiller)"
               for kind, table in (("pruner", self.pruners), ("regularizer", self.regularizers))
               for n in table if not self.acts(kind, n)]  # type: ignore[arg-type]
        if self.extensions:
            out.append(f"extensions {', '.join(self.extensions)}: edgetune always removes what it prunes (the "
                       "thinning is implied)")
        one_shot = [p for p in self.policies if p.pruner and p.pruner.instance_name in self.pruners
                    and not self.pruners[p.pruner.instance_name].gradual]
        if any(p.epochs and len(p.epochs) > 1 or p.ending_epoch is not None for p in one_shot):
            out.append("a one-shot pruner acting at several epochs prunes once, at the first (Distiller's ranked "
                       "pruners re-select the same filters at each)")
        return out

    def policy_of(self, name: str) -> Policy | None:
        """A pruner's (first) policy, None without one."""
        return next(iter(self.policies_naming("pruner", name)), None)

    def gradual_pruners(self) -> list[str]:
        """The applied pruners that ramp during fine-tuning and thin when it ends."""
        return [n for n in self.applied_pruners() if self.pruners[n].gradual]

    def pruner_epoch(self, name: str) -> int:
        """The epoch a (one-shot) pruner acts at: the first its policy names, 0 without a policy."""
        policy = self.policy_of(name)
        if policy is None:
            return 0
        return min(policy.epochs) if policy.epochs else policy.starting_epoch or 0

    def check_references(self, source: str) -> None:
        for i, policy in enumerate(self.policies):
            for kind, table in (("pruner", self.pruners), ("extension", self.extensions),
                                ("lr_scheduler", self.lr_schedulers), ("regularizer", self.regularizers)):
                ref = getattr(policy, kind)
                if ref is not None and ref.instance_name not in table:
                    raise ConfigError(
                        f"policy names {kind} '{ref.instance_name}', which is not defined; "
                        f"defined: {', '.join(table) or '(none)'}", source=source, key=f"policies[{i}].{kind}",
                    )


def parse_schedule(raw: Any, source: str = "<schedule>") -> Schedule:
    if not isinstance(raw, dict):
        raise ConfigError(f"a schedule must be a mapping, got {type(raw).__name__}", source=source)
    if problems := unsupported(raw):
        raise ConfigError(f"{len(problems)} Distiller feature(s) this schedule uses are not run by edgetune "
                          "(docs/compatibility.md):" + "".join(f"\n  - at '{key}': {why}" for key, why in problems),
                          source=source, key=problems[0][0])
    schedule = validate(Schedule, raw, source, "a schedule")
    schedule.check_references(source)
    schedule.check_lr_schedulers(source)
    return schedule


def load_schedule(path: str | Path) -> Schedule:
    return parse_schedule(read_yaml(path, "schedule"), str(path))
