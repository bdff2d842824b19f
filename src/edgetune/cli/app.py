"""The `edgetune` Typer application and the console its commands print to; the commands are
registered by the modules beside this one."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from edgetune.config.architecture import Architecture

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


# What a bare state dict does not record, asked the same way by every command that loads one.
ModelOpt = Annotated[str | None, typer.Option(
    "--model", help="Registered architecture, for a bare state dict that does not record it (edgetune models).")]
ModelFactoryOpt = Annotated[str | None, typer.Option(
    help="Your own network's builder (package.module:build or file.py:build), for a checkpoint of it.")]
NumClassesOpt = Annotated[int | None, typer.Option(min=1, help="Classes, for a bare state dict.")]
InChannelsOpt = Annotated[int | None, typer.Option(min=1, help="Input channels, for a bare state dict.")]


def architecture(model: str | None, model_factory: str | None, num_classes: int | None = None,
                 in_channels: int | None = None) -> Architecture:
    """The four flags as one value; a malformed --model-factory refused by name."""
    from edgetune.entrypoints import check_reference
    from edgetune.errors import EdgetuneError

    if model is not None and model_factory is not None:
        raise EdgetuneError("give --model (a registered architecture) or --model-factory (your own), not both")
    try:
        factory = check_reference(model_factory) if model_factory else None
    except ValueError as exc:
        raise EdgetuneError(f"--model-factory: {exc}") from None
    return Architecture(model, factory, num_classes, in_channels)
