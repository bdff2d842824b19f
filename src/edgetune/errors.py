"""A typed error family, so the CLI can print a user's mistake without a traceback.

Every message names where the problem is (file, key), the bad value, and what would be
accepted: the user should be able to fix the input from the message alone.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class EdgetuneError(Exception):
    """Base of every error caused by user input or environment, shown without traceback."""


class ConfigError(EdgetuneError):
    """A recipe, sweep or experiment file (or flag) holds a value edgetune cannot accept."""

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None) -> None:
        where = ", ".join(p for p in (source and f"in {source}", key and f"at '{key}'") if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.source = source
        self.key = key


class RunDirError(EdgetuneError):
    """The run directory cannot hold a trial's files: the run stops rather than losing them."""


class DatasetNotFoundError(EdgetuneError):
    """The dataset files are missing; the message lists where we looked and how to get them."""


class MissingExtraError(EdgetuneError):
    """An optional backend is not installed; the message names the pip extra."""

    def __init__(self, package: str, extra: str | None) -> None:
        # None: a package of the core install is missing (a broken environment), so the fix is
        # reinstalling edgetune itself, not an extra.
        target = f"'edgetune[{extra}]'" if extra else "--force-reinstall edgetune"
        super().__init__(f"this feature needs the '{package}' package: pip install {target}")
        self.package, self.extra = package, extra


def closest(name: str, candidates: Iterable[str], n: int = 5) -> list[str]:
    """Closest spellings of `name`, for 'did you mean' lists in error messages."""
    pool = list(candidates)
    found = difflib.get_close_matches(name, pool, n=n, cutoff=0.5)
    return found or pool[:n]


def redact_url(url: str) -> str:
    """The URL with its password replaced: messages get pasted and run directories shared."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
