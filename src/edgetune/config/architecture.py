"""What a bare state dict (`torch.save(net.state_dict(), ...)`) does not record, and every
command or experiment key that loads a checkpoint may be told: a registered model with its
classes and channels, or the user's builder (models.registry.load_checkpoint takes them; given
values must agree with what a checkpoint records)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, PositiveInt, model_validator

from edgetune.config.base import Strict
from edgetune.entrypoints import check_reference, resolve_reference


@dataclass(frozen=True)
class Architecture:
    model: str | None = None
    factory: str | None = None  # package.module:build or file.py:build
    num_classes: int | None = None
    in_channels: int | None = None
    kwargs: dict[str, Any] = field(default_factory=dict, hash=False)  # the factory's arguments


# Nothing told: what the checkpoint records is all there is.
RECORDED = Architecture()


class DescribedCheckpoint(Strict):
    """A checkpoint named in an experiment (a teacher, an enqueued reference) with what it does
    not record: `{checkpoint, model, num_classes, in_channels}` for a registered architecture,
    `{checkpoint, factory, kwargs}` for the user's own network. Classes and channels default to
    the data's, which the network must fit anyway."""

    checkpoint: Path
    model: str | None = None
    factory: Annotated[str, AfterValidator(check_reference)] | None = Field(
        None, description="package.module:function or path/to/file.py:function")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="arguments of factory")
    num_classes: PositiveInt | None = None
    in_channels: PositiveInt | None = None

    @model_validator(mode="after")
    def _one_builder(self) -> DescribedCheckpoint:
        if self.model is not None and self.factory is not None:
            raise ValueError(f"give model (a registered architecture) or factory (your own), not both (got "
                             f"{self.model!r} and {self.factory!r})")
        if self.kwargs and self.factory is None:
            raise ValueError("kwargs are the arguments of factory, which is not given")
        return self

    def architecture(self) -> Architecture:
        return Architecture(self.model, self.factory, self.num_classes, self.in_channels, dict(self.kwargs))


def checkpoint_of(named: Path | DescribedCheckpoint) -> Path:
    """The file a teacher or reference setting names, told or not what it is."""
    return named.checkpoint if isinstance(named, DescribedCheckpoint) else named


def architecture_of(named: Path | DescribedCheckpoint) -> Architecture:
    return named.architecture() if isinstance(named, DescribedCheckpoint) else RECORDED


def rebased_reference(ref: Any, base: Path) -> Any:
    """An `enqueue` entry with its files made absolute against `base`: a schedule or checkpoint
    path, or the checkpoint and factory of a `{checkpoint, ...}` mapping; `baseline` as it is."""
    if isinstance(ref, str) and ref != "baseline":
        return str(ref if Path(ref).is_absolute() else (base / ref).resolve())
    if isinstance(ref, dict):
        out = dict(ref)
        if isinstance(out.get("checkpoint"), str | Path) and not Path(out["checkpoint"]).is_absolute():
            out["checkpoint"] = str((base / out["checkpoint"]).resolve())
        if isinstance(out.get("factory"), str) and ":" in out["factory"]:
            out["factory"] = resolve_reference(out["factory"], base)
        return out
    return ref
