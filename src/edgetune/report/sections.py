"""A report's content as data: sections of text, tables and figures, which every renderer (html.py,
png.py, markdown.py, csv) draws its own way; content.py decides what goes in them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

FigureKind = Literal["scatter", "line", "bar", "heatmap"]


@dataclass
class Figure:
    name: str  # file stem and element id: figures/<name>.png
    title: str
    kind: FigureKind
    data: pd.DataFrame
    x: str = ""
    y: list[str] = field(default_factory=list)
    x_label: str = ""
    y_label: str = ""
    group: str = ""  # scatter: a column whose values colour the points
    marks: pd.DataFrame | None = None  # scatter: labelled reference points (column "label")
    line: pd.DataFrame | None = None  # scatter: the Pareto front, drawn through its points
    # scatter: constraints drawn as lines, ("x" or "y", value, label); the y range shown (zoomed
    # to the feasible trials, the outliers counted in the title)
    limits: list[tuple[str, float, str]] = field(default_factory=list)
    y_range: tuple[float, float] | None = None
    stacked: bool = False  # bar: the y columns stacked (parts of one whole), not side by side


@dataclass
class Section:
    key: str
    title: str
    text: str = ""
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)


@dataclass
class Report:
    title: str
    subtitle: str
    sections: list[Section]

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: t for s in self.sections for name, t in s.tables.items()}

    def figures(self) -> list[Figure]:
        return [f for s in self.sections for f in s.figures]
