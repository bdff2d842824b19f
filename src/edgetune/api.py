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

from edgetune.config.experiment import ExperimentSpec, experiment_from, load_experiment
from edgetune.data.custom import split_parts, splits_from
from edgetune.entrypoints import function_name
from edgetune.errors import ConfigError
from edgetune.files import read_yaml
from edgetune.models.factory import ModelFactory
from edgetune.study.held import with_final
from edgetune.study.plan import Given
from edgetune.study.reporter import Reporter
from edgetune.study.results import StudyOutcome, accuracy_latency_front, best_trials, trials_frame
from edgetune.study.runner import run_study
from edgetune.trial_export import ExportedTrial, export_trial

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
        return {"trial": number, "params": {**trial.params, **trial.user_attrs.get("applied_params", {})},
                **trial.user_attrs}

    @property
    def front(self) -> pd.DataFrame:
        """The feasible trials no other beats on both measured latency and top-1, fastest first."""
        return pd.DataFrame(accuracy_latency_front(self.outcome.study), columns=["trial", "latency_ms", "top1"])

    def export(self, trial: int | str = "best", out: str | Path | None = None) -> ExportedTrial:
        """One trial's ONNX file and rebuildable checkpoint, checked against each other."""
        target = Path(out) if out is not None else self.run_dir / "export" / f"trial-{trial}"
        return export_trial(self.run_dir, str(trial), target, self.outcome.plan.spec.storage, self.factory)


def tune(experiment: str | Path | Mapping[str, Any] | ExperimentSpec | None = None, *,
         model: nn.Module | Callable[[], nn.Module] | Mapping[str, Any] | None = None,
         train_data: Any = None, val_data: Any = None, test_data: Any = None,
         evaluate: str | Callable[[Any, Any], Any] | None = None, loss: str | Callable[[Any, Any], Any] | None = None,
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
    `example_input`: a batch the network takes, or its shape (channels, height, width), checked
    against the data before any work (the file's `model.input_shape`); the data's by default.
    `progress`: a rich progress display (a notebook shows it in the cell), False for none, or a
    Reporter of your own.
    """
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"tune() has no argument {unknown[0]!r}; the experiment's sections are "
                          f"{', '.join(SECTIONS)}, with model, train_data, val_data, test_data and progress")
    code = {k: v for k, v in (("evaluate", evaluate), ("loss", loss)) if v is not None}
    for key, value in code.items():
        if not isinstance(value, str) and not callable(value):
            raise ConfigError(f"tune(): {key} is a {type(value).__name__}; give a callable ({key}(outputs, targets)) or "
                              "a 'module:function' name", key=key)
    python_code = {k: v for k, v in code.items() if not isinstance(v, str)}
    given_data = sections.pop("data") if callable(sections.get("data")) else None
    factory = None if model is None or isinstance(model, Mapping) else ModelFactory.of(model)
    if isinstance(experiment, ExperimentSpec):  # validated, flags applied: `edgetune run`
        if sections or model is not None or example_input is not None or code or given_data is not None:
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
        spec = experiment_from(_merged(raw, sections), base, source if not sections else f"{source} with tune() arguments")
    data = _given_data(train_data, val_data, test_data, given_data, spec)
    reporter = progress if isinstance(progress, Reporter) else _reporter(progress)
    outcome = run_study(spec, reporter, Given(factory, data, python_code.get("evaluate"), python_code.get("loss")))
    return TuneResult(outcome, factory)


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

    from edgetune.progress import RichReporter

    return RichReporter(Console())
