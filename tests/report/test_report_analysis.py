"""The report's analysis functions against values worked out by hand on small synthetic studies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from edgetune.metrics.objectives import Objective
from edgetune.report import analysis


def _frame(rows):
    return pd.DataFrame(rows)


def test_correlations_match_hand_computed_values():
    # latency = 2 - x exactly (Pearson -1); top1 rises with x but not linearly (Spearman 1, Pearson < 1).
    x = [0.1, 0.2, 0.3, 0.4, 0.5]
    frame = _frame({"param.x": x, "latency_ms": [2 - v for v in x], "top1": [1, 2, 4, 8, 16]})
    table = analysis.correlations(frame, ["param.x"], ["latency_ms", "top1"]).set_index("metric")
    assert table.loc["latency_ms", "pearson"] == pytest.approx(-1.0)
    assert table.loc["top1", "spearman"] == pytest.approx(1.0)
    # By hand: x deviations -.2 -.1 0 .1 .2, y deviations -5.2 -4.2 -2.2 1.8 9.8 (mean 6.2);
    # sum of products 3.6, sums of squares 0.1 and 148.8: r = 3.6 / sqrt(14.88) = 0.93326.
    assert table.loc["top1", "pearson"] == pytest.approx(0.93326, abs=1e-5)
    assert (table["n"] == 5).all()


def test_binned_means_by_hand():
    frame = _frame({"param.x": [0.0, 0.1, 0.5, 0.9, 1.0], "m": [1.0, 3.0, 10.0, 20.0, 40.0]})
    table = analysis.binned_means(frame, "param.x", "m", bins=2)
    # bins [0, 0.5) and [0.5, 1]: means (1+3)/2 = 2 and (10+20+40)/3 = 23.33
    assert list(table["n"]) == [2, 3]
    assert table["mean"].tolist() == pytest.approx([2.0, 70 / 3])
    assert table["std"].iloc[0] == pytest.approx(np.std([1.0, 3.0], ddof=1))


def test_pareto_front_keeps_exactly_the_undominated():
    frame = _frame({"trial": [0, 1, 2, 3, 4],
                    "latency_ms": [1.0, 2.0, 3.0, 2.5, 1.0],
                    "top1": [80.0, 85.0, 90.0, 84.0, 70.0]})
    objectives = [Objective("latency_ms", "minimize"), Objective("top1", "maximize")]
    front = analysis.pareto_front(frame, objectives)
    # 3 is beaten by 1 (faster, more accurate); 4 by 0 (as fast, more accurate).
    assert front["trial"].tolist() == [0, 1, 2]


def test_best_so_far_and_runs_per_bin():
    frame = _frame({"trial": [0, 1, 2, 3], "latency_ms": [3.0, 4.0, 2.0, 2.5]})
    table = analysis.best_so_far(frame, "latency_ms", "minimize")
    assert table["best"].tolist() == [3.0, 3.0, 2.0, 2.0]
    hist = analysis.runs_per_bin(frame, "latency_ms", bins=2)
    assert hist["n"].tolist() == [2, 2] and hist["lo"].iloc[0] == 2.0


def test_best_so_far_never_counts_an_infeasible_trial():
    # Trial 1 broke the accuracy constraint at 94.44 % (a 94.5 % floor): it is drawn, never best.
    frame = _frame({"trial": [0, 1, 2, 3], "top1": [94.6, 95.2, 94.9, 95.0],
                    "feasible": [True, False, True, False]})
    table = analysis.best_so_far(frame, "top1", "maximize")
    assert table["best"].tolist() == [94.6, 94.6, 94.9, 94.9]
    assert table["feasible"].tolist() == [True, False, True, False]
    late = analysis.best_so_far(_frame({"trial": [0, 1], "top1": [96.0, 94.0], "feasible": [False, True]}),
                                "top1", "maximize")
    assert np.isnan(late["best"].iloc[0]) and late["best"].iloc[1] == 94.0  # no best before a feasible trial


def test_importance_finds_the_parameter_that_matters():
    """latency depends on `a` only; `b` and `c` are noise: every method ranks `a` first by far."""
    rng = np.random.default_rng(0)
    n = 60
    a, b, c = rng.uniform(0, 1, n), rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    frame = _frame({"param.a": a, "param.b": b, "param.c": c, "latency_ms": 5 * a ** 2 + 0.01 * rng.normal(size=n)})
    table = analysis.importances(frame, ["param.a", "param.b", "param.c"], "latency_ms").set_index("param")
    for method in ("fanova", "ped-anova", "random-forest"):
        assert table[method].idxmax() == "a", table
        assert table.loc["a", method] > 0.8, table
        assert table[method].sum() == pytest.approx(1.0, abs=1e-6)


def test_baseline_comparison_summarises_reference_repeats():
    frame = _frame({
        "trial": ["baseline", 0, 1, 2, 3],
        "state": ["BASELINE", "COMPLETE", "COMPLETE", "COMPLETE", "COMPLETE"],
        "reference": [None, "hand", "hand", None, None],
        "feasible": [False, True, True, True, False],
        "latency_ms": [1.0, 0.8, 0.6, 0.5, 0.1],
        "top1": [95.0, 90.0, 92.0, 85.0, 10.0],
    })
    table = analysis.baseline_comparison(frame, [Objective("latency_ms", "minimize")], ["latency_ms", "top1"])
    assert table["row"].tolist() == ["unpruned baseline", "reference: hand", "trial 2"]  # trial 3 is infeasible
    ref = table.set_index("row").loc["reference: hand"]
    assert ref["latency_ms"] == pytest.approx(0.7) and ref["n"] == 2
    assert ref["top1_std"] == pytest.approx(np.std([90.0, 92.0], ddof=1))


def test_metric_matrix_is_symmetric_with_unit_diagonal():
    frame = _frame({"macs": [1, 2, 3, 4], "latency_ms": [1.0, 2.1, 2.9, 4.2], "top1": [4, 3, 2, 1]})
    m = analysis.metric_matrix(frame, ["macs", "latency_ms", "top1"])
    assert np.allclose(np.diag(m), 1) and m.loc["macs", "top1"] == pytest.approx(-1.0)
    assert m.loc["macs", "latency_ms"] == pytest.approx(m.loc["latency_ms", "macs"])


def test_the_pareto_figure_zooms_to_the_feasible_trials_and_counts_the_rest():
    from edgetune.report.content import _zoom

    points = _frame({"trial": [0, 1, 2, 3], "top1": [94.7, 95.0, 51.0, 94.9]})
    feasible = points[points["top1"] > 90]
    marks = _frame({"label": ["unpruned"], "top1": [95.1]})
    span, hidden = _zoom(points, feasible, marks, "top1", [94.5])
    assert hidden == 1 and span[0] < 94.5 and span[1] > 95.1 and span[0] > 90  # the ruined one is left out
    assert _zoom(feasible, feasible, marks, "top1", []) == (None, 0)  # nothing to leave out: no zoom


def test_tables_people_read_have_words_and_units_and_the_csv_keeps_machine_names():
    from edgetune.report.labels import readable

    table = _frame({"trial": [3], "param.filter_pruner_layer_3.1": [0.4], "macs": [97.3e6], "params": [855e3],
                    "latency_adj_ms": [1.8], "top1_before_ft": [40.0]})
    shown = readable(table)
    assert list(shown.columns) == ["trial", "filter_pruner_layer_3.1", "M MACs", "k parameters",
                                   "latency ms (host-adjusted)", "top-1 before fine-tuning %"]
    assert shown["M MACs"].iloc[0] == pytest.approx(97.3) and shown["k parameters"].iloc[0] == pytest.approx(855)
    assert list(table.columns)[2] == "macs" and table["macs"].iloc[0] == 97.3e6  # the original is untouched


def test_screen_agreement_is_kendalls_tau_over_the_fine_tuned_candidates():
    from edgetune.report.analysis import screen_agreement

    frame = pd.DataFrame({"top1_as_pruned": [10.0, 30.0, 20.0, 40.0, 5.0],
                          "top1_before_ft": [80.0, 90.0, 85.0, 70.0, 60.0],
                          "top1": [91.0, 93.0, 92.0, 94.0, 60.0],
                          "rung": [1, 1, 1, 1, 0]})  # the last was held back: top1 is its rung-0 score
    table = screen_agreement(frame).set_index(["screen", "against"])
    # as pruned against re-estimated, all five: 7 of the 10 pairs concordant, 3 discordant -> tau 0.4
    assert table.loc[("top1_as_pruned", "top1_before_ft"), "kendall_tau"] == pytest.approx(0.4)
    # re-estimated against fine-tuned, the four trained: 3 concordant, 3 discordant -> 0
    assert table.loc[("top1_before_ft", "top1"), "n"] == 4
    assert table.loc[("top1_before_ft", "top1"), "kendall_tau"] == pytest.approx(0.0)
    assert table.loc[("top1_as_pruned", "top1"), "kendall_tau"] == pytest.approx(1.0)
    assert screen_agreement(frame[["top1"]]).empty
