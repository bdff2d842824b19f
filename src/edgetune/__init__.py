"""edgetune: search compression settings by latency measured on the target runtime.

`edgetune.tune(...)` is the Python entry point (edgetune.api); importing the package loads
neither PyTorch nor Optuna until it is called.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "named", "tune"]


def named(target: Any, name: str) -> Any:
    """`target` (an `evaluate` or `loss` callable) under `name`: what a study records for it, and
    the metric's name when it returns one number."""
    from edgetune.entrypoints import Named

    return Named(target, name)


def __getattr__(name: str) -> Any:
    if name == "tune":
        from edgetune.api import tune

        return tune
    raise AttributeError(f"module 'edgetune' has no attribute {name!r}")
