"""edgetune from Python: `tune()` takes the experiment file's sections as keyword arguments, and
a network and data as objects; it runs the same study `edgetune run` does (resumable: call it
again with the same arguments and it goes on where it stopped) and returns what it found.

    import edgetune
    result = edgetune.tune(model=net, train_data=train_set, val_data=val_set,
                           recipe={"pruners": {...}, "policies": [...]},
                           sweep={"metric": {"name": "latency_ratio", "goal": "minimize"}, "parameters": {...}},
                           finetune={"epochs": 1}, trials=20, run_dir="runs/mine")
    result.trials          # one row per trial (pandas), final-stage columns included
    result.best            # the final pick, else the best feasible trial
    result.export("best", "deploy/")
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from edgetune.config.architecture import rebased_reference
from edgetune.config.experiment import ExperimentSpec, experiment_from, load_experiment
from edgetune.data.custom import split_parts, splits_from
from edgetune.entrypoints import function_name
from edgetune.errors import ConfigError
from edgetune.files import read_yaml
from edgetune.metrics.record import Recorded
from edgetune.models.factory import ModelFactory
from edgetune.study.planning.plan import Given
from edgetune.study.records.held import with_final
from edgetune.study.records.results import StudyOutcome, accuracy_latency_front, best_trials, trials_frame
from edgetune.study.records.trial_export import ExportedTrial, export_trial
from edgetune.study.runner import run_study
from edgetune.study.trial.reporter import Reporter

SECTIONS = ("name", "recipe", "sweep", "finetune", "final", "benchmark", "data", "trials", "seed", "run_dir", "storage",
            "torch_threads", "tracking", "remote", "device", "heartbeat_seconds")


@dataclass
class TuneResult:
    """What a study found; every figure is read from the study and the run directory."""

    outcome: StudyOutcome
    factory: ModelFactory | None = None

    @property
    def run_dir(self) -> Path:
        return self.outcome.plan.run_dir

    @property
    def trials(self) -> pd.DataFrame:
        """trials.csv as a DataFrame: the baseline row first, then every trial."""
        frame = trials_frame(self.outcome.study, self.outcome.baseline, self.outcome.plan.objectives)
        return with_final(frame, self.outcome.plan.paths.final)

    @property
    def best(self) -> dict[str, Any] | None:
        """The final stage's pick (when the experiment has `final:`), else the best feasible
        trial by the first objective: its number, parameters and metrics. None when none is."""
        final = self.outcome.final
        if final is not None:
            number = final.picked
        else:
            ranked = best_trials(self.outcome.feasible(), self.outcome.plan.objectives[:1])
            number = ranked[0].number if ranked else None
        if number is None:
            return None
        trial = next(t for t in self.outcome.study.get_trials(deepcopy=False) if t.number == number)
        return {"trial": number, "params": {**trial.params, **Recorded.of(trial).applied_params},
                **trial.user_attrs}

    @property
    def front(self) -> pd.DataFrame:
        """The feasible trials no other beats on both measured latency and top-1, fastest first."""
        return pd.DataFrame(accuracy_latency_front(self.outcome.study), columns=["trial", "latency_ms", "top1"])

    def export(self, trial: int | str = "best", out: str | Path | None = None) -> ExportedTrial:
        """One trial's ONNX file and rebuildable checkpoint, checked against each other."""
        target = Path(out) if out is not None else self.run_dir / "export" / f"trial-{trial}"
        best = self.best if trial == "best" else None
        number = str(best["trial"]) if best is not None else str(trial)
        # A reference handed over as an object is rebuilt by its own builder, not the study's.
        reference = next((Recorded.of(t).reference for t in self.outcome.study.get_trials(deepcopy=False)
                          if str(t.number) == number), None)
        return export_trial(self.run_dir, str(trial), target, self.outcome.plan.spec.storage,
                            self.outcome.plan.factory_for(reference))


