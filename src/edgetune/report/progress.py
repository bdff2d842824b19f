"""What a person watching a search sees: trial n of N, the stage, the best so far, and at the
end a table of the best candidates beside the unpruned baseline."""

from __future__ import annotations

from typing import Any

import optuna
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgetune.metrics.record import Recorded
from edgetune.study.planning.plan import Plan
from edgetune.study.planning.references import reference_label
from edgetune.study.records.results import StudyOutcome
from edgetune.study.trial.candidate import CandidateResult
from edgetune.study.trial.reporter import Reporter


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


class RichReporter(Reporter):
    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress: Progress | None = None
        self.task: Any = None
        self.plan: Plan | None = None

    def start(self, plan: Plan, done: int, total: int, baseline: dict[str, float] | None) -> None:
        self.plan = plan
        if self.progress is None:
            self.console.print(f"[bold]{plan.spec.name}[/]: {total} trials, {plan.sweep.method} search, "
                               f"{plan.direction} {plan.objective}; study in {plan.storage}")
            self.progress = Progress(
                TextColumn("[bold]trials"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("{task.description}"), console=self.console, transient=False,
            )
            self.progress.start()
            self.task = self.progress.add_task("measuring the baseline", total=total, completed=done)
        if baseline is not None:
            self.console.print(
                f"baseline: top-1 {baseline['top1']:.2f} %, {baseline['latency_ms']:.3f} ms, "
                f"{baseline['macs'] / 1e6:.1f} M MACs, {baseline['params'] / 1e3:.0f} k params")

    def stage(self, text: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=text)

    def trial_done(self, number: int, params: dict[str, Any], result: CandidateResult | None,
                   note: str | None, best: optuna.trial.FrozenTrial | None, counts: bool = True) -> None:
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in params.items())
        if result is None:
            self.console.print(f"trial {number} [red]failed[/] ({shown}): {escape(note or '')}")
        else:
            m = result.metrics
            if m.get("latency_ms") is not None:
                speed = f"{m['latency_ms']:.3f} ms (x{m['latency_ratio']:.3f} baseline), {m['macs'] / 1e6:.1f} M MACs"
            else:  # skipped on its predicted latency: nothing was exported or timed
                speed = f"predicted x{m.get('predicted_latency_ratio', float('nan')):.3f} baseline, not measured"
            self.console.print(
                f"trial {number}: top-1 {m['top1']:.2f} % (before FT {m['top1_before_ft']:.2f}), {speed}  "
                f"[{shown}]" + (f"\n  [yellow]{escape(note)}[/]" if note else ""))
        if self.progress is not None:
            obj = self.plan.objective if self.plan else "value"
            best_text = f"best {obj} {best.value:.4g} (trial {best.number})" if best else ""
            self.progress.update(self.task, advance=1 if counts else 0, description=best_text)

    def front(self, points: list[tuple[int, float, float]]) -> None:
        """Printed when it changes: the trade-offs found so far, fastest first (at most six)."""
        shown = points if len(points) <= 6 else [points[round(i * (len(points) - 1) / 5)] for i in range(6)]
        text = "  ".join(f"#{n} {ms:.3f} ms {top1:.1f} %" for n, ms, top1 in shown)
        if points and text != getattr(self, "_front_text", None):
            self._front_text = text
            self.console.print(f"  [cyan]front ({len(points)}):[/] {text}")

    def step(self, label: str, done: int, total: int) -> None:
        """A bar per finalist's training (the trials' bar has stopped by then)."""
        if getattr(self, "_step_label", None) != label:
            if getattr(self, "_steps", None) is not None:
                self._steps.stop()
            self._step_label = label
            self._steps = Progress(TextColumn(f"[bold]{escape(label)}"), BarColumn(), MofNCompleteColumn(),
                                   TimeElapsedColumn(), console=self.console, transient=False)
            self._steps.start()
            self._step_task = self._steps.add_task(label, total=total)
        self._steps.update(self._step_task, completed=done, total=total)
        if done >= total:
            self._steps.stop()
            self._steps = None

    def finish(self) -> None:
        if self.progress is not None:
            self.progress.stop()


