"""Acting on the width profile before a candidate exists: which widths a search may choose,
what a setting of the sweep will cost, and which settings to try first.

Building and timing a candidate takes seconds to minutes; predicting it from the profile takes
microseconds, and on ResNet-56 the prediction was within 10 % of the measurement on every one
of 120 trials (docs/hardware-aware.md). So a study can refuse to spend a measurement on a
candidate predicted to break its latency budget, and can open with candidates predicted to sit
on the fast, lightly pruned edge of the space.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from edgetune.compress.base import CompressionContext, PrunerOptions, count_to_remove
from edgetune.config.recipe import Schedule
from edgetune.config.sweep import ParameterSpec, SweepSpec
from edgetune.errors import ConfigError
from edgetune.hardware.widths import WidthTable
from edgetune.search.space.mapping import Target, apply
from edgetune.search.space.parameters import applied_values, distribution, fixed_values, grid_values, searched

LATENCY_METRICS = ("latency_ratio", "latency_ms", "latency_adj_ms")


def measured_width_values(name: str, spec: ParameterSpec, target: Target, schedule: Schedule, table: WidthTable,
                          source: str = "<sweep>") -> list[int]:
    """The widths on every one of the pruner's layers' staircases, within `min`/`max`."""
    key = f"parameters.{name}"
    if target.section != "pruners" or target.field != "width":
        raise ConfigError(f"`widths: measured` applies to a pruner's width ('<pruner>_width'), but '{name}' sets "
                          f"{target.section}.{target.field}", source=source, key=key)
    weights = [w.removeprefix("module.") for w in schedule.pruners[target.instance].weights]
    steps = table.staircases()
    missing = [w for w in weights if w not in steps]
    if missing:
        raise ConfigError(f"no width profile for {', '.join(missing)}: `widths: measured` needs filter pruning of "
                          "profiled layers (edgetune profile-widths)", source=source, key=key)
    fulls = {w: table.full_width(w) for w in weights}
    if len(set(fulls.values())) > 1:
        listed = ", ".join(f"{w} has {n}" for w, n in fulls.items())
        raise ConfigError(f"'{name}' sets one width for layers of different widths ({listed}); split the pruner "
                          "by width or search desired_sparsity", source=source, key=key)
    common = set.intersection(*(set(steps[w]) for w in weights))
    lo = spec.min if spec.min is not None else 0
    hi = spec.max if spec.max is not None else math.inf
    values = sorted(w for w in common if lo <= w <= hi)
    if not values:
        raise ConfigError(f"no measured fast width of '{name}' lies in [{lo}, {hi}]; the staircase is "
                          f"{sorted(common)}", source=source, key=key)
    return values


def resolve_measured_widths(sweep: SweepSpec, targets: dict[str, Target], schedule: Schedule, table: WidthTable,
                            source: str = "<sweep>") -> tuple[SweepSpec, dict[str, list[int]]]:
    """The sweep with every `widths: measured` parameter turned into a categorical one over its
    fast widths (a new sweep: the one given is left as it was), and what each became."""
    chosen = {name: measured_width_values(name, spec, targets[name], schedule, table, source)
              for name, spec in sweep.parameters.items() if spec.widths == "measured"}
    parameters = {name: spec.model_copy(update={"values": chosen[name], "distribution": "categorical"})
                  if name in chosen else spec for name, spec in sweep.parameters.items()}
    return sweep.model_copy(update={"parameters": parameters}), chosen


def planned_widths(schedule: Schedule, table: WidthTable, staircases: dict[str, list[int]] | None = None
                   ) -> dict[str, int] | None:
    """The width each filter-pruned layer will keep, computed as the pruners compute it (ratio,
    `width`, rounding, one cut per coupled group), without touching the model. None when a
    pruner's layers are not all profiled or a pruner is not filter pruning (no prediction)."""
    ctx = CompressionContext(example=None, staircases=staircases)  # type: ignore[arg-type]
    group_of = {w: first for first, members in table.groups.items() for w in members}
    widths: dict[str, int] = {}
    for spec in schedule.pruners.values():
        if spec.family != "filters":
            return None
        options, claimed = PrunerOptions.of(spec), set()
        for weight in spec.weights:
            name = weight.removeprefix("module.")
            full = table.full_width(name)
            if full is None:
                return None
            group = group_of.get(name, name)
            if group in claimed:
                continue  # pruned with the first of its group, as the pruner records it
            claimed.add(group)
            requested = full - count_to_remove(spec.desired_sparsity, full)
            widths[weight] = options.kept_width(weight, requested, full, ctx)
    return widths


def kept_widths(records: Sequence[Any]) -> dict[str, int]:
    """The widths a pruned network kept, from its compression records (layers pruned with the
    first of their coupled group carry no width of their own)."""
    return {r.weight: r.before - r.removed for r in records if r.skipped is None}


def _planned(raw_schedule: dict[str, Any], targets: dict[str, Target], params: dict[str, Any], table: WidthTable,
             staircases: dict[str, list[int]] | None) -> dict[str, int] | None:
    schedule, _ = apply(raw_schedule, targets, params)
    return planned_widths(schedule, table, staircases)


