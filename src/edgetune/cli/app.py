"""The `edgetune` Typer application and the console its commands print to; the commands are
registered by the modules beside this one."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    help=(
        "Find the compression settings that make a trained network fast on the target device, "
        "measured there, while keeping its accuracy.\n\n"
        "Start with: edgetune run examples/resnet56-fmnist/experiment.yaml"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True, soft_wrap=True)  # error messages carry paths: never wrap them


@app.callback()
def _root() -> None:
    """Keep typer in sub-command mode even while only one command exists."""


recipe_app = typer.Typer(help="Recipes made for you: edgetune recipe suggest RUN_DIR.", no_args_is_help=True)
app.add_typer(recipe_app, name="recipe")