COLUMNS = [("top1", "top-1 %"), ("top1_before_ft", "before FT"), ("latency_ms", "ms"),
           ("latency_ratio", "× base"), ("throughput", "img/s"), ("macs", "MMACs"), ("params", "kparams")]


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key == "macs":
        return f"{value / 1e6:.1f}"
    if key in ("params", "onnx_bytes"):
        return f"{value / 1e3:.0f}"
    if key == "throughput":
        return f"{value:.0f}"
    if key == "latency_ratio":
        return f"{value:.3f}"
    return f"{value:.3f}" if "latency" in key else f"{value:.2f}"


def results_table(outcome: StudyOutcome, top: int = 8) -> Table:
    plan = outcome.plan
    # Feasible trials only, best first (one objective) or the Pareto front (several).
    done = outcome.best()
    ranked = (f"by {plan.objective} ({plan.direction})" if len(plan.objectives) == 1
              else "on the Pareto front of " + ", ".join(f"{o.metric} ({o.goal})" for o in plan.objectives))
    table = Table(title=f"{plan.spec.name}: best {min(top, len(done))} of {len(done)} feasible trials {ranked}")
    names = sorted({k for t in done for k in t.params})
    shorts = dict(zip(names, _short_names(names), strict=True))
    table.add_column("trial", no_wrap=True)
    for _, head in COLUMNS:
        table.add_column(head, justify="right")
    # One column for the searched settings, wrapped inside its cell: a column per parameter made
    # the table wider than a terminal and cut every header to `depth…`.
    table.add_column("settings", style="cyan", ratio=1)
    table.add_row("base", *(_cell(k, outcome.baseline.get(k)) for k, _ in COLUMNS), "-", style="bold")
    for name, figures in outcome.references().items():  # each reference's mean over its repeats
        label = "ref " + (reference_label(name) if name != "baseline" else "baseline")
        table.add_row(label, *(_cell(k, figures[k][0] if k in figures else None) for k, _ in COLUMNS), "-",
                      style="italic")
    for t in done[:top]:
        settings = " ".join(f"{shorts[n]}={_fmt(t.params[n])}" for n in names if n in t.params)
        table.add_row(str(t.number), *(_cell(k, Recorded.of(t).value(k)) for k, _ in COLUMNS), settings)
    return table


def _short_names(names: list[str]) -> list[str]:
    """`filter_pruner_layer_1`, `filter_pruner_layer_3.1` -> `1`, `3.1`: headers that fit."""
    if len(names) < 2:
        return names
    import os

    prefix = os.path.commonprefix(names)
    return [n[len(prefix):] or n for n in names] if all(n != prefix for n in names) else names


def final_table(outcome: StudyOutcome) -> Table | None:
    """The closing table: the finalists and references re-scored on the whole validation split,
    the bound on what each loses, and test top-1 where the stage measured it (after the pick)."""
    final = outcome.final
    if final is None:
        return None
    held = (f"may lose at most {final.max_drop:.2f} pt at {final.confidence:.0%}" if final.max_drop is not None
            else "no accuracy constraint")
    table = Table(title=f"final pick ({held}): " + (f"trial {final.picked}" if final.picked is not None
                                                     else "none") + f" - {final.reason}")
    # Short heads and unwrapped names: the table fits 100 columns (the caption says what each is).
    table.add_column("network", no_wrap=True)
    for head in ("val %", "lost", f"bound {final.confidence:.0%}", "held", "test %", "× base", "speed-up"):
        table.add_column(head, justify="right")
    table.caption = ("val %: top-1 on the whole validation split after the final training; lost: points under "
                     "the unpruned network, paired image by image; bound: at most that many at the confidence; "
                     "test %: measured once, after the pick; × base: latency against the unpruned network")
    base = final.records.get("baseline", {})
    table.add_row("unpruned", _pct(base.get("final_val_top1")), "-", "-", "-", _pct(final.test_top1.get("baseline")),
                  "1.000", "1.00x", style="bold")
    for key, r in final.records.items():
        if key == "baseline":
            continue
        name = ("ref " + reference_label(r["reference"])) if r.get("reference") else f"trial {key}"
        ratio = r.get("latency_ratio")
        table.add_row(name, _pct(r["final_val_top1"]), f"{r['final_drop']:+.2f}", f"{r['final_drop_upper']:.2f}",
                      "yes" if r["held"] else "no", _pct(final.test_top1.get(key)),
                      f"{ratio:.3f}" if ratio else "-", f"{1 / ratio:.2f}x" if ratio else "-",
                      style="green" if str(final.picked) == key else "italic" if r.get("reference") else None)
    return table


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
