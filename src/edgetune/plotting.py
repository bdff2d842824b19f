"""matplotlib without a display, for every PNG edgetune draws (reports, sensitivity, width
staircases): one place that knows the backend and the missing-extra message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgetune.errors import MissingExtraError


def pyplot() -> Any:
    """matplotlib's pyplot without a display, or the error naming the extra to install."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingExtraError("matplotlib", "report") from None
    return plt


def save(figure: Any, path: Path) -> Path:
    """Lay out, write and free one figure."""
    figure.tight_layout()
    figure.savefig(path)
    pyplot().close(figure)
    return path
