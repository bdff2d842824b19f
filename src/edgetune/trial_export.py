"""Take one trial out of a study: its ONNX file, a PyTorch checkpoint that rebuilds the
compressed network on its own, the recipe that made it and its metrics, checked on the way out
(the checkpoint, reloaded, must give the ONNX file's outputs)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
import torch
import yaml

from edgetune.errors import EdgetuneError
from edgetune.objectives import Objective


@dataclass
class ExportedTrial:
    number: int
    files: list[Path]
    max_abs_diff: float


def open_study(run_dir: Path, storage: str | None = None) -> optuna.Study:
    resolved = run_dir / "experiment.resolved.yaml"
    if not resolved.is_file():
        raise EdgetuneError(f"{run_dir} holds no edgetune study (no experiment.resolved.yaml); give the run directory "
                            "that `edgetune run` wrote")
    spec = yaml.safe_load(resolved.read_text())
    storage = storage or spec.get("storage") or f"sqlite:///{run_dir / 'study.db'}"
    if ":***@" in storage:
        raise EdgetuneError(f"{run_dir} records its study in {storage}, whose password is not kept; give --storage")
    if storage.startswith(("redis://", "rediss://")):
        from optuna.storages.journal import JournalRedisBackend, JournalStorage

        return optuna.load_study(study_name=spec["name"], storage=JournalStorage(JournalRedisBackend(storage)))
    return optuna.load_study(study_name=spec["name"], storage=storage)


def best_trial(study: optuna.Study) -> int:
    from edgetune.study import best_trials, feasible_trials

    goals = [Objective("", "minimize" if d == optuna.study.StudyDirection.MINIMIZE else "maximize")
             for d in study.directions]
    ranked = best_trials(feasible_trials(study), goals)
    if not ranked:
        raise EdgetuneError("no feasible completed trial yet: nothing to call best")
    if len(goals) > 1:
        front = sorted(t.number for t in ranked)
        raise EdgetuneError(f"this study has {len(goals)} objectives and no single best; "
                            f"give --trial with one of its Pareto front: {', '.join(map(str, front))}")
    return ranked[0].number


def export_trial(run_dir: Path, trial: str, out: Path, storage: str | None = None) -> ExportedTrial:
    study = open_study(run_dir, storage)
    number = best_trial(study) if trial == "best" else int(trial)
    source = run_dir / "trials" / f"{number:04d}"
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
    return ExportedTrial(number, files, reload_difference(out / "model.pt", out / "model.onnx"))


def reload_difference(checkpoint: Path, onnx_path: Path) -> float:
    """Largest |difference| between the reloaded checkpoint and the ONNX file on one input."""
    import onnxruntime as ort

    from edgetune.models import load_checkpoint

    model, _ = load_checkpoint(checkpoint)
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
