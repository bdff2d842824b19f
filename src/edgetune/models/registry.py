"""Register architectures by name; load and save checkpoints weights-only.

A checkpoint carries the architecture's name and build arguments beside its weights, so a
file alone is enough to rebuild the network, and loading never unpickles code
(`torch.load(weights_only=True)`).
"""

from __future__ import annotations

import fnmatch
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgetune.catalog import ARCHITECTURES, load
from edgetune.compress.structure import rebuild_structure
from edgetune.config.architecture import Architecture
from edgetune.errors import ConfigError, EdgetuneError, closest
from edgetune.files import atomic_write_bytes
from edgetune.models.factory import ModelFactory
from edgetune.models.zoo import MODELS, register_model  # noqa: F401 - re-exported


def known_models() -> list[str]:
    """Every buildable name: the built-in architectures and those registered at run time."""
    return sorted({*ARCHITECTURES, *MODELS})


def list_models(pattern: str = "*") -> list[str]:
    return [n for n in known_models() if fnmatch.fnmatch(n, pattern)]


def builder(name: str) -> Callable[..., nn.Module]:
    """The function that builds `name` (a registered one before a built-in of the same name)."""
    if name in MODELS:
        return MODELS[name]
    if name not in ARCHITECTURES:
        raise ConfigError(
            f"unknown model '{name}'; did you mean {', '.join(closest(name, known_models()))}? "
            f"(all: {', '.join(known_models())})",
            key="model.name",
        )
    return load(ARCHITECTURES, name, "model", "model.name")  # type: ignore[return-value]


def build_model(name: str, *, num_classes: int, in_channels: int) -> nn.Module:
    return builder(name)(num_classes=num_classes, in_channels=in_channels)


def _from_factory(path: Path, state: dict[str, torch.Tensor], meta: dict[str, Any], factory: ModelFactory | None
                  ) -> tuple[nn.Module, dict[str, Any]]:
    if factory is None:
        raise EdgetuneError(f"{path} holds a network built by {meta['factory']!r}, the user's own code, which edgetune "
                            "does not import on a checkpoint's word: give that factory (model.factory in an "
                            "experiment, --model-factory on the command line, factory= from Python)")
    meta = {**meta, **factory.describe()}
    return _with_weights(factory.build(), state, meta, path, f"the network model.factory {factory.ref!r} builds")


def _with_weights(model: nn.Module, state: dict[str, torch.Tensor], meta: dict[str, Any], path: Path,
                  what: str) -> tuple[nn.Module, dict[str, Any]]:
    """The network with its compressed structure rebuilt and the checkpoint's weights in it."""
    if meta.get("structure"):
        rebuild_structure(model, meta["structure"])
    try:
        model.load_state_dict(strip_module_prefix(state))
    except RuntimeError as exc:
        raise EdgetuneError(f"{path} does not fit {what}: {exc}") from exc
    return model, meta


def strip_module_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Distiller's checkpoints come from DataParallel: accept names with or without `module.`."""
    return {k.removeprefix("module."): v for k, v in state.items()}


def save_checkpoint(path: str | Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """Write weights and metadata atomically (a kill mid-write never leaves a torn file)."""
    buf = io.BytesIO()
    torch.save({"meta": meta, "state_dict": model.state_dict()}, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_checkpoint(
    path: str | Path, *, model_name: str | None = None, num_classes: int | None = None,
    in_channels: int | None = None, factory: ModelFactory | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model a checkpoint describes and load its weights.

    Arguments override what the checkpoint's metadata says (a bare Distiller or torchvision
    state dict has none); a mismatch between the two is an error, not a silent reshape. A
    network of the user's own code is built by `factory`, which the caller names: a checkpoint
    that records one is never enough to import it.
    """
    path = Path(path)
    if not path.is_file():
        raise EdgetuneError(f"checkpoint {path} does not exist")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises several types for a non-checkpoint file
        # Not torch's own advice: re-running with weights_only=False would unpickle arbitrary code.
        raise EdgetuneError(f"cannot read checkpoint {path}: not a PyTorch checkpoint of weights "
                            f"({type(exc).__name__}); give the .pt file `edgetune train` or "
                            "torch.save(model.state_dict(), ...) wrote") from None
    meta: dict[str, Any] = dict(blob.get("meta", {})) if isinstance(blob, dict) else {}
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise EdgetuneError(f"{path} holds no state dict")
    if factory is not None or meta.get("factory"):
        return _from_factory(path, state, meta, factory)
    if model_name is not None and model_name not in known_models():
        raise ConfigError(f"unknown model {model_name!r}; registered: {', '.join(known_models())} (or your own "
                              "network with model.factory)", key="model.name")
    for key, given in (("model", model_name), ("num_classes", num_classes), ("in_channels", in_channels)):
        if given is not None and meta.get(key) not in (None, given):
            raise EdgetuneError(f"{path} was saved for {key}={meta[key]!r}, not {given!r}")
        if given is not None:
            meta[key] = given
    missing = [k for k in ("model", "num_classes", "in_channels") if k not in meta]
    if missing:
        raise EdgetuneError(f"{path} does not record {', '.join(missing)}: give them (on the command line --model "
                            "NAME --num-classes N --in-channels C; beside checkpoint: in an experiment model:, "
                            "num_classes:, in_channels:; a network of your own code: --model-factory file.py:build "
                            "or factory:)")
    model = build_model(meta["model"], num_classes=meta["num_classes"], in_channels=meta["in_channels"])
    return _with_weights(model, state, meta, path, f"model '{meta['model']}'")


def load_described(path: str | Path, described: Architecture, *, num_classes: int | None = None,
                   in_channels: int | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """`load_checkpoint` told what the checkpoint is by `described` (a command's --model,
    --model-factory, --num-classes, --in-channels); `num_classes` / `in_channels`: the data's,
    where it does not say."""
    from edgetune.models.factory import ModelFactory

    return load_checkpoint(path, model_name=described.model, num_classes=described.num_classes or num_classes,
                           in_channels=described.in_channels or in_channels,
                           factory=ModelFactory(described.factory, described.kwargs) if described.factory else None)