def tune(experiment: str | Path | Mapping[str, Any] | ExperimentSpec | None = None, *,
         model: nn.Module | Callable[[], nn.Module] | Mapping[str, Any] | None = None,
         train_data: Any = None, val_data: Any = None, test_data: Any = None,
         evaluate: str | Callable[[Any, Any], Any] | None = None, loss: str | Callable[[Any, Any], Any] | None = None,
         references: Sequence[Any] | None = None, teacher: Any = None,
         example_input: torch.Tensor | Sequence[int] | None = None,
         progress: bool | Reporter = True, **sections: Any) -> TuneResult:
    """Run (or resume) a study.

    `experiment`: an experiment file, its content as a dict, or one already validated (what
    `edgetune run` passes, its flags applied); keyword sections (`recipe`,
    `sweep`, `finetune`, `final`, `benchmark`, `data`, `trials`, `run_dir`, ...) are merged over
    it, as `edgetune run`'s flags are. `model`: a network object (copied for each candidate), a
    function of no arguments returning one, or the file's `model:` section. `train_data` and
    `val_data` (and `test_data`): torch Datasets of `(image, label)` or DataLoaders of batches.
    `data` may also be a function of no arguments returning the splits as `data.factory` does
    (a tuple, or a mapping with train / val / test keys such as a `DatasetDict`).
    `evaluate(outputs, targets)` and `loss(outputs, targets)`: callables (functions, lambdas,
    partials, objects with `__call__` such as torchmetrics metrics) or `module:function` names;
    `evaluate` returns a dict of metrics or one number, recorded under `edgetune.named(fn, name)`'s
    name, the function's name or the class's in snake_case. A study records each callable by that
    name, not by pickling it: resuming with another object under the same name is your call.
    `references`: networks measured beside the search as its trials are (the smaller sibling,
    a hand-tuned network), each a checkpoint path, a `{checkpoint, model|factory, ...}` mapping
    (added to the sweep's `enqueue`), a network object or a function of no arguments building
    one (recorded by `edgetune.named(net, "resnet20")`'s name or its class's). `teacher`: the
    network that teaches wherever the experiment distils, in the same forms; distillation with
    its default weights is turned on for fine-tuning when the experiment has none.
    `example_input`: a batch the network takes, or its shape (channels, height, width), checked
    against the data before any work (the file's `model.input_shape`); the data's by default.
    `progress`: a rich progress display (a notebook shows it in the cell), False for none, or a
    Reporter of your own.
    """
    _check_sections(sections)
    code = _user_code(evaluate=evaluate, loss=loss)
    python_code = {k: v for k, v in code.items() if not isinstance(v, str)}
    objects = _NetworkObjects.split(references or [], teacher)
    given_data = sections.pop("data") if callable(sections.get("data")) else None
    factory = None if model is None or isinstance(model, Mapping) else ModelFactory.of(model)
    if isinstance(experiment, ExperimentSpec):  # validated, flags applied: `edgetune run`
        if (sections or model is not None or example_input is not None or code or given_data is not None
                or references or teacher is not None):
            raise ConfigError("tune(): a validated experiment comes on its own; give a file or a dict to put "
                              "arguments over", key="experiment")
        spec = experiment
    else:
        if isinstance(model, Mapping):
            sections["model"] = dict(model)
        if example_input is not None:
            sections["model"] = {**sections.get("model", {}), "input_shape": _input_shape(example_input)}
        # A name goes into the experiment as the file's would; an object replaces the file's name.
        sections.update({k: (v if isinstance(v, str) else None) for k, v in code.items()})
        raw, base, source = _starting_point(experiment)
        merged = objects.written_into(_merged(raw, sections), base)
        spec = experiment_from(merged, base, source if merged == raw or experiment is None else f"{source} with tune() arguments")
    data = _given_data(train_data, val_data, test_data, given_data, spec)
    reporter = progress if isinstance(progress, Reporter) else _reporter(progress)
    outcome = run_study(spec, reporter, Given(factory, data, python_code.get("evaluate"), python_code.get("loss"),
                                              objects.references, objects.teacher))
    return TuneResult(outcome, factory)


def _check_sections(sections: Mapping[str, Any]) -> None:
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"tune() has no argument {unknown[0]!r}; the experiment's sections are "
                          f"{', '.join(SECTIONS)}, with model, train_data, val_data, test_data, evaluate, loss, references, "
                          "teacher, example_input and progress")


def _user_code(**given: Any) -> dict[str, Any]:
    """The `evaluate` and `loss` given: each a callable or a 'module:function' name."""
    code = {k: v for k, v in given.items() if v is not None}
    for key, value in code.items():
        if not isinstance(value, str) and not callable(value):
            raise ConfigError(f"tune(): {key} is a {type(value).__name__}; give a callable ({key}(outputs, targets)) or "
                              "a 'module:function' name", key=key)
    return code


@dataclass(frozen=True)
class _NetworkObjects:
    """`references=` and `teacher=` sorted into what the experiment file could name (checkpoint
    paths and `{checkpoint, ...}` mappings, written into it) and Python objects (handed over)."""

    files: list[str | dict[str, Any]]
    teacher_file: str | dict[str, Any] | None
    references: tuple[ModelFactory, ...]
    teacher: ModelFactory | None

    @classmethod
    def split(cls, references: Sequence[Any], teacher: Any) -> _NetworkObjects:
        if isinstance(references, str | Path | Mapping) or not isinstance(references, Sequence):
            raise ConfigError(f"tune(): references is a {type(references).__name__}; give a list of checkpoints, "
                              "networks or functions building one", key="references")
        files = [_as_file(r) for r in references if _names_a_file(r)]
        objects = tuple(ModelFactory.of(r, key="references") for r in references if not _names_a_file(r))
        if teacher is None or _names_a_file(teacher):
            return cls(files, None if teacher is None else _as_file(teacher), objects, None)
        return cls(files, None, objects, ModelFactory.of(teacher, key="teacher"))

    def written_into(self, raw: dict[str, Any], base: Path) -> dict[str, Any]:
        """The experiment's content with the file references in its sweep's `enqueue` and the
        teacher (a file) in every `distill` section; unchanged when there are neither."""
        out = dict(raw)
        if self.files:
            out["sweep"] = _inline_sweep(out.get("sweep"), base)
            out["sweep"]["enqueue"] = [*(out["sweep"].get("enqueue") or []), *self.files]
        if self.teacher_file is not None or self.teacher is not None:
            out.update(_with_teacher(out, self.teacher_file))
        return out


