"""The `edgetune` command: a thin layer over the library; every command calls one function of it.

Heavy imports happen inside commands so `edgetune --help` is instant and a device that only
benchmarks never imports what it does not use.
"""

from __future__ import annotations

import sys

from rich.markup import escape

# Each module registers its commands, in the order --help lists them.
from edgetune.cli import analysis, device, model, search  # noqa: F401
from edgetune.cli.app import app, console
from edgetune.errors import EdgetuneError, MissingExtraError

# What `pip install 'edgetune[search]'` adds to the torch-free core a device worker needs.
SEARCH_EXTRA = {"torch", "optuna", "torch_pruning", "tensorly", "scipy", "pandas", "cmaes"}


def main() -> None:
    try:
        try:
            app()
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] not in SEARCH_EXTRA:
                raise
            raise MissingExtraError(exc.name.split(".")[0], "search") from None
    except EdgetuneError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        sys.exit(2)
    except (PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
        # A place the user named that cannot be written (a read-only folder, a file where a
        # folder should be): their mistake to fix, said with the path, not a traceback.
        where = exc.filename or "?"
        console.print(f"[bold red]error:[/] cannot write {escape(str(where))}: {escape(exc.strerror or str(exc))}; "
                      "give a path in a folder you can write to")
        sys.exit(2)


if __name__ == "__main__":
    main()
