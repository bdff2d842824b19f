"""A trial's notes are read through `Recorded`, whose names a type checker and a reader can
follow; a misspelt `user_attrs.get("...")` read as None and no test noticed."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
from optuna.distributions import FloatDistribution

from edgetune.metrics.record import Recorded

SRC = Path(__file__).resolve().parents[2] / "src" / "edgetune"


def _trial(**attrs) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(params={"w": 0.1}, distributions={"w": FloatDistribution(0, 1)}, value=1.0,
                                     user_attrs=attrs)


def test_each_note_reads_what_was_written_and_none_when_absent():
    full = Recorded.of(_trial(reference="python:net", duplicate_of=3, remeasure_of=4, retry_of=5, candidate_key="k",
                              precision="int8", applied_params={"w": 0.125}, skipped="over budget",
                              stopped="rung 0", interrupted=True, latency_unreliable="busy", rung=1, top1=91.5,
                              latency_ratio=0.4, latency_ms=2.0, latency_adj_ms=1.9))
    assert (full.reference, full.duplicate_of, full.remeasure_of, full.retry_of, full.candidate_key) == (
        "python:net", 3, 4, 5, "k")
    assert (full.precision, full.applied_params, full.skipped, full.stopped, full.interrupted) == (
        "int8", {"w": 0.125}, "over budget", "rung 0", True)
    assert (full.latency_unreliable, full.rung, full.top1, full.latency_ratio, full.latency_ms) == (
        "busy", 1, 91.5, 0.4, 1.9)  # the latency a front is drawn with: corrected for drift
    empty = Recorded.of(_trial())
    assert (empty.reference, empty.duplicate_of, empty.skipped, empty.rung, empty.top1, empty.latency_ms) == (
        None, None, None, None, None, None)
    assert empty.applied_params == {} and empty.interrupted is False
    assert Recorded.of(_trial(latency_ms=2.0)).latency_ms == 2.0


def test_only_search_candidates_count():
    assert Recorded.of(_trial()).counts
    for note in ({"reference": "baseline"}, {"skipped": "predicted over budget"}, {"remeasure_of": 0}):
        assert not Recorded.of(_trial(**note)).counts, note


def test_no_module_reads_a_trials_notes_by_string_key():
    """`study.user_attrs` (the study's own settings) aside, only metrics/record.py indexes a
    trial's attributes."""
    reads = re.compile(r"(?<!study)\.user_attrs(\.get\(|\[)")
    found = [f"{path.relative_to(SRC)}:{n}" for path in SRC.rglob("*.py") if path.name != "record.py"
             for n, line in enumerate(path.read_text().splitlines(), 1) if reads.search(line)]
    assert not found, found
