"""The headline: which network to deploy, from the trials table, and nothing else: the final
stage's pick, else the best feasible searched trial; an infeasible, unreliable, duplicate or
reference row is never the pick; each reference is compared with it."""

import pandas as pd

from edgetune.objectives import Objective
from edgetune.study.headline import headline

LATENCY = [Objective("latency_adj_ms", "minimize")]


def _frame(rows: list[dict]) -> pd.DataFrame:
    base = {"trial": "baseline", "state": "BASELINE", "top1": 95.0, "latency_ratio": 1.0, "latency_adj_ms": 1.8,
            "macs": 97.3e6, "params": 855e3}
    return pd.DataFrame([base, *rows])


def _trial(n, ratio, top1, feasible=True, **extra):
    return {"trial": n, "state": "COMPLETE", "latency_ratio": ratio, "latency_adj_ms": 1.8 * ratio, "top1": top1,
            "feasible": feasible, "macs": 40e6, "params": 300e3, "onnx_bytes": 1.2 * 2**20, **extra}


def test_the_pick_is_the_best_feasible_searched_trial_in_human_units():
    frame = _frame([_trial(0, 0.30, 93.0, feasible=False), _trial(1, 0.45, 94.6), _trial(2, 0.40, 94.7),
                    _trial(3, 0.20, 94.9, reference="models/resnet20-fmnist.pt"),
                    _trial(4, 0.40, 94.7, duplicate_of=2)])
    said = headline(frame, LATENCY, {"runtime": "onnxruntime", "device": "cpu", "threads": 1, "batch_size": 1,
                                     "precision": "fp32"})
    assert said.picked == 2
    assert said.sentences[0].startswith("Deploy trial 2: 2.50x faster than the unpruned network (0.400 of its "
                                        "latency on onnxruntime cpu, 1 thread(s), batch 1, fp32")
    assert "top-1 94.70 % against 95.00 % on validation (-0.30 points)" in said.text
    assert "40.0 M MACs, 300 k parameters, 1.20 MB of ONNX" in said.text
    assert "Reference resnet20-fmnist.pt: 0.200 of the unpruned latency, 94.90 % on validation; it dominates the " \
           "pick: deploy it instead." in said.text


def test_a_final_pick_is_taken_with_its_final_and_test_figures_and_no_pick_is_said():
    frame = _frame([_trial(1, 0.34, 94.3, final_val_top1=94.82, picked=True, test_top1=94.43),
                    _trial(2, 0.22, 93.3, final_val_top1=94.34, picked=False)])
    frame.loc[0, ["final_val_top1", "test_top1"]] = [95.0, 95.08]
    said = headline(frame, LATENCY)
    assert said.picked == 1 and "94.82 % against 95.00 % on validation, after the final training (-0.18 points)" \
        in said.text and "94.43 % against 95.08 % on test" in said.text
    frame["picked"] = False
    nothing = headline(frame, LATENCY)
    assert nothing.picked is None and "no finalist's loss held" in nothing.text
    assert headline(_frame([_trial(1, 0.3, 90.0, feasible=False)]), LATENCY).picked is None
