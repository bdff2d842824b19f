"""The experiment file: one strict schema for everything a search needs, each field defaulted.

The recipe and the sweep can be given inline or as paths to the seed's two files; relative
paths are read from the experiment file's folder, so an example folder can move as a whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, PositiveInt, field_validator, model_validator

from edgetune.catalog import dataset_name
from edgetune.config.architecture import DescribedCheckpoint, rebased_reference
from edgetune.config.base import Strict, broker_url, training_device, validate
from edgetune.config.benchmark import BenchmarkSpec
from edgetune.config.recipe import Schedule, parse_schedule
from edgetune.config.sweep import SweepSpec, parse_sweep
from edgetune.entrypoints import check_reference, resolve_reference
from edgetune.errors import ConfigError
from edgetune.files import read_yaml

# The user's own code by name, its form checked here and imported only where it is used.
EntryPoint = Annotated[str, AfterValidator(check_reference)]
# Every setting that names one: made absolute against the experiment file's folder (or, given
# as a flag, the working directory), so the resolved experiment names the same files anywhere.
ENTRY_POINTS = ("model.factory", "data.factory", "evaluate", "loss")
STORAGE_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "redis", "rediss")


class ModelSpec(Strict):
    name: str | None = Field(None, description="registry name; taken from the checkpoint when omitted")
    # Or the user's own network: `package.module:build` or `path/to/file.py:build` returning an
    # nn.Module, called with `kwargs`; `checkpoint` may then be a plain state_dict (torchvision's,
    # Distiller's, a user's) or edgetune's own, or be left out (the factory's weights as built).
    factory: EntryPoint | None = Field(None, description="package.module:function or path/to/file.py:function")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="arguments of model.factory")
    checkpoint: Path | None = None
    # The network's input as channels, height, width (batch left out). Taken from the data when
    # omitted; given, it is checked against the data's images before any work, so a network
    # built for 224x224 RGB meets 28x28 grey images with an error, not a shape deep in a layer.
    # The network is exported, timed and scored at the data's size: the deployed artefact's
    # accuracy is measured on those images, so a different deployment size is refused.
    input_shape: tuple[PositiveInt, PositiveInt, PositiveInt] | None = Field(
        None, description="[channels, height, width] the network takes")

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if self.factory is not None and self.name is not None:
            raise ValueError(f"give model.name (a registered network) or model.factory (your own), not both "
                             f"(got {self.name!r} and {self.factory!r})")
        if self.kwargs and self.factory is None:
            raise ValueError("model.kwargs are the arguments of model.factory, which is not given")
        return self


class DataSpec(Strict):
    # A name of the dataset registry (edgetune.catalog.DATASETS) or one of its aliases.
    name: str = "fashion-mnist"
    root: Path | None = None
    val_size: int = Field(5000, gt=0)
    split_seed: int = 0
    # Subsets keep a search short; the same images are used for every trial and the baseline.
    train_subset: int | None = Field(None, gt=0)
    val_subset: int | None = Field(None, gt=0)
    # Or the user's own data: `package.module:make` or `path/to/file.py:make` returning (train,
    # val) or (train, val, test) Datasets or DataLoaders (edgetune.data.custom); `name`, `root`,
    # `val_size` and `split_seed` then do not apply.
    factory: EntryPoint | None = Field(None, description="package.module:function or path/to/file.py:function")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="arguments of data.factory")
    item_keys: tuple[str, str] | None = Field(
        None, description="[image key, label key] of items that are mappings (Hugging Face datasets); default: the "
        "first of image, img, pixel_values, x, input and of label, labels, target, y that an item has")

    @model_validator(mode="after")
    def _one_source(self) -> DataSpec:
        if self.factory is not None and "name" in self.model_fields_set:
            raise ValueError(f"give data.name (a known dataset) or data.factory (your own), not both (got "
                             f"{self.name!r} and {self.factory!r})")
        if self.kwargs and self.factory is None:
            raise ValueError("data.kwargs are the arguments of data.factory, which is not given")
        return self

    @field_validator("name")
    @classmethod
    def _registered(cls, name: str) -> str:
        try:
            return dataset_name(name)
        except ConfigError as exc:
            raise ValueError(str(exc).split(": ", 1)[-1]) from None


class DistillSpec(Strict):
    """Knowledge distillation from the unpruned network (or `teacher`) while training (Hinton et al. 2015):
    loss = (1 - alpha) * cross-entropy + alpha * T^2 * KL(teacher || student) at temperature T."""

    alpha: float = Field(0.5, ge=0, le=1)
    temperature: float = Field(4.0, gt=0)
    teacher: Path | DescribedCheckpoint | None = Field(
        None, description="a checkpoint whose network teaches (default: the unpruned network); it must take the "
        "same images and give the same classes; {checkpoint, model} or {checkpoint, factory} for a bare state dict")


class FinetuneSpec(Strict):
    epochs: int = Field(0, ge=0)
    learning_rate: float = Field(0.1, gt=0, allow_inf_nan=False)
    batch_size: int = Field(128, gt=0)
    momentum: float = Field(0.9, ge=0)
    weight_decay: float = Field(5e-4, ge=0)
    augment: bool = Field(True, description="random crop and flip while training; false: the images as they "
                          "are, every epoch, and a teacher asked about each image once")
    distill: DistillSpec | None = None
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="training arithmetic (search and final stage). auto: bf16 autocast where the device "
        "computes bf16 natively (CUDA, CPUs with AVX512-BF16 or AMX), fp32 elsewhere, and channels_last on the "
        "CPU; bf16: autocast wherever asked; fp32: neither")
    schedule: Literal["auto", "cosine", "constant"] = Field(
        "auto", description="the learning rate over a candidate's fine-tuning steps. cosine: from "
        "learning_rate down to zero over all its steps (3 to 5 points more top-1 than constant after one "
        "epoch of 4,096 images, docs/results.md part 8); constant: learning_rate throughout, the recipe's "
        "lr_schedulers stepping it per epoch; auto: constant when the recipe schedules the learning rate, "
        "cosine otherwise")


def finetune_identity(ft: FinetuneSpec, mode: str = "python") -> dict[str, Any]:
    """The fine-tuning settings as a study's fingerprint and a candidate's key hash them: a
    teacher left at its default stays out, as before one could be named, so earlier studies
    still resume and still recognise their own candidates."""
    teacher_unset = ft.distill is not None and ft.distill.teacher is None
    dumped = ft.model_dump(mode=mode, exclude={"distill": {"teacher"}} if teacher_unset else None)
    for added in ("precision", "schedule"):  # added later: at their defaults they stay out of earlier keys
        if dumped[added] == "auto":
            del dumped[added]
    return dumped


class CalibrateSpec(Strict):
    """What is recovered without training after a structural change, before the candidate is
    scored or fine-tuned: the norm layers' running statistics, re-estimated from training images
    (EagleEye's adaptive BatchNorm). Two forward passes' worth of work turn a screen that reads
    the unpruned network's stale statistics into one that ranks candidates."""

    batchnorm: bool = Field(True, description="re-estimate the running statistics of every norm layer that "
                            "keeps them (BatchNorm, SyncBatchNorm, tracked InstanceNorm) after pruning")
    batchnorm_images: int = Field(1024, gt=0, description="training images (not augmented) the statistics are "
                                  "re-estimated on; fewer when the training split has fewer")
    score_as_pruned: bool = Field(True, description="also score each candidate as pruned (top1_as_pruned), so "
                                  "a user sees what recovery gave; one more scoring pass per candidate")
    reconstruct: bool = Field(False, description="re-fit every layer that lost inputs by least squares to the "
                              "unpruned network's outputs (ThiNet, He et al. 2017), between two re-estimations "
                              "of the statistics; off by default (docs/results.md, 'Recover before you train')")
    reconstruct_images: int = Field(256, gt=0, description="training images the least squares are fitted on")


class FinalSpec(Strict):
    """After the search: the feasible front trained again with a larger budget, re-scored on the
    whole validation split against the unpruned network image by image, and one picked; its
    test top-1 is measured once, after the pick (docs/search.md, "The final pick")."""

    candidates: int = Field(3, ge=1, description="feasible front members trained again, spread along the front")
    epochs: int = Field(1, ge=0, description="0: re-scored and picked without training again")
    train_subset: int | None = Field(None, gt=0, description="training images (default: the whole training split)")
    learning_rate: float = Field(0.01, gt=0, allow_inf_nan=False)
    batch_size: int = Field(128, gt=0)
    augment: bool = Field(True, description="random crop and flip; false: a teacher asked about each image "
                          "once, so an epoch costs about half as much on a CPU")
    distill: DistillSpec | None = Field(None, description="default: the search's finetune.distill")
    confidence: float = Field(0.9, ge=0.5, lt=1,
                              description="one-sided confidence of the bound on the accuracy lost")
    # A search scores candidates after a short fine-tune, so its accuracy constraint is a screen
    # (say 2 points); the pick holds the finalists, trained again, to the figure that matters.
    max_accuracy_drop: float | None = Field(None, ge=0, description="default: the search's accuracy constraint")


class RemoteSpec(Strict):
    """Benchmark on a device worker (`edgetune bench-worker`) instead of this machine."""

    broker: str = Field(description="redis://[:password@]host:6379/0 or rediss:// (TLS)")
    queue: str = Field(min_length=1, description="the device's queue")
    timeout: float = Field(1800.0, gt=0, description="seconds to wait for an answer before the trial fails")

    @field_validator("broker")
    @classmethod
    def _a_broker(cls, url: str) -> str:
        return broker_url(url)


class WandbSpec(Strict):
    """Weights & Biases: one W&B run per trial, grouped by the study's name. `offline` (the
    default) needs no account or network; `wandb sync DIR` uploads later."""

    project: str = Field(min_length=1)
    entity: str | None = None
    mode: Literal["offline", "online"] = "offline"
    dir: Path | None = Field(None, description="where W&B writes its runs (default: RUN_DIR/wandb)")


class MlflowSpec(Strict):
    """MLflow: one MLflow run per trial in the experiment named after the study."""

    uri: str = Field(description="tracking URI: sqlite:///path/mlflow.db (local) or http://server:5000")
    experiment: str | None = Field(None, description="MLflow experiment name (default: the study's name)")

    @field_validator("uri")
    @classmethod
    def _not_the_file_store(cls, uri: str) -> str:
        if uri.startswith("file:") or "://" not in uri:
            raise ValueError(f"{uri!r} is MLflow's file store, deprecated upstream; use sqlite:///path/mlflow.db "
                             "(a local database file) or http(s)://server")
        return uri


class TrackingSpec(Strict):
    """Also log every trial (parameters under the sweep's names, metrics, ONNX file) to
    these trackers; off unless named."""

    wandb: WandbSpec | None = None
    mlflow: MlflowSpec | None = None


class ExperimentSpec(Strict):

    name: str = "edgetune"
    model: ModelSpec = Field(default_factory=ModelSpec)
    data: DataSpec = Field(default_factory=DataSpec)
    recipe: Path | dict[str, Any] | None = None
    sweep: Path | dict[str, Any] | None = None
    finetune: FinetuneSpec = Field(default_factory=FinetuneSpec)
    calibrate: CalibrateSpec = Field(default_factory=CalibrateSpec)
    final: FinalSpec | None = None
    # A metric of your own: `fn(outputs, targets)` over the whole validation split (the model's
    # outputs concatenated over batches, the targets as the data gives them) returning a dict of
    # numbers, each usable by name as the sweep's metric, an objective or a constraint.
    evaluate: EntryPoint | None = Field(None, description="package.module:function or path/to/file.py:function")
    # A fine-tuning loss of your own: `fn(outputs, targets)` returning a scalar tensor (default:
    # cross-entropy); distillation adds its soft term to it.
    loss: EntryPoint | None = Field(None, description="package.module:function or path/to/file.py:function")
    benchmark: BenchmarkSpec = Field(default_factory=BenchmarkSpec)
    # What scores a candidate whose shape is final on the validation images: its exported ONNX
    # file in ONNX Runtime on every core (2.1-2.4x faster than PyTorch eager on a 2-core CPU,
    # the same top-1: benchmarks/bench_evaluation.py), or PyTorch. `auto`: ONNX Runtime when
    # training runs on the CPU, PyTorch on an accelerator.
    score_with: Literal["auto", "onnxruntime", "pytorch"] = "auto"
    trials: int = Field(20, ge=0)  # 0: measure the baseline and the `enqueue` references only
    seed: int = 0
    run_dir: Path | None = None
    storage: str | None = Field(None, description="Optuna storage URL; SQLite under run_dir when omitted")
    # On a shared storage: how often a producer says its trial is alive; after three silent
    # periods another producer marks it failed and runs the candidate again.
    heartbeat_seconds: float = Field(20.0, gt=0)
    # PyTorch's threads for pruning and fine-tuning (default: PyTorch's, one per core). Several
    # producers on one machine must share its cores: two with two threads each on two cores ran
    # 5x slower than one (docs/distributed.md).
    torch_threads: int | None = Field(None, gt=0)
    remote: RemoteSpec | None = None
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    device: str = "cpu"

    @field_validator("storage")
    @classmethod
    def _a_storage_url(cls, url: str | None) -> str | None:
        """A URL a study can live in, checked before anything is written (SQLAlchemy's own error
        came after the run directory was made, as a traceback)."""
        if url is None:
            return url
        scheme = url.split("://", 1)[0] if "://" in url else ""
        if scheme.split("+", 1)[0] not in STORAGE_SCHEMES or not url.split("://", 1)[1]:
            raise ValueError(f"{url!r} is not a study storage URL; accepted: sqlite:///path/study.db, "
                             "postgresql://user:password@host:5432/db (the postgres extra), mysql://..., "
                             "redis://host:6379/0 or rediss:// (a shared journal)")
        return url

    @field_validator("device")
    @classmethod
    def _a_device(cls, device: str) -> str:
        return training_device(device)

    @model_validator(mode="before")
    @classmethod
    def _sections_not_left_empty(cls, data: Any) -> Any:
        """`model:` with nothing under it reads as null: say what goes there."""
        if isinstance(data, dict):
            hints = {"model": "checkpoint: path/to/weights.pt (or name: / factory:)", "data": "name: fashion-mnist",
                     "finetune": "epochs: 1", "benchmark": "runtime: onnxruntime"}
            for key, hint in hints.items():
                if key in data and data[key] is None:
                    raise ValueError(f"`{key}:` is empty; give its settings, e.g. {key}: {{{hint}}}, or leave it out")
        return data


def _validate(raw: dict[str, Any], source: str) -> ExperimentSpec:
    return validate(ExperimentSpec, raw, source, "an experiment")


# `edgetune run`'s flags by the setting they override, for errors that name what the user typed.
FLAGS = {"data.name": "--data", "data.root": "--data-root", "model.name": "--model", "model.factory": "--model-factory",
         "model.checkpoint": "--checkpoint", "recipe": "--schedule", "remote.queue": "--bench-queue",
         "remote.broker": "--broker", "finetune.epochs": "--epochs", "finetune.learning_rate": "--learning-rate",
         "benchmark.threads": "--threads"}


def load_experiment(path: Path | None, overrides: dict[str, Any] | None = None) -> tuple[ExperimentSpec, Path]:
    """Read the file (or start from defaults), apply `overrides` (dotted keys from the CLI) and
    make relative paths absolute against the file's folder (or the working directory)."""
    raw: dict[str, Any] = {}
    base = Path.cwd()
    source = "<command line>"
    if path is not None:
        source = str(path)
        loaded = read_yaml(path, "experiment")
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"an experiment must be a mapping, got {type(loaded).__name__}", source=source)
        raw = loaded or {}
        base = Path(path).resolve().parent
    spec = experiment_from(raw, base, source)
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    if given:
        # What the file set, not every default: a default written back would read as set by the
        # user (data.name beside data.factory was refused for a file that never named one).
        data = spec.model_dump(exclude_unset=True)
        for dotted, value in given.items():
            node = data
            *parents, leaf = dotted.split(".")
            for p in parents:
                if node.get(p) is None:  # an optional section the file left out (remote)
                    node[p] = {}
                node = node[p]
            # Flags name files relative to where the user typed them, not to the experiment file.
            if dotted in ENTRY_POINTS:
                value = resolve_reference(str(value), Path.cwd())
            node[leaf] = value.resolve() if isinstance(value, Path) else value
        flags = ", ".join(FLAGS.get(k, f"--{k.split('.')[-1].replace('_', '-')}") for k in given)
        try:
            spec = _validate(data, f"{source} with {flags}")
        except ConfigError as exc:
            if exc.key in FLAGS and exc.key not in given:  # a flag that needs another (--bench-queue, --broker)
                raise ConfigError(f"{exc}: give {FLAGS[exc.key]} too, or {exc.key} in the file") from None
            raise
    return spec, base


