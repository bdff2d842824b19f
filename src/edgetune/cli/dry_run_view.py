"""What `edgetune run --dry-run` prints: the search a study would run, and what its recipe
removes from the network at the sweep's two bounds, read before an hour is spent on it."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from rich.console import Group
from rich.table import Table

from edgetune.config.sweep import BETA, NORMAL, ParameterSpec
from edgetune.search.space.parameters import distribution, grid_values, searched
from edgetune.study.runner import DryRun


def _range(spec: ParameterSpec) -> str:
    if spec.widths == "measured":
        return "measured widths" + (f" in [{spec.min}, {spec.max}]" if spec.min is not None else "")
    if spec.values is not None:
        return ", ".join(map(str, spec.values))
    dist = spec.distribution or ""
    if dist in NORMAL:
        return f"mu {spec.mu if spec.mu is not None else 0}, sigma {spec.sigma if spec.sigma is not None else 1}"
    if dist in BETA:
        return f"a {spec.a if spec.a is not None else 1}, b {spec.b if spec.b is not None else 1}"
    return f"{spec.min} .. {spec.max}" + (f" step {spec.q}" if spec.q else "")


def space_size(run: DryRun) -> str:
    sizes = []
    for spec in searched(run.plan.sweep).values():
        if spec.widths == "measured":
            return "set once the widths are measured"
        values = grid_values(distribution(spec))
        if values is None:
            return "continuous"
        sizes.append(len(values))
    total = 1
    for n in sizes:
        total *= n
    return f"{total} candidate(s)"


def parameters_table(run: DryRun) -> Table:
    table = Table(title=f"{run.plan.spec.name}: {run.plan.sweep.method} search, {run.plan.limit} trial(s), "
                        f"space {space_size(run)}")
    for column in ("parameter", "sets", "distribution", "range"):
        table.add_column(column)
    for name, spec in run.plan.sweep.parameters.items():
        target = run.plan.targets[name]
        where = ".".join(p for p in (target.section, target.instance, target.field) if p)
        table.add_row(name, where, spec.distribution or "measured", _range(spec))
    return table


def bounds_table(run: DryRun) -> Table:
    """Per pruned layer: its size, and what the least and the most pruning remove from it."""
    removed: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
    for bound in run.bounds:
        blocks: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for r in bound.records:
            if r.unit == "blocks":  # one record per block: said per pruner, kept of all
                blocks[r.pruner][0] += r.before
                blocks[r.pruner][1] += r.removed
                continue
            cell = "with its block" if r.skipped and r.skipped.startswith("removed with") else (
                "skipped: " + r.skipped if r.skipped else f"-{r.removed} {r.unit}")
            row = removed[(r.pruner, r.weight)]
            row[bound.label] = cell
            row["before"] = max(row.get("before", 0), r.before)
        for pruner, (total, gone) in blocks.items():
            removed[(pruner, "residual blocks")].update(before=total, **{bound.label: f"-{gone} blocks"})
    table = Table(title="the recipe at the sweep's bounds (nothing measured)")
    for column in ("pruner", "layer", "size", *(b.label for b in run.bounds)):
        table.add_column(column)
    for (pruner, weight), row in sorted(removed.items(), key=lambda item: item[0][0]):
        table.add_row(pruner, weight, str(row.get("before", "")), *(row.get(b.label, "-") for b in run.bounds))
    table.add_row("", "MMACs", f"{run.macs / 1e6:.1f}", *(f"{b.macs / 1e6:.1f}" for b in run.bounds), end_section=True)
    table.add_row("", "kparams", f"{run.parameters / 1e3:.0f}", *(f"{b.parameters / 1e3:.0f}" for b in run.bounds))
    return table


def dry_run_view(run: DryRun) -> Group:
    notes = [f"note: {n}" for n in (*run.plan.schedule.notes(), *(f"unused W&B key {k}" for k in run.plan.sweep.unused()))]
    objectives = ", ".join(f"{o.goal} {o.metric}" for o in run.plan.objectives)
    constraints = ", ".join(f"{c.metric} in [{c.min}, {c.max}]" for c in run.plan.constraints) or "none"
    if (protocol := run.plan.sweep.protocol) is not None:
        constraints += f"; protocol {protocol.name} (at most {protocol.max_accuracy_drop:g} point(s) of top-1 lost)"
    return Group(parameters_table(run), f"objectives: {objectives}; constraints: {constraints}", bounds_table(run),
                 *notes, f"nothing was written; the study would go to {run.plan.run_dir}")
