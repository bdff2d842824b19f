"""Take one trial out of a study: its ONNX file, a PyTorch checkpoint that rebuilds the
compressed network on its own, the recipe that made it and its metrics, checked on the way out
(the checkpoint, reloaded, must give the ONNX file's outputs)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgetune.errors import ConfigError, EdgetuneError
from edgetune.files import atomic_write_json
from edgetune.metrics.record import Recorded
from edgetune.models import load_checkpoint
from edgetune.models.factory import ModelFactory
from edgetune.study.records.held import read_final
from edgetune.study.records.results import best_trial_number, open_study, run_factory
from edgetune.study.storage.rundir import RunDir


@dataclass
class ExportedTrial:
    number: int
    files: list[Path]
    max_abs_diff: float
    final: dict[str, Any] | None = None  # the final stage's figures (validation, bound, test)


def _number(trial: str, study: Any) -> int:
    """`--trial`'s value as one of the study's trial numbers, or an error listing them."""
    numbers = [t.number for t in study.get_trials(deepcopy=False)]
    span = f"{min(numbers)}-{max(numbers)}" if numbers else "none yet"
    try:
        number = int(trial)
    except ValueError:
        raise ConfigError(f"--trial {trial!r}: give 'best' or a trial number (this study's: {span})",
                          key="--trial") from None
    if number not in numbers:
        raise ConfigError(f"--trial {number}: the study has no such trial (its trials: {span})", key="--trial")
    return number


def export_trial(run_dir: Path, trial: str, out: Path, storage: str | None = None,
                 factory: ModelFactory | None = None) -> ExportedTrial:
    """`best`: the final stage's pick when it made one, else the search's best feasible trial.
    A trial the final stage trained again leaves with those weights and their figures."""
    study = open_study(run_dir, storage)
    paths = RunDir(run_dir)
    picked = json.loads(paths.pick.read_text()).get("picked") if paths.pick.is_file() else None
    number = (picked if picked is not None else best_trial_number(study)) if trial == "best" else _number(trial, study)
    repeat_of = next((Recorded.of(t).duplicate_of for t in study.get_trials(deepcopy=False) if t.number == number),
                     None)
    number = repeat_of if repeat_of is not None else number  # a repeat's files are the first trial's
    source = RunDir(run_dir).trial(number)
    checkpoint, onnx_path = source / "model.pt", source / "model.onnx"
    missing = [p.name for p in (checkpoint, onnx_path) if not p.is_file()]
    if missing:
        raise EdgetuneError(f"trial {number} has no {' or '.join(missing)} in {source}: it failed or stopped before "
                            "its model was final (see trials.csv)")
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for path in sorted(source.iterdir()):
        if path.is_file() and not path.name.endswith(".tmp"):
            shutil.copy2(path, out / path.name)
            files.append(out / path.name)
    final = read_final(paths.final).get(str(number))
    trained = paths.finalist(number)
    if final is not None:
        if (trained / "model.pt").is_file():  # the final training's weights replace the search's
            for name in ("model.pt", "model.onnx"):
                shutil.copy2(trained / name, out / name)
        atomic_write_json(out / "final.json", final, indent=2)
        files.append(out / "final.json")
    difference = reload_difference(out / "model.pt", out / "model.onnx", factory or run_factory(run_dir))
    return ExportedTrial(number, files, difference, final)


def reload_difference(checkpoint: Path, onnx_path: Path, factory: ModelFactory | None = None) -> float:
    """Largest |difference| between the reloaded checkpoint and the ONNX file on one input."""
    import onnxruntime as ort

    model, _ = load_checkpoint(checkpoint, factory=factory)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    spec = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in spec.shape]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(x)).numpy()
    got = session.run(None, {spec.name: x})[0]
    diff = float(np.abs(got - expected).max())
    if diff > 1e-3 * max(1.0, float(np.abs(expected).max())):
        raise EdgetuneError(f"{checkpoint} reloaded gives outputs {diff:.3g} away from {onnx_path}: the checkpoint does "
                            "not rebuild this model")
    return diff
