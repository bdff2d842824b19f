"""Files written so a kill at any moment leaves either the old version or the new one, never
half of either; and the users' YAML read with errors that name the file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from edgetune.errors import ConfigError


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write beside `path`, then rename over it. The temporary name carries the pid, so two
    processes writing one file (producers sharing a directory) never share a temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, data: Any, indent: int | None = None) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=indent, default=float))


def read_yaml(path: str | Path, what: str) -> Any:
    """The parsed document (None for an empty file); unreadable or malformed files raise ConfigError."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror}", source=str(path)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", source=str(path)) from None


def cache_root() -> Path:
    """Where measurements that hold beyond one run are kept (width profiles, INT8 formats):
    $EDGETUNE_CACHE, else ~/.cache/edgetune."""
    return Path(os.environ.get("EDGETUNE_CACHE") or Path.home() / ".cache" / "edgetune")


def check_writable(flag: str, path: Path | None) -> None:
    """Before an hour of benchmarking, not after it."""
    if path is None:
        return
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ConfigError(f"{flag} {path}: the folder {folder} does not exist", key=flag)
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"{flag} {path}: not writable here; give a path in a folder you can write to", key=flag)
