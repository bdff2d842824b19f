"""Whether a candidate's accuracy loss holds beyond the luck of the images it was scored on.

A search picks the fastest candidate that cleared an accuracy threshold on a few thousand
validation images; among many candidates, some clear it by chance. The baseline and the
candidate are scored on the same images, so the question is paired: on how many images is the
baseline right and the candidate wrong (b), and the other way round (c)? The drop is (b - c)/n
and its standard error comes from the discordant pairs alone, the quantity McNemar's test is
built on. The bound is one-sided (only a larger loss matters) at the user's confidence, with
half an image added to b and c (Agresti and Min's adjustment) so that a handful of discordant
images does not give a bound of zero width. A closed form, not a bootstrap: the same images
give the same bound, and at n in the thousands the two agree to a hundredth of a point.
A dense task (a mask per image) scores each image by the share of its pixels right; the paired
differences are then numbers, not signs, and the same one-sided normal bound is taken on their
mean with their own spread.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class FinalOutcome:
    """What the stage decided, as pick.json records it."""

    records: dict[str, dict[str, Any]]  # by trial number (as text) and "baseline"
    picked: int | None
    reason: str
    max_drop: float | None
    confidence: float
    test_top1: dict[str, float]


@dataclass(frozen=True)
class PairedDrop:
    """Accuracy lost against the baseline on the same images, in points."""

    drop: float
    upper: float  # one-sided upper bound at `confidence`
    confidence: float
    n: int
    lost: int  # images the baseline gets right and the candidate wrong
    gained: int  # the other way round

    def holds(self, max_drop: float) -> bool:
        return self.upper <= max_drop

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_drop(baseline_correct: np.ndarray, candidate_correct: np.ndarray, confidence: float) -> PairedDrop:
    """`*_correct`: per image, right or wrong (a class per image), or per position (a mask per
    image: each image then scores the share of its pixels right, and the pair's difference is a
    number in [-1, 1] rather than a discordant count; see `_per_image`)."""
    base, cand = _per_image(baseline_correct), _per_image(candidate_correct)
    if base.shape != cand.shape or base.ndim != 1 or not len(base):
        raise ValueError(f"paired scores need two equal, non-empty sets of images, got {np.shape(baseline_correct)} "
                         f"and {np.shape(candidate_correct)}")
    if base.dtype != bool:
        return _paired_fractions(base, cand, confidence, pixels=int(np.prod(np.shape(baseline_correct)[1:])))
    n = len(base)
    lost, gained = int((base & ~cand).sum()), int((~base & cand).sum())
    mean = (lost - gained) / n
    b, c = lost + 0.5, gained + 0.5
    variance = max((b + c) / n - ((b - c) / n) ** 2, 0.0)
    upper = mean + NormalDist().inv_cdf(confidence) * math.sqrt(variance / n)
    return PairedDrop(100.0 * mean, 100.0 * upper, confidence, n, lost, gained)


def _per_image(correct: np.ndarray) -> np.ndarray:
    """Per-image right/wrong as booleans; a mask's per-pixel answers as each image's share right.

    Images of one split have one size, so the mean of per-image shares is the pixel accuracy
    the search reported, and the images (not the pixels, which are far from independent within
    an image) are the units the bound counts."""
    correct = np.asarray(correct)
    if correct.ndim <= 1:
        return correct.astype(bool)
    return correct.reshape(len(correct), -1).mean(axis=1, dtype=np.float64)


def _paired_fractions(base: np.ndarray, cand: np.ndarray, confidence: float, pixels: int) -> PairedDrop:
    """The normal bound on the mean of per-image differences, its spread estimated from them.
    The binary case's half image each way becomes half a pixel each way: a floor on the
    variance that keeps a bound of zero width away when every image scores the same on both."""
    n = len(base)
    diff = base - cand
    variance = float(diff.var(ddof=1)) if n > 1 else 0.0
    variance = max(variance, 1.0 / (n * pixels**2))
    upper = float(diff.mean()) + NormalDist().inv_cdf(confidence) * math.sqrt(variance / n)
    return PairedDrop(100.0 * float(diff.mean()), 100.0 * upper, confidence, n, int((diff > 0).sum()),
                      int((diff < 0).sum()))


# --- what the final stage leaves in the run directory, read back for trials.csv and reports ---

FINAL_COLUMNS = ("final_epochs", "final_val_top1", "final_drop", "final_drop_upper", "held", "picked", "test_top1")


def finalist_records(final_dir: Path) -> dict[str, dict[str, Any]]:
    """Each finalist's record (by trial number as text, and `baseline`), as the final stage wrote it."""
    return {path.parent.name.lstrip("0") or "0": json.loads(path.read_text())
            for path in sorted(final_dir.glob("*/result.json"))}


def read_final(final_dir: Path) -> dict[str, dict[str, Any]]:
    """The finalists' records with the pick and the test figures taken after it."""
    if not final_dir.is_dir():
        return {}
    out = finalist_records(final_dir)
    pick = final_dir / "pick.json"
    if pick.is_file():
        chosen = json.loads(pick.read_text())
        for key, test in chosen.get("test_top1", {}).items():
            out.setdefault(key, {})["test_top1"] = test
        if chosen.get("picked") is not None:
            out.setdefault(str(chosen["picked"]), {})["picked"] = True
    return out


def with_final(frame: pd.DataFrame, final_dir: Path) -> pd.DataFrame:
    """trials.csv's rows with the final stage's columns beside the search's own figures."""
    records = read_final(final_dir)
    if not records:
        return frame
    frame = frame.copy()
    keys = frame["trial"].astype(str)
    for column in FINAL_COLUMNS:
        values = [records.get(k, {}).get(column) for k in keys]
        if column == "picked":
            values = [bool(v) for v in values]
        frame[column] = values
    return frame
