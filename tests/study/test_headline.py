"""The headline: which network to deploy, from the trials table, and nothing else: the final
stage's pick, else the best feasible searched trial; an infeasible, unreliable, duplicate or
reference row is never the pick; each reference is compared with it."""

import optuna
import pandas as pd

from edgetune.metrics.objectives import Objective
from edgetune.study.records.headline import headline
from edgetune.study.records.results import trials_frame

LATENCY = [Objective("latency_adj_ms", "minimize")]
BASE = {"top1": 95.0, "latency_ratio": 1.0, "latency_adj_ms": 1.8, "macs": 97.3e6, "params": 855e3}
NOT_METRICS = ("trial", "feasible", "state")


def _frame(rows: list[dict], objectives: list[Objective] = LATENCY) -> pd.DataFrame:
    """The trials table of a real study holding these trials (ranked by the results' own rule);
    final-stage columns as `with_final` merges them."""
    study = optuna.create_study(directions=[o.goal for o in objectives])
    final = {}
    for row in rows:
        attrs = {k: v for k, v in row.items() if k not in NOT_METRICS and not k.startswith(("final_", "picked", "test_"))}
        study.add_trial(optuna.trial.create_trial(values=[row[o.metric] for o in objectives], user_attrs=attrs,
                                                  constraints={"00:top1": 0.0 if row.get("feasible", True) else 1.0}))
        final[row["trial"]] = {k: v for k, v in row.items() if k.startswith(("final_", "picked", "test_"))}
    frame = trials_frame(study, BASE, objectives)
    for number, extra in final.items():
        for key, value in extra.items():
            frame.loc[frame["trial"] == number, key] = value
    return frame


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
    assert "Chosen as the lowest latency_adj_ms of 2 feasible trial(s)." in said.text  # not the reference nor the repeat
    assert "Reference resnet20-fmnist: 0.200 of the unpruned latency, 94.90 % on validation; it dominates the " \
           "pick: deploy it instead." in said.text


def test_a_final_pick_is_taken_with_its_final_and_test_figures_and_no_pick_is_said():
    frame = _frame([_trial(0, 0.34, 94.3, final_val_top1=94.82, picked=True, test_top1=94.43),
                    _trial(1, 0.22, 93.3, final_val_top1=94.34, picked=False)])
    frame.loc[0, ["final_val_top1", "test_top1"]] = [95.0, 95.08]
    said = headline(frame, LATENCY)
    assert said.picked == 0 and "94.82 % against 95.00 % on validation, after the final training (-0.18 points)" \
        in said.text and "94.43 % against 95.08 % on test" in said.text
    frame["picked"] = False
    nothing = headline(frame, LATENCY)
    assert nothing.picked is None and "no finalist's loss held" in nothing.text
    assert headline(_frame([_trial(0, 0.3, 90.0, feasible=False)]), LATENCY).picked is None


def test_a_multi_objective_pick_names_the_front_it_was_chosen_from():
    both = [Objective("top1", "maximize"), Objective("latency_adj_ms", "minimize")]
    frame = _frame([_trial(0, 0.30, 93.0), _trial(1, 0.60, 94.9), _trial(2, 0.45, 94.1), _trial(3, 0.70, 94.0),
                    _trial(4, 0.20, 96.0, feasible=False)], both)
    said = headline(frame, both)
    assert said.picked == 1  # the front (0, 2, 1) by its first objective; 3 is dominated, 4 infeasible
    assert ("Chosen as the highest top1 on the front of 3 feasible trade-off(s) (top1, latency_adj_ms); the fastest "
            "is trial 0 (0.300 of the unpruned latency, top-1 93.00 %)") in said.text
    single = headline(_frame([_trial(0, 0.30, 93.0), _trial(1, 0.60, 94.9)]), LATENCY)
    assert single.picked == 0 and "Chosen as the lowest latency_adj_ms of 2 feasible trial(s)." in single.text


def test_fine_tuning_that_destroyed_a_trial_is_flagged_and_the_pick_says_so():
    """The default rate of 0.1 on 1,024 images once took a network from 93.5 % to 28 % with no
    word: a trial that fine-tuning cost more than 10 points carries a flag naming the settings to
    try, and the headline repeats the pick's flags."""
    from edgetune.metrics.table import compression_flags

    ruined = {"top1_before_ft": 93.5, "top1": 28.0, "finetune_seconds": 12.0}
    flags = compression_flags(ruined, BASE)
    assert len(flags) == 1 and "fine-tuning lost 65.5 points of top-1 (93.50 -> 28.00 %)" in flags[0]
    assert "finetune.learning_rate" in flags[0] and "data.train_subset" in flags[0]
    assert compression_flags({**ruined, "top1": 85.0}, BASE) == []  # 8.5 points: a short fine-tune's noise
    assert compression_flags({**ruined, "finetune_seconds": 0.0}, BASE) == []  # not fine-tuned: not its fault
    frame = _frame([_trial(0, 0.99, 28.0, flags=flags[0])])
    said = headline(frame, LATENCY)
    assert said.picked == 0 and f"Warning on trial 0: {flags[0]}." in said.text
