"""What a user wants, as numbers: objectives, hard constraints, the second seed's protocols,
the RL reward, and the Pareto front of feasible trials."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgetune.config.sweep import ProtocolSpec, SweepSpec
from edgetune.metrics.table import ACCURACY, METRICS, resolve_metric


@dataclass(frozen=True)
class Objective:
    metric: str
    goal: str

    @property
    def direction(self) -> str:
        return self.goal


@dataclass(frozen=True)
class Constraint:
    metric: str
    min: float | None = None
    max: float | None = None
    why: str = ""

    @property
    def on_resources(self) -> bool:
        """Fine-tuning cannot change it: checked on the pruned network before any training. A
        metric of the user's `evaluate` function scores the network's outputs, so it can."""
        return self.metric in METRICS and self.metric not in ACCURACY

    def violation(self, metrics: dict[str, Any]) -> float:
        """Optuna's convention: <= 0 holds; > 0 by how much it is broken."""
        value = metrics.get(self.metric)
        if value is None:
            return float("inf")
        over = (value - self.max) if self.max is not None else float("-inf")
        under = (self.min - value) if self.min is not None else float("-inf")
        return float(max(over, under))

    def describe(self, metrics: dict[str, Any]) -> str:
        bound = " and ".join(p for p in (self.min is not None and f">= {self.min:g}",
                                         self.max is not None and f"<= {self.max:g}") if p)
        return f"{self.metric} {metrics.get(self.metric)!r} is not {bound}{self.why}"


def objectives_of(sweep: SweepSpec, source: str, custom: bool = False) -> list[Objective]:
    return [Objective(resolve_metric(o.metric, source, custom), o.goal) for o in sweep.objective_list()]


def constraints_of(sweep: SweepSpec, source: str, custom: bool = False) -> list[Constraint]:
    return [Constraint(resolve_metric(c.metric, source, custom), c.min, c.max) for c in sweep.constraints]


def protocol_constraints(protocol: ProtocolSpec | None, baseline: dict[str, Any]) -> list[Constraint]:
    """accuracy-guaranteed: top-1 may fall at most `max_accuracy_drop` points below the baseline's."""
    if protocol is None or protocol.name != "accuracy-guaranteed":
        return []
    floor = baseline["top1"] - protocol.max_accuracy_drop
    return [Constraint("top1", min=floor, why=f" (baseline {baseline['top1']:.2f} - {protocol.max_accuracy_drop:g})")]


def violations(constraints: list[Constraint], metrics: dict[str, Any],
               resources_only: bool = False) -> tuple[list[float], list[str]]:
    values, reasons = [], []
    for c in constraints:
        if resources_only and not c.on_resources:
            values.append(0.0)
            continue
        v = c.violation(metrics)
        values.append(v)
        if v > 0:
            reasons.append(c.describe(metrics))
    return values, reasons


def reward(protocol: ProtocolSpec | None, objectives: list[Objective], metrics: dict[str, Any],
           baseline: dict[str, Any]) -> float:
    """The RL agent's reward for a feasible episode (broken thresholds get the flat penalty)."""
    if protocol is not None and protocol.name == "accuracy-guaranteed":
        w = protocol.weights
        gain = {
            "latency": 1.0 - metrics["latency_ratio"] if metrics.get("latency_ratio") is not None
            else 1.0 - metrics["latency_ms"] / baseline["latency_ms"],
            "size": 1.0 - metrics["model_bytes"] / baseline["model_bytes"],
            "macs": 1.0 - metrics["macs"] / baseline["macs"],
        }
        return float(sum(w.get(k, 0.0) * gain[k] for k in gain))
    if protocol is not None and protocol.name == "resource-constrained":
        return float(metrics["top1"]) / 100.0
    (obj,) = objectives
    value, base = float(metrics[obj.metric]), float(baseline.get(obj.metric) or 1.0)
    if obj.metric in ACCURACY and not obj.metric.startswith("loss"):
        return value / 100.0 if obj.goal == "maximize" else -value / 100.0
    return 1.0 - value / base if obj.goal == "minimize" else value / base - 1.0


def pareto_front(points: list[tuple[Any, list[float]]], objectives: list[Objective]) -> list[Any]:
    """The items whose objective values no other item dominates."""
    signs = [1.0 if o.goal == "minimize" else -1.0 for o in objectives]
    keyed = [(item, [s * v for s, v in zip(signs, values, strict=True)]) for item, values in points]

    def dominates(a: list[float], b: list[float]) -> bool:
        return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))

    return [item for item, v in keyed if not any(dominates(w, v) for _, w in keyed)]
