"""Files written so a kill at any moment leaves either the old version or the new one, never
half of either; and the users' YAML read with errors that name the file."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import yaml

from edgetune.errors import ConfigError, EdgetuneError


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write beside `path`, then rename over it. The temporary name carries the pid, so two
    processes writing one file (producers sharing a directory) never share a temporary file."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise UnwritableError(f"cannot write {path}: {exc.strerror or exc}"
                              + ("; a folder is in its place: move it away" if path.is_dir() else "")) from None
    return path


class UnwritableError(EdgetuneError, OSError):
    """A file edgetune must write cannot be: named with the reason (still an OSError for callers
    that handle those)."""


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, data: Any, indent: int | None = None) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=indent, default=float))


MAX_YAML_BYTES = 10 * 2**20  # an experiment, schedule or sweep is kilobytes; this is a wrong file
MAX_YAML_NODES = 1_000_000  # values once aliases are expanded: a few anchors can stand for 10^8 of them


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses a key given twice (it kept the last, silently) and a
    document whose aliases expand past MAX_YAML_NODES values (a 552-byte file of nested anchors
    filled 4 GB before anything else could run)."""

    def construct_document(self, node: yaml.Node) -> Any:
        if _expanded_size(node, {}) > MAX_YAML_NODES:
            raise yaml.constructor.ConstructorError(
                None, None, f"its aliases expand to more than {MAX_YAML_NODES:,} values; write the values out")
        return super().construct_document(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"'{key}' first given on line {seen[key].start_mark.line + 1}, given again on "
                    f"line {key_node.start_mark.line + 1}; keep one")
            if isinstance(key, str | int | float | bool):
                seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many values the node stands for once every alias is written out (shared nodes are
    counted each time they are used, computed once each)."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a node reached again while it is being counted (a recursive alias)
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(v, memo) for v in node.value)
    else:
        size = 1
    memo[id(node)] = size
    return size


def read_yaml(path: str | Path, what: str) -> Any:
    """The parsed document (None for an empty file); unreadable, binary, oversized or malformed
    files, a key given twice and aliases that expand without bound raise ConfigError."""
    try:
        size = Path(path).stat().st_size
        if size > MAX_YAML_BYTES:
            raise ConfigError(f"{what} is {size:,} bytes; a YAML {what} is kilobytes: is this the right file?",
                              source=str(path))
        return yaml.load(Path(path).read_text(), Loader=_Loader)
    except UnicodeDecodeError:
        raise ConfigError(f"not a text file: a YAML {what} was expected", source=str(path)) from None
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
