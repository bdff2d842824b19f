"""Every plug-in edgetune knows, by axis of extension, as plain names: no backend is imported here.

The schemas (`edgetune.config`) take their allowed names from these tables and the loaders
build from them, so a name the schema accepts is a name the loader can build (the two once
kept separate lists and drifted: `data.name: folder` validated and then failed to load).
Adding an implementation is one module plus one row here.
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

from edgetune.errors import ConfigError, MissingExtraError, closest


class Plugin(NamedTuple):
    """Where an implementation lives and what it needs: `extra` is the pip extra that installs
    `packages` (None: the core install has them); `traits`, what the rest of edgetune may assume
    about it without importing it (the axis's own traits type, below). Code decides by traits,
    never by a plug-in's name, so a new implementation is its module plus its row."""

    module: str
    attribute: str
    extra: str | None = None
    packages: tuple[str, ...] = ()
    traits: Any = None


class MethodTraits(NamedTuple):
    """A compression method's capabilities. `family`: what its unit is (`filters`, `channels`,
    `blocks`, or its own: `tucker`, `svd`, `magnitude`), which decides what a kept width means
    and which `group_type` a Distiller schedule may name; `samples_images`: it reads sampled
    training images (`n_samples` applies); `takes_width`: a kept count per layer (`width`,
    `round_to`, the target's width tables) means something; `structural`: shapes shrink (False:
    weights are zeroed in place, no dense speed-up)."""

    family: str
    samples_images: bool = False
    takes_width: bool = False
    structural: bool = True


class StrategyTraits(NamedTuple):
    """A search strategy's capabilities. `multi_objective`: it can trade several objectives;
    `layer_features`: the study hands it each searched layer's features and the protocol's
    reward (it walks the network, as the RL agent does); `finite_space`: it enumerates a finite
    space, so a study's trials are capped at that space's size."""

    multi_objective: bool = True
    layer_features: bool = False
    finite_space: bool = False


class RuntimeTraits(NamedTuple):
    """A runtime's capabilities. `int8_formats`: it quantises to several INT8 formats (ONNX
    Runtime's QDQ and operator formats), which a study measures on the baseline and picks from;
    otherwise it has one INT8 path (OpenVINO's NNCF). `runs_module`: it runs the PyTorch network
    object itself (eager), not the exported file, so a measurement needs the network at hand."""

    int8_formats: bool = False
    runs_module: bool = False


class RendererTraits(NamedTuple):
    """A report format: `needs`, the formats it links to (drawn before it)."""

    needs: tuple[str, ...] = ()


class SectionTraits(NamedTuple):
    """An implementation built from one section of the experiment (its dotted key), set or not."""

    section: str | None


def _method(module: str, attribute: str, packages: tuple[str, ...], traits: MethodTraits) -> Plugin:
    return Plugin(module, attribute, "search", packages, traits)


_FILTERS, _CHANNELS = MethodTraits("filters", takes_width=True), MethodTraits("channels", takes_width=True)
_TP = ("torch_pruning",)
COMPRESSION_METHODS: dict[str, Plugin] = {
    "filters-l1": _method("edgetune.compress.filters", "FiltersL1", _TP, _FILTERS),
    "filters-l2": _method("edgetune.compress.filters", "FiltersL2", _TP, _FILTERS),
    "filters-bn": _method("edgetune.compress.filters", "FiltersBatchNorm", _TP, _FILTERS),
    "filters-taylor": _method("edgetune.compress.filters", "FiltersTaylor", _TP, _FILTERS._replace(samples_images=True)),
    "channels-l1": _method("edgetune.compress.channels", "ChannelsL1", _TP, _CHANNELS),
    "channels-l2": _method("edgetune.compress.channels", "ChannelsL2", _TP, _CHANNELS),
    "channels-reconstruct": _method("edgetune.compress.channels", "ChannelsReconstruct", _TP,
                                    _CHANNELS._replace(samples_images=True)),
    "tucker": _method("edgetune.compress.tucker", "Tucker", ("tensorly",), MethodTraits("tucker")),
    "svd": _method("edgetune.compress.svd", "TruncatedSvd", ("torch",), MethodTraits("svd")),
    "magnitude": _method("edgetune.compress.magnitude", "Magnitude", ("torch",),
                         MethodTraits("magnitude", structural=False)),
    "blocks": _method("edgetune.compress.blocks", "BlocksDefault", ("torch",), MethodTraits("blocks", True)),
    "blocks-change": _method("edgetune.compress.blocks", "Blocks", ("torch",), MethodTraits("blocks", True)),
    "blocks-bn": _method("edgetune.compress.blocks", "BlocksBatchNorm", ("torch",), MethodTraits("blocks")),
    "blocks-loss": _method("edgetune.compress.blocks", "BlocksLoss", ("torch",), MethodTraits("blocks", True)),
}

SEARCH_STRATEGIES: dict[str, Plugin] = {
    "bayes": Plugin("edgetune.search.bayes", "Bayes", "search", ("optuna", "scipy"), StrategyTraits()),
    "tpe": Plugin("edgetune.search.tpe", "Tpe", "search", ("optuna",), StrategyTraits()),
    "random": Plugin("edgetune.search.random", "Random", "search", ("optuna",), StrategyTraits()),
    "grid": Plugin("edgetune.search.grid", "Grid", "search", ("optuna",), StrategyTraits(finite_space=True)),
    "nsga2": Plugin("edgetune.search.nsga2", "Nsga2", "search", ("optuna",), StrategyTraits()),
    "cmaes": Plugin("edgetune.search.cmaes", "CmaEs", "search", ("optuna", "cmaes"),
                    StrategyTraits(multi_objective=False)),
    "rl": Plugin("edgetune.search.rl", "DdpgAgent", "rl", ("stable_baselines3", "gymnasium"),
                 StrategyTraits(multi_objective=False, layer_features=True)),
}

RUNTIMES: dict[str, Plugin] = {
    "onnxruntime": Plugin("edgetune.runtimes.onnxruntime", "OnnxRuntime", None, ("onnxruntime",),
                          RuntimeTraits(int8_formats=True)),
    "openvino": Plugin("edgetune.runtimes.openvino", "OpenVino", "openvino", ("openvino",), RuntimeTraits()),
    "torch": Plugin("edgetune.runtimes.torch_eager", "TorchEager", "search", ("torch",),
                     RuntimeTraits(runs_module=True)),
}

# Dataset name -> the module that reads it (its `load`, `SEARCH_PATHS` and `HOW_TO_GET`).
DATASETS: dict[str, Plugin] = {
    "fashion-mnist": Plugin("edgetune.data.idx", "load_fashion_mnist", "search", ("torch",)),
    "cifar10": Plugin("edgetune.data.cifar", "load_cifar10", "search", ("torch",)),
    "image-folder": Plugin("edgetune.data.folder", "load_image_folder", "images", ("PIL",)),
}
# Other spellings users type (the CLI's help said `folder` for a long time).
DATASET_ALIASES: dict[str, str] = {"folder": "image-folder", "fmnist": "fashion-mnist", "cifar-10": "cifar10"}

# Each renders a report into its output folder: `render(report, out_dir) -> list[Path]`.
REPORT_RENDERERS: dict[str, Plugin] = {
    "html": Plugin("edgetune.report.html", "render_html", "report", ("plotly",), RendererTraits()),
    "png": Plugin("edgetune.report.png", "render_png", "report", ("matplotlib",), RendererTraits()),
    "csv": Plugin("edgetune.report.markdown", "render_csv", "report", ("pandas",), RendererTraits()),
    "md": Plugin("edgetune.report.markdown", "render_markdown", "report", ("matplotlib",), RendererTraits(("png",))),
}

# Each built as `cls(settings, study_name, run_dir)` from its section, when the section is set.
TRACKERS: dict[str, Plugin] = {
    "wandb": Plugin("edgetune.tracking.wandb_tracker", "WandbTracker", "tracking", ("wandb",),
                    SectionTraits("tracking.wandb")),
    "mlflow": Plugin("edgetune.tracking.mlflow_tracker", "MlflowTracker", "tracking", ("mlflow",),
                     SectionTraits("tracking.mlflow")),
}

# Each built as `cls.from_settings(settings)` from its section (None: the one used when no other's
# section is set).
EXECUTORS: dict[str, Plugin] = {
    "local": Plugin("edgetune.executors.local", "LocalExecutor", None, ("onnxruntime",), SectionTraits(None)),
    "device-worker": Plugin("edgetune.executors.device", "DeviceWorkerExecutor", "worker", ("celery",),
                            SectionTraits("remote")),
}

# Architectures by name, each a builder `fn(num_classes=, in_channels=) -> nn.Module`; a user's own
# are added at run time with `edgetune.models.register_model`.
ARCHITECTURES: dict[str, Plugin] = {
    **{f"resnet{d}": Plugin("edgetune.models.resnet_cifar", f"resnet{d}", "search", ("torch",))
       for d in (20, 32, 44, 56, 110)},
    "mobilenetv2": Plugin("edgetune.models.mobilenetv2", "mobilenetv2", "search", ("torch",)),
    "vgg11": Plugin("edgetune.models.vgg", "vgg11", "search", ("torch",)),
    "vgg16": Plugin("edgetune.models.vgg", "vgg16", "search", ("torch",)),
    # torchvision itself is imported when one is built (the builder names the extra then).
    "tv-resnet18": Plugin("edgetune.models.torchvision_models", "tv_resnet18", "search", ("torch",)),
    "tv-resnet50": Plugin("edgetune.models.torchvision_models", "tv_resnet50", "search", ("torch",)),
    "tv-mobilenetv2": Plugin("edgetune.models.torchvision_models", "tv_mobilenetv2", "search", ("torch",)),
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


def method_traits(method: str) -> MethodTraits:
    """A registered compression method's traits (the schema has checked the name)."""
    return COMPRESSION_METHODS[method].traits


def strategy_traits(method: str) -> StrategyTraits:
    """A registered search strategy's traits (the schema has checked the name)."""
    return SEARCH_STRATEGIES[method].traits


def runtime_traits(runtime: str) -> RuntimeTraits:
    """A registered runtime's traits (the schema has checked the name)."""
    return RUNTIMES[runtime].traits


def names_where(table: dict[str, Plugin], **wanted: object) -> list[str]:
    """The names in `table` whose traits have these values, e.g.
    `names_where(COMPRESSION_METHODS, samples_images=True)` or `family="blocks"`."""
    return [n for n, p in table.items() if all(getattr(p.traits, k) == v for k, v in wanted.items())]


__all__ = ["ARCHITECTURES", "COMPRESSION_METHODS", "DATASETS", "DATASET_ALIASES", "EXECUTORS", "REPORT_RENDERERS",
           "RUNTIMES", "SEARCH_STRATEGIES", "TRACKERS", "MethodTraits", "Plugin", "RendererTraits", "RuntimeTraits", "SectionTraits",
           "StrategyTraits", "dataset_name", "load", "load_plugin", "method_traits", "names_where",
           "runtime_traits", "strategy_traits"]