def experiment_from(raw: dict[str, Any], base: Path, source: str = "<python>") -> ExperimentSpec:
    """An experiment from a mapping (a file's content, or keyword arguments from Python), its
    relative paths taken against `base`."""
    return _rebase(_validate(raw, source), base)


def _rebase(spec: ExperimentSpec, base: Path) -> ExperimentSpec:
    def fix(p: Path | None) -> Path | None:
        return None if p is None else (p if p.is_absolute() else (base / p).resolve())

    spec.model.checkpoint = fix(spec.model.checkpoint)
    for dotted in ENTRY_POINTS:
        *section, field = dotted.split(".")
        owner = getattr(spec, section[0]) if section else spec
        if getattr(owner, field) is not None:
            setattr(owner, field, resolve_reference(getattr(owner, field), base))
    spec.data.root = fix(spec.data.root)
    for distill in (spec.finetune.distill, spec.final.distill if spec.final else None):
        if isinstance(distill.teacher if distill else None, DescribedCheckpoint):
            distill.teacher.checkpoint = fix(distill.teacher.checkpoint)  # type: ignore[union-attr]
            if distill.teacher.factory:  # type: ignore[union-attr]
                distill.teacher.factory = resolve_reference(distill.teacher.factory, base)  # type: ignore[union-attr]
        elif distill is not None:
            distill.teacher = fix(distill.teacher)
    if isinstance(spec.recipe, Path):
        spec.recipe = fix(spec.recipe)
    if isinstance(spec.sweep, Path):
        spec.sweep = fix(spec.sweep)
    elif isinstance(spec.sweep, dict) and isinstance(spec.sweep.get("enqueue"), list):
        # Reference recipes named in an inline sweep are relative to the experiment file too.
        spec.sweep["enqueue"] = [rebased_reference(r, base) for r in spec.sweep["enqueue"]]
    spec.run_dir = fix(spec.run_dir)  # None: runs/<name> under the working directory
    return spec


def _read_yaml(path: Path, what: str) -> dict[str, Any]:
    raw = read_yaml(path, what)
    return raw if raw is not None else {}


def recipe_of(spec: ExperimentSpec) -> tuple[dict[str, Any], Schedule, str]:
    """The raw schedule mapping (which the sweep rewrites), its validated form and its source."""
    if spec.recipe is None:
        return {}, Schedule(), "<no recipe>"
    if isinstance(spec.recipe, Path):
        raw, source = _read_yaml(spec.recipe, "schedule"), str(spec.recipe)
    else:
        raw, source = spec.recipe, "experiment recipe"
    schedule = parse_schedule(raw, source)
    return raw, schedule, source


def sweep_of(spec: ExperimentSpec) -> tuple[SweepSpec, str]:
    if spec.sweep is None:
        return parse_sweep({}), "<no sweep>"
    if isinstance(spec.sweep, Path):
        return parse_sweep(_read_yaml(spec.sweep, "sweep"), str(spec.sweep)), str(spec.sweep)
    return parse_sweep(spec.sweep, "experiment sweep"), "experiment sweep"