def _names_a_file(value: Any) -> bool:
    return isinstance(value, str | Path | Mapping)


def _as_file(value: str | Path | Mapping[str, Any]) -> str | dict[str, Any]:
    """A path given from Python is relative to the working folder, not the experiment file's."""
    return rebased_reference(dict(value) if isinstance(value, Mapping) else str(value), Path.cwd())


def _inline_sweep(sweep: Any, base: Path) -> dict[str, Any]:
    """The sweep as a dict: a sweep file is read, its `enqueue` entries made absolute against
    its own folder, so entries can be added to it."""
    if sweep is None:
        return {}
    if isinstance(sweep, Mapping):
        return dict(sweep)
    path = Path(sweep) if Path(sweep).is_absolute() else base / sweep
    content = dict(read_yaml(path, "sweep") or {})
    content["enqueue"] = [rebased_reference(r, path.parent) for r in content.get("enqueue") or []]
    return content


def _with_teacher(raw: dict[str, Any], teacher: str | dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """`finetune` and `final` with the teacher in each `distill` (None: the object handed over,
    which needs only distillation on); fine-tuning distils with the defaults when nothing does."""
    sections = {k: dict(raw.get(k) or {}) for k in ("finetune", "final") if k == "finetune" or raw.get(k)}
    distilled = [k for k, v in sections.items() if v.get("distill") is not None]
    for key in distilled or ["finetune"]:
        distill = dict(sections[key].get("distill") or {})
        if teacher is None and distill.get("teacher") is not None:
            raise ConfigError(f"tune(): teacher= is given and {key}.distill.teacher names "
                              f"{distill['teacher']!r}; give one teacher", key="teacher")
        if teacher is not None:
            distill["teacher"] = teacher
        sections[key]["distill"] = distill
    return {k: v for k, v in sections.items() if k in distilled or k == "finetune"}


def _given_data(train: Any, val: Any, test: Any, make: Callable[[], Any] | None, spec: ExperimentSpec) -> Any:
    """The splits handed over from Python: as objects, or made by a function of no arguments."""
    if make is not None:
        if train is not None or val is not None:
            raise ConfigError("give data= (a function returning the splits) or train_data/val_data, not both",
                              key="data")
        what = f"tune() data {function_name(make)}"
        return splits_from(split_parts(make(), what), what, name="python", item_keys=spec.data.item_keys)
    if train is None and val is None:
        return None
    if train is None or val is None:
        raise ConfigError("give both train_data and val_data (test_data is optional)", key="train_data")
    return splits_from((train, val, test), "tune() data", name="python", item_keys=spec.data.item_keys)


def _input_shape(example: torch.Tensor | Sequence[int]) -> list[int]:
    shape = list(example.shape) if isinstance(example, torch.Tensor) else list(example)
    if len(shape) == 4:  # a batch, or a shape given with its batch
        shape = shape[1:]
    if len(shape) != 3:
        raise ConfigError(f"example_input: a batch of images (N, C, H, W) or their shape (C, H, W), got "
                          f"{tuple(example.shape) if isinstance(example, torch.Tensor) else tuple(example)}",
                          key="example_input")
    return [int(d) for d in shape]


def _starting_point(experiment: str | Path | Mapping[str, Any] | None) -> tuple[dict[str, Any], Path, str]:
    if experiment is None:
        return {}, Path.cwd(), "tune()"
    if isinstance(experiment, Mapping):
        return dict(experiment), Path.cwd(), "tune() experiment"
    if not isinstance(experiment, str | Path):
        raise ConfigError(f"tune(): experiment is a {type(experiment).__name__}; give an experiment file's path, its "
                          "content as a dict, or nothing", key="experiment")
    path = Path(experiment)
    load_experiment(path)  # a bad file fails here, with its own name in the error
    raw = read_yaml(path, "experiment") or {}
    return raw, path.resolve().parent, str(path)


def _merged(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) and key not in ("recipe", "sweep"):
            out[key] = _merged(dict(out[key]), dict(value))
        else:
            out[key] = value
    return out


def _reporter(show: bool) -> Reporter:
    if not show:
        return Reporter()
    from rich.console import Console

    from edgetune.report.progress import RichReporter

    return RichReporter(Console())
