"""A user's own code, named in an experiment file: `package.module:function` or
`path/to/file.py:function` (relative to the experiment file's folder).

Only what the user names is imported, when it is needed, and nothing a checkpoint or a run
directory names on its own: a file handed around cannot make edgetune run code. Every failure
says which key named the entry point, which file it looked in and what it expected.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgetune.errors import ConfigError


def check_reference(ref: str) -> str:
    """The form `module:attr` or `file.py:attr`, checked without importing anything."""
    module, sep, attr = ref.rpartition(":")
    if not sep or not module or not attr.isidentifier():
        raise ValueError(f"{ref!r} is not an entry point; write 'package.module:function' or 'path/to/file.py:function'")
    return ref


def resolve_reference(ref: str, base: Path) -> str:
    """A file entry point made absolute against `base` (the experiment file's folder), so the
    resolved experiment names the same file from any working directory."""
    module, _, attr = ref.rpartition(":")
    if module.endswith(".py") and not Path(module).is_absolute():
        return f"{(base / module).resolve()}:{attr}"
    return ref


def load_entry_point(ref: str, key: str) -> Callable[..., Any]:
    """The callable `ref` names; `key` (e.g. `model.factory`) is the setting that named it."""
    module_name, _, attr = ref.rpartition(":")
    if module_name.endswith(".py"):
        module = _from_file(Path(module_name), ref, key)
        where = module_name
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(f"entry point {ref!r}: cannot import module '{module_name}' ({exc}); give an importable "
                              "module or a file path ending in .py", key=key) from None
        where = getattr(module, "__file__", None) or module_name
    target = getattr(module, attr, None)
    if target is None:
        public = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise ConfigError(f"entry point {ref!r}: {where} defines no '{attr}' (callables there: "
                          f"{', '.join(public) or 'none'})", key=key)
    if not callable(target):
        raise ConfigError(f"entry point {ref!r}: '{attr}' in {where} is a {type(target).__name__}, not a function or "
                          "class", key=key)
    return target


def _from_file(path: Path, ref: str, key: str) -> Any:
    if not path.is_file():
        raise ConfigError(f"entry point {ref!r}: file {path} does not exist", key=key)
    # One module per file, under a name of its own, so two experiments' `model.py` never collide.
    name = f"edgetune_user_{path.stem}_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:10]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"entry point {ref!r}: {path} cannot be imported as Python", key=key)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ConfigError(f"entry point {ref!r}: importing {path} failed: {type(exc).__name__}: {exc}",
                          key=key) from exc
    return module


class Named:
    """A callable handed over from Python under a name of the user's choosing: the name a study's
    fingerprint records for it (objects are not pickled into the study, so resuming with a
    different object under the same name is the user's call) and, when it returns one number,
    the metric's name. `edgetune.named(my_f1, "macro_f1")`."""

    def __init__(self, target: Callable[..., Any], name: str) -> None:
        if not callable(target):
            raise ConfigError(f"named(): {type(target).__name__} is not callable", key="named")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", name or ""):
            raise ConfigError(f"named(): {name!r} is not a name; use letters, digits, '_', '.' or '-'", key="named")
        self.target, self.name = target, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.target(*args, **kwargs)

    def __repr__(self) -> str:
        return f"named({self.name!r})"


def function_name(fn: Callable[..., Any]) -> str:
    """How errors and fingerprints name a callable: its given name, module:qualified name, a
    partial's function and arguments, or an object's class."""
    if isinstance(fn, Named):
        return fn.name
    if isinstance(fn, functools.partial):
        given = [*map(repr, fn.args), *(f"{k}={v!r}" for k, v in sorted(fn.keywords.items()))]
        return f"partial({function_name(fn.func)}{''.join(', ' + g for g in given)})"
    if hasattr(fn, "__qualname__"):
        module = getattr(fn, "__module__", None)
        return f"{module}:{fn.__qualname__}" if module and not module.startswith("edgetune_user_") else fn.__qualname__
    return f"{type(fn).__module__}:{type(fn).__qualname__}"


def metric_name(fn: Callable[..., Any]) -> str:
    """The name a one-number `evaluate` result is recorded under: the given name, the function's
    name, or the class's name in snake_case (torchmetrics' MulticlassF1Score: multiclass_f1_score)."""
    if isinstance(fn, Named):
        return fn.name
    if isinstance(fn, functools.partial):
        return metric_name(fn.func)
    if hasattr(fn, "__name__"):
        return "metric" if fn.__name__ == "<lambda>" else fn.__name__
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", type(fn).__name__).lower().lstrip("_")


def call_user(fn: Callable[[Any, Any], Any], key: str, outputs: Any, targets: Any) -> Any:
    """The user's `fn(outputs, targets)` (an `evaluate` or `loss` function); what it raises comes
    back as a ConfigError naming the setting, the function and the shapes it was given."""
    try:
        return fn(outputs, targets)
    except Exception as exc:
        raise ConfigError(f"{key} function {function_name(fn)} failed on outputs {tuple(outputs.shape)} and targets "
                          f"{tuple(targets.shape)}: {type(exc).__name__}: {exc}", key=key) from exc


def user_metrics(metric: Callable[[Any, Any], Any], outputs: Any, targets: Any) -> dict[str, float]:
    """The user's `evaluate` function on the whole split's outputs (PyTorch's, or the deployed
    artefact's, as tensors), held to its contract: a dict of names to numbers."""
    name = function_name(metric)
    got = call_user(metric, "evaluate", outputs, targets)
    if _one_number(got):  # a metric object's or a plain function's single figure
        got = {metric_name(metric): got.item() if hasattr(got, "item") else got}
    if not isinstance(got, dict) or not got:
        raise ConfigError(f"evaluate function {name} returned a {type(got).__name__}; it must return one number or a "
                          "non-empty dict of metric names to numbers, e.g. {'miou': 0.71}", key="evaluate")
    out = {}
    for key, value in got.items():
        try:
            out[str(key)] = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"evaluate function {name} returned {key!r}: {value!r}, not a number",
                              key="evaluate") from None
        if not math.isfinite(out[str(key)]):  # a NaN passes every comparison a constraint makes as False
            raise ConfigError(f"evaluate function {name} returned {key!r}: {value!r}; every metric must be a finite "
                              "number (a class absent from the images, a division by zero?)", key="evaluate")
    return out


def _one_number(value: Any) -> bool:
    """A Python or NumPy number, or a tensor or array holding one."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    size = getattr(value, "numel", None) or getattr(value, "size", None)
    count = size() if callable(size) else size
    return count == 1 and hasattr(value, "item") and not isinstance(value, dict)
