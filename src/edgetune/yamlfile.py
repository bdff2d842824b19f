"""Reading the user's YAML files with errors that name the file (shared by every file format)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from edgetune.errors import ConfigError


def read_yaml(path: str | Path, what: str) -> Any:
    """The parsed document (None for an empty file); unreadable or malformed files raise ConfigError."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror}", source=str(path)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", source=str(path)) from None
