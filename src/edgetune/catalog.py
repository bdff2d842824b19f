"""Every plug-in edgetune knows, by axis of extension, as plain names: no backend is imported here.

The schemas (`edgetune.config`) take their allowed names from these tables and the loaders
build from them, so a name the schema accepts is a name the loader can build (the two once
kept separate lists and drifted: `data.name: folder` validated and then failed to load).
Adding an implementation is one module plus one row here.
"""

from __future__ import annotations

import importlib
from typing import NamedTuple

from edgetune.errors import ConfigError, MissingExtraError, closest


class Plugin(NamedTuple):
    """Where an implementation lives and what it needs: `extra` is the pip extra that installs
    `packages` (None: the core install has them)."""

    module: str
    attribute: str
    extra: str | None = None
    packages: tuple[str, ...] = ()


COMPRESSION_METHODS: dict[str, Plugin] = {
    "filters-l1": Plugin("edgetune.compress.filters", "FiltersL1", "search", ("torch_pruning",)),
    "filters-l2": Plugin("edgetune.compress.filters", "FiltersL2", "search", ("torch_pruning",)),
    "filters-bn": Plugin("edgetune.compress.filters", "FiltersBatchNorm", "search", ("torch_pruning",)),
    "filters-taylor": Plugin("edgetune.compress.filters", "FiltersTaylor", "search", ("torch_pruning",)),
    "channels-l1": Plugin("edgetune.compress.channels", "ChannelsL1", "search", ("torch_pruning",)),
    "channels-l2": Plugin("edgetune.compress.channels", "ChannelsL2", "search", ("torch_pruning",)),
    "channels-reconstruct": Plugin("edgetune.compress.channels", "ChannelsReconstruct", "search", ("torch_pruning",)),
    "tucker": Plugin("edgetune.compress.tucker", "Tucker", "search", ("tensorly",)),
    "svd": Plugin("edgetune.compress.svd", "TruncatedSvd", "search", ("torch",)),
    "magnitude": Plugin("edgetune.compress.magnitude", "Magnitude", "search", ("torch",)),
    "blocks": Plugin("edgetune.compress.blocks", "BlocksDefault", "search", ("torch",)),
    "blocks-change": Plugin("edgetune.compress.blocks", "Blocks", "search", ("torch",)),
    "blocks-bn": Plugin("edgetune.compress.blocks", "BlocksBatchNorm", "search", ("torch",)),
    "blocks-loss": Plugin("edgetune.compress.blocks", "BlocksLoss", "search", ("torch",)),
}

SEARCH_STRATEGIES: dict[str, Plugin] = {
    "bayes": Plugin("edgetune.search.bayes", "Bayes", "search", ("optuna", "scipy")),
    "tpe": Plugin("edgetune.search.tpe", "Tpe", "search", ("optuna",)),
    "random": Plugin("edgetune.search.random", "Random", "search", ("optuna",)),
    "grid": Plugin("edgetune.search.grid", "Grid", "search", ("optuna",)),
    "nsga2": Plugin("edgetune.search.nsga2", "Nsga2", "search", ("optuna",)),
    "cmaes": Plugin("edgetune.search.cmaes", "CmaEs", "search", ("optuna", "cmaes")),
    "rl": Plugin("edgetune.search.rl", "DdpgAgent", "rl", ("stable_baselines3", "gymnasium")),
}

RUNTIMES: dict[str, Plugin] = {
    "onnxruntime": Plugin("edgetune.runtimes.onnxruntime", "OnnxRuntime", None, ("onnxruntime",)),
    "openvino": Plugin("edgetune.runtimes.openvino", "OpenVino", "openvino", ("openvino",)),
    "torch": Plugin("edgetune.runtimes.torch_eager", "TorchEager", "search", ("torch",)),
}

# Dataset name -> the module that reads it (its `load`, `SEARCH_PATHS` and `HOW_TO_GET`).
DATASETS: dict[str, Plugin] = {
    "fashion-mnist": Plugin("edgetune.data.idx", "load_fashion_mnist", "search", ("torch",)),
    "cifar10": Plugin("edgetune.data.cifar", "load_cifar10", "search", ("torch",)),
    "image-folder": Plugin("edgetune.data.folder", "load_image_folder", "images", ("PIL",)),
}
# Other spellings users type (the CLI's help said `folder` for a long time).
DATASET_ALIASES: dict[str, str] = {"folder": "image-folder", "fmnist": "fashion-mnist", "cifar-10": "cifar10"}

REPORT_RENDERERS: dict[str, Plugin] = {
    "html": Plugin("edgetune.report.html", "render_html", "report", ("plotly",)),
    "png": Plugin("edgetune.report.png", "render_png", "report", ("matplotlib",)),
    "csv": Plugin("edgetune.report.markdown", "render_csv", "report", ("pandas",)),
    "md": Plugin("edgetune.report.markdown", "render_markdown", "report", ("matplotlib",)),
}

TRACKERS: dict[str, Plugin] = {
    "wandb": Plugin("edgetune.tracking.wandb_tracker", "WandbTracker", "tracking", ("wandb",)),
    "mlflow": Plugin("edgetune.tracking.mlflow_tracker", "MlflowTracker", "tracking", ("mlflow",)),
}

EXECUTORS: dict[str, Plugin] = {
    "local": Plugin("edgetune.executors.local", "LocalExecutor", None, ("onnxruntime",)),
    "device-worker": Plugin("edgetune.executors.device", "DeviceWorkerExecutor", "worker", ("celery",)),
}


def dataset_name(name: str) -> str:
    """The registry's name for a dataset a user spelled `name` (aliases resolved), or ConfigError."""
    name = DATASET_ALIASES.get(name, name)
    if name not in DATASETS:
        known = sorted([*DATASETS, *DATASET_ALIASES])
        raise ConfigError(f"unknown dataset '{name}'; did you mean {', '.join(closest(name, known, 3))}? "
                          f"known datasets: {', '.join(sorted(DATASETS))} (aliases: "
                          f"{', '.join(f'{a}={b}' for a, b in DATASET_ALIASES.items())})", key="data.name")
    return name


def load(table: dict[str, Plugin], name: str, what: str, key: str) -> object:
    """The implementation registered as `name`, its backend imported only now; an unknown name
    is a ConfigError listing the known ones, a missing package names the extra to install."""
    if name not in table:
        raise ConfigError(f"unknown {what} '{name}'; available: {', '.join(table)}", key=key)
    plugin = table[name]
    for package in plugin.packages:
        try:
            importlib.import_module(package)
        except ImportError:
            raise MissingExtraError(package, plugin.extra) from None
    return getattr(importlib.import_module(plugin.module), plugin.attribute)


def load_plugin(table: dict[str, Plugin], name: str, what: str, key: str) -> object:
    """An instance of the class registered as `name` (see `load`)."""
    return load(table, name, what, key)()  # type: ignore[operator]


__all__ = ["COMPRESSION_METHODS", "DATASETS", "DATASET_ALIASES", "EXECUTORS", "REPORT_RENDERERS", "RUNTIMES",
           "SEARCH_STRATEGIES", "TRACKERS", "Plugin", "dataset_name", "load", "load_plugin"]
