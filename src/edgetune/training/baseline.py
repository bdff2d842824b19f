"""Whole training runs: a network trained for epochs on a cosine schedule, checkpointed and
resumable after every epoch (a 2-core CPU needs hours, so a run is done in parts): the baseline
of `edgetune train`, and a search's finalist trained again in the final stage."""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgetune.data.splits import DataSplits
from edgetune.errors import EdgetuneError
from edgetune.files import atomic_write_bytes
from edgetune.models.registry import save_checkpoint
from edgetune.training.loop import Training, evaluate, teaching_for, train_epoch


def cosine_schedule(optimizer: torch.optim.Optimizer, total_steps: int, warmup: int = 0
                    ) -> torch.optim.lr_scheduler.LambdaLR:
    """The learning rate stepped once per training step: a linear ramp over `warmup` steps (for
    training from scratch), then a half cosine down to zero at `total_steps` (a network that
    already works is fine-tuned without the ramp)."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _sgd_cosine(model: nn.Module, lr: float, weight_decay: float, total_steps: int, warmup: int):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    return optimizer, cosine_schedule(optimizer, total_steps, warmup)


def _state_path(out: Path) -> Path:
    return out.with_name(out.name + ".train-state")


def training_completed(out: Path, meta: dict[str, Any], epochs: int) -> bool:
    """Whether `out` (its metadata `meta`) is what a completed `epochs`-epoch `train_baseline`
    left: every epoch done, the final figures written, the resume state deleted (last). A caller
    killed after the training, before its own next step, reuses it rather than training again."""
    return (meta.get("epochs_done") == epochs and "train_seconds" in meta and out.is_file()
            and not _state_path(out).exists())


def _resume(state_path: Path, epochs: int, run: dict[str, Any], log: Callable[[str], None]
            ) -> tuple[int, float, list[dict[str, float]]]:
    """(first epoch, seconds so far, history): a saved training state restored into `run`'s model,
    optimizer, scheduler and generator, or a fresh start."""
    if not state_path.is_file():
        return 0, 0.0, []
    start_over = f"delete {state_path} to start over"
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torn, truncated or not ours: the same advice
        raise EdgetuneError(f"{state_path} is not a training state edgetune can resume from "
                            f"({type(exc).__name__}); {start_over}") from None
    if not isinstance(state, dict) or "epochs" not in state:
        raise EdgetuneError(f"{state_path} is not a training state edgetune wrote; {start_over}")
    if state["epochs"] != epochs:
        raise EdgetuneError(f"{state_path} belongs to a {state['epochs']}-epoch run, not {epochs}: pass the same "
                            f"--epochs, or {start_over}")
    try:
        for key in ("model", "optimizer", "scheduler"):
            run[key].load_state_dict(state[key])
        run["generator"].set_state(state["generator"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise EdgetuneError(f"{state_path} holds another network's training ({type(exc).__name__}: "
                            f"{str(exc)[:200]}); {start_over}") from None
    log(f"resuming from {state_path} at epoch {state['epoch']}/{epochs}")
    return state["epoch"], state["elapsed_s"], list(state["history"])


def _save_state(state_path: Path, run: dict[str, Any], epoch: int, epochs: int, elapsed: float,
                history: list[dict[str, float]]) -> None:
    """What resuming needs, written beside the checkpoint and renamed into place."""
    buf = io.BytesIO()
    torch.save({"model": run["model"].state_dict(), "optimizer": run["optimizer"].state_dict(),
                "scheduler": run["scheduler"].state_dict(), "generator": run["generator"].get_state(),
                "epoch": epoch, "epochs": epochs, "elapsed_s": elapsed, "history": history}, buf)
    atomic_write_bytes(state_path, buf.getvalue())


def train_baseline(model: nn.Module, data: DataSplits, training: Training, *, out: Path, meta: dict[str, Any],
                   log: Callable[[str], None] = print,
                   on_step: Callable[[int, int], None] = lambda done, total: None,
                   score_test: bool = True) -> dict[str, Any]:
    """`training` from its first epoch to its last, checkpointing and resuming every epoch: from
    scratch (`edgetune train`, the rate ramped over `training.warmup_epochs` first), or a finalist
    trained again (no ramp: one epoch of ramp was all of a one-epoch final training; a teacher
    asked once per image unless augmented; its norm statistics settled at the end;
    `score_test=False`). `out` holds the latest weights, `out.train-state` what resuming needs."""
    t = training
    dev = torch.device(t.device)
    # The split it never trained on, which a study checks before scoring it (study.trial.network).
    meta = {**meta, **({"held_out": asdict(data.held_out)} if data.held_out is not None else {})}
    model.to(dev)
    steps_per_epoch, epochs = math.ceil(len(t.split or data.train) / t.batch_size), t.epochs
    optimizer, scheduler = _sgd_cosine(model, t.lr, t.weight_decay, epochs * steps_per_epoch,
                                       t.warmup_epochs * steps_per_epoch)
    generator, state_path = torch.Generator().manual_seed(t.seed), _state_path(out)
    run = {"model": model, "optimizer": optimizer, "scheduler": scheduler, "generator": generator}
    start_epoch, elapsed, history = _resume(state_path, epochs, run, log)
    total_steps = epochs * steps_per_epoch
    # The schedule advances per step; `on_step` shows it (an epoch is minutes on a CPU).
    step = lambda: (scheduler.step(), on_step(min(scheduler.last_epoch, total_steps), total_steps))
    on_step(start_epoch * steps_per_epoch, total_steps)
    once = not t.augmented and start_epoch < epochs
    teacher, seconds = teaching_for(t.teacher, data, t.split or data.train, dev, once=once, precision=t.precision)
    taught = replace(t, teacher=teacher)
    elapsed += seconds  # the training's cost: `train_seconds` counts it
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        train_loss = train_epoch(model, data, optimizer, taught, generator=generator, step_hook=step)
        val = evaluate(model, data, data.val, device=dev)
        elapsed += time.perf_counter() - t0
        history.append({"epoch": epoch + 1, "train_loss": train_loss, "lr": optimizer.param_groups[0]["lr"],
                        **val.as_dict("val_")})
        save_checkpoint(out, model, {**meta, "epochs_done": epoch + 1, **val.as_dict("val_")})
        _save_state(state_path, run, epoch + 1, epochs, elapsed, history)
        log(f"epoch {epoch + 1}/{epochs}  loss {train_loss:.4f}  val top1 {val.top1:.2f}  top5 {val.top5:.2f}  "
            f"({elapsed:.0f}s)")
    if t.settle is not None and epochs:
        elapsed += _seconds(t.settle, model)
    final = _finish(model, data, dev, out, {**meta, "epochs_done": epochs, "train_seconds": round(elapsed, 1)},
                    score_test)
    state_path.unlink(missing_ok=True)
    return {**final, "history": history}


def _seconds(work: Callable[[nn.Module], object], model: nn.Module) -> float:
    t0 = time.perf_counter()
    work(model)
    return time.perf_counter() - t0


def _finish(model: nn.Module, data: DataSplits, dev: torch.device, out: Path, meta: dict[str, Any],
            score_test: bool = True) -> dict[str, Any]:
    """The final checkpoint, with its validation (and test) figures in its metadata."""
    val = evaluate(model, data, data.val, device=dev)
    test = evaluate(model, data, data.test, device=dev).as_dict("test_") if score_test else {}
    final = {**meta, "device": str(dev), **val.as_dict("val_"), **test}
    save_checkpoint(out, model.cpu(), final)
    return final
