"""A reference's names: the `enqueue` entry it comes from, and the short label tables, the
headline and the figures show (a file's stem, or the name a Python object was handed over
with, and the precision it was measured at: `resnet20-fmnist int8`)."""

from __future__ import annotations

import re
from pathlib import Path

_AT_PRECISION = re.compile(r"@(fp32|fp16|bf16|int8)$")


def reference_source(name: str) -> str:
    """The `enqueue` entry a reference's name comes from (`x.pt@int8` is x.pt measured at int8)."""
    return _AT_PRECISION.sub("", name)


def reference_label(name: str) -> str:
    """A reference's short name for tables: its file's stem, and the precision it was measured at."""
    found = _AT_PRECISION.search(name)
    source = reference_source(name)
    # A network handed over from Python: its given name, or the last part of its qualified one.
    short = source.removeprefix("python:").rsplit(".", 1)[-1] if source.startswith("python:") else Path(source).stem
    return short + (f" {found.group(1)}" if found else "")