def predicted_ratio(raw_schedule: dict[str, Any], targets: dict[str, Target], params: dict[str, Any],
                    table: WidthTable, staircases: dict[str, list[int]] | None = None) -> float | None:
    widths = _planned(raw_schedule, targets, params, table, staircases)
    return table.predict_ratio(widths) if widths is not None else None


def kept_fraction(widths: dict[str, int], table: WidthTable) -> float:
    """Channels kept over channels there were, across the pruned layers: the cheap stand-in for
    accuracy (less pruning, less lost) the warm start trades against predicted latency."""
    full = sum(table.full_width(w) or 0 for w in widths)
    return sum(widths.values()) / full if full else 1.0


def random_settings(sweep: SweepSpec, targets: dict[str, Target], n: int, seed: int) -> list[dict[str, Any]]:
    """n draws of the pruning parameters (the others are left to the search's sampler)."""
    rng = np.random.default_rng(seed)
    specs = {k: s for k, s in searched(sweep).items() if targets[k].section == "pruners"}
    out = []
    for _ in range(n):
        draw: dict[str, Any] = {}
        for name, s in specs.items():
            draw[name] = _draw(distribution(s), rng)
        out.append(draw)
    return out


def _draw(d: optuna.distributions.BaseDistribution, rng: np.random.Generator) -> Any:
    """One uniform draw from a distribution (log-uniform on its log scale, stepped on its grid)."""
    values = grid_values(d) if not isinstance(d, optuna.distributions.FloatDistribution) or d.step else None
    if values is not None:
        return values[int(rng.integers(len(values)))]
    if d.log:  # type: ignore[union-attr]
        return float(math.exp(rng.uniform(math.log(d.low), math.log(d.high))))  # type: ignore[union-attr]
    return float(rng.uniform(d.low, d.high))  # type: ignore[union-attr]


@dataclass(frozen=True)
class Candidate:
    params: dict[str, Any]
    predicted_ratio: float
    kept: float


def warm_start(sweep: SweepSpec, raw_schedule: dict[str, Any], targets: dict[str, Target], table: WidthTable,
               budget: float | None, k: int, seed: int) -> list[Candidate]:
    """k settings spread along the predicted front of latency against channels kept, within the
    latency budget (a ratio to the baseline) when there is one, chosen among the sweep's
    `predictor.candidates` random draws; the lightest-pruned setting predicted to fit is always
    among them."""
    fixed = {n: v for n, v in fixed_values(sweep).items() if targets[n].section == "pruners"}
    staircases = table.staircases()
    scored = []
    for draw in random_settings(sweep, targets, sweep.predictor.candidates, seed):
        widths = _planned(raw_schedule, targets, {**fixed, **applied_values(sweep, draw)}, table, staircases)
        ratio = table.predict_ratio(widths) if widths is not None else None
        if ratio is None:
            return []
        if budget is None or ratio <= budget:
            scored.append(Candidate(draw, ratio, kept_fraction(widths, table)))
    front = _front(scored)
    if not front or k <= 0:
        return []
    picks = sorted({round(i) for i in np.linspace(0, len(front) - 1, min(k, len(front)))})
    return [front[i] for i in picks]


def _front(points: Sequence[Candidate]) -> list[Candidate]:
    """Points no other beats on both lower predicted latency and more channels kept, fastest first."""
    front: list[Candidate] = []
    for c in sorted(points, key=lambda c: (c.predicted_ratio, -c.kept)):
        if not front or c.kept > front[-1].kept:
            front.append(c)
    return front


def latency_budget(constraints: Sequence[Any], baseline: dict[str, Any]) -> float | None:
    """The tightest latency `max` among the constraints, as a ratio to the baseline."""
    budgets = []
    for c in constraints:
        if c.max is None or c.metric not in LATENCY_METRICS:
            continue
        if c.metric == "latency_ratio":
            budgets.append(c.max)
        elif baseline.get("latency_ms"):
            budgets.append(c.max / baseline["latency_ms"])
    return min(budgets) if budgets else None


# skip_margin: auto starts at 10 % (nn-Meter's +-10 % band) and, once five trials have measured
# the predictor, becomes 1.5x its largest error so far, never under 2 % (timing noise).
AUTO_MARGIN_START, AUTO_MARGIN_AFTER, AUTO_MARGIN_FLOOR = 0.10, 5, 0.02


def skip_margin(setting: float | str, errors: Sequence[float]) -> float:
    """The configured margin, or (auto) one learnt from this study's own prediction errors."""
    if setting != "auto":
        return float(setting)
    if len(errors) < AUTO_MARGIN_AFTER:
        return AUTO_MARGIN_START
    return max(AUTO_MARGIN_FLOOR, 1.5 * max(abs(e) for e in errors))


def predicted_metrics(ratio: float, baseline: dict[str, Any]) -> dict[str, float]:
    """The latency metrics a prediction stands for (constraints and objectives read these)."""
    out = {"latency_ratio": ratio}
    if baseline.get("latency_ms"):
        out["latency_ms"] = out["latency_adj_ms"] = ratio * baseline["latency_ms"]
    return out
