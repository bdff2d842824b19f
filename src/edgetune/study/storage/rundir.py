"""Every path of a run directory in one place: the study, the baseline, each trial's files, the
target's profiles and the outputs made from them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def resolved_experiment(self) -> Path:
        """The experiment as run (flags applied, secrets redacted): what reopens the study."""
        return self.root / "experiment.resolved.yaml"

    @property
    def database(self) -> Path:
        return self.root / "study.db"

    @property
    def default_storage(self) -> str:
        # Quoted: a `?` or `#` in the path would otherwise start the URL's query or fragment and
        # put the database outside the run directory (SQLAlchemy unquotes the path).
        return f"sqlite:///{quote(str(self.database))}"

    @property
    def database_backup(self) -> Path:
        """The last good copy of the study, taken after each trial (sqlite3's online backup)."""
        return self.database.with_name(self.database.name + ".bak")

    @property
    def trials_csv(self) -> Path:
        return self.root / "trials.csv"

    @property
    def baseline(self) -> Path:
        return self.root / "baseline"

    @property
    def baseline_onnx(self) -> Path:
        return self.baseline / "model.onnx"

    @property
    def baseline_metrics(self) -> Path:
        return self.baseline / "metrics.json"

    def trial(self, number: int | str) -> Path:
        """A trial's folder (`baseline` for the unpruned network)."""
        return self.baseline if number == "baseline" else self.root / "trials" / f"{int(number):04d}"

    def onnx(self, number: int | str) -> Path:
        return self.trial(number) / "model.onnx"

    @property
    def int8_formats(self) -> Path:
        """Where the INT8 formats are measured (work files)."""
        return self.root / "int8-formats"

    @property
    def int8_formats_csv(self) -> Path:
        return self.root / "int8-formats.csv"

    def width_scale(self, precision: str) -> Path:
        """Where the unpruned network is timed at another precision for its width profile's scale."""
        return self.root / f"widths-{precision}"

    @property
    def final(self) -> Path:
        """The final stage: each finalist's folder (trained again, re-scored) and pick.json."""
        return self.root / "final"

    def finalist(self, number: int | str) -> Path:
        return self.final / ("baseline" if number == "baseline" else f"{int(number):04d}")

    @property
    def pick(self) -> Path:
        return self.final / "pick.json"

    @property
    def report(self) -> Path:
        return self.root / "report"

    def export(self, trial: int | str) -> Path:
        return self.root / "export" / f"trial-{trial}"

    def trial_benchmark(self, number: int) -> dict | None:
        """The benchmark settings a trial was measured with (its precision may have been searched
        or fixed by the sweep), from its recipe.yaml; None when it kept none."""
        recipe = self.trial(number) / "recipe.yaml"
        if not recipe.is_file():
            return None
        import yaml

        return (yaml.safe_load(recipe.read_text()) or {}).get("benchmark")
