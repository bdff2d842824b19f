"""One small interface per search strategy, each driving Optuna through ask/tell.

A strategy chooses the sampler, and may also drive the loop itself: the RL agent walks the
network layer by layer and hands the study a complete set of ratios per episode. Either way
each candidate is an ordinary trial of the same study: recorded, resumable, reported.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from edgetune.catalog import SEARCH_STRATEGIES, load_plugin
from edgetune.config.sweep import SweepSpec
from edgetune.metrics.record import Recorded


@dataclass
class TrialOutcome:
    """What a strategy learns from one trial."""

    number: int
    params: dict[str, Any]
    state: TrialState  # COMPLETE, PRUNED or FAIL
    values: list[float] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    feasible: bool = True


RunTrial = Callable[[dict[str, Any] | None], TrialOutcome]


@dataclass
class SearchContext:
    sweep: SweepSpec
    seed: int
    directions: list[str]
    source: str = "<sweep>"
    run_dir: Path | None = None
    # Filled by the study for strategies that need the network (RL): one entry per searched
    # parameter, with the layer features of the weights it prunes.
    layers: list[dict[str, Any]] = field(default_factory=list)
    baseline: dict[str, Any] = field(default_factory=dict)
    protocol_reward: Callable[[TrialOutcome], float] | None = None


class Strategy(ABC):
    """A way to choose the next candidate. A caller may assume: `sampler` returns an Optuna
    sampler that proposes values inside the sweep's space (the study asks, evaluates and tells
    through Optuna, so any storage and resume work unchanged), and `drive` runs trials until
    `done()`. An implementation that keeps state of its own (the RL agent) must save it in
    `ctx.run_dir` after each trial, so a resumed study resumes it, and declare in its catalog
    row whether it handles several objectives, needs layer features or searches a finite space
    (`StrategyTraits`)."""

    name: str
    multi_objective: bool = True

    @abstractmethod
    def sampler(self, ctx: SearchContext) -> optuna.samplers.BaseSampler:
        """The Optuna sampler that proposes candidates (or fills in fixed ones)."""

    def drive(self, ctx: SearchContext, run_trial: RunTrial, done: Callable[[], bool]) -> None:
        """Run trials until `done()`; the sampler proposes each one."""
        while not done():
            run_trial(None)


STRATEGIES = SEARCH_STRATEGIES


def get_strategy(name: str) -> Strategy:
    return load_plugin(STRATEGIES, name, "search method", "method")  # type: ignore[return-value]


def constraint_values(names: Sequence[str], values: Sequence[float]) -> dict[str, float]:
    """The verdict as Optuna stores it (its convention: <= 0 holds), keyed in the constraints'
    order. A missing metric counts as broken by a large finite amount: the GP standardises these
    values and an infinity would poison it."""
    return {f"{i:02d}:{name}": min(float(value), 1e9) for i, (name, value) in enumerate(zip(names, values, strict=True))}


def record_constraints(trial: optuna.Trial, names: Sequence[str], values: Sequence[float]) -> None:
    """Store the verdict with `Trial.set_constraint`, where every constrained sampler and every
    report reads it."""
    for key, value in constraint_values(names, values).items():
        trial.set_constraint(key, value)


def is_feasible(trial: optuna.trial.FrozenTrial) -> bool:
    """Every constraint held, on a latency that can be trusted: a measurement taken on a busy
    host (`latency_unreliable`) is kept and shown, but never picked."""
    return all(v <= 0 for v in trial.constraints.values()) and not Recorded.of(trial).latency_unreliable
