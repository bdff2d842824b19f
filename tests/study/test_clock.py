"""The stage clock: the time between two progress calls belongs to the first one's stage, the
stages add up to the trial, and the overhead is what is neither training nor scoring."""

import time

import pytest

from edgetune.study.trial.clock import StageClock, category


@pytest.mark.parametrize(("text", "stage"), [
    ("pruning", "prune"), ("pruning at epoch 2", "prune"), ("gradual pruning: a at 50%", "prune"),
    ("thinning the gradual pruners", "prune"), ("fine-tuning epoch 1/3", "finetune"),
    ("evaluating after pruning", "evaluate"), ("evaluating epoch 2/3", "evaluate"),
    ("scoring the deployed model", "evaluate"), ("exporting ONNX", "export"), ("converting to int8", "convert"),
    ("checking the exported model", "convert"),
    ("benchmarking", "benchmark"), ("benchmarking on the device worker 'q'", "device"),
    ("profiling layers", "benchmark"), ("something new", "other"),
])
def test_each_progress_text_has_its_stage(text, stage):
    assert category(text) == stage


def test_stages_add_up_to_the_trial_and_the_overhead_is_the_rest():
    said = []
    clock = StageClock(said.append)
    for text, pause in (("pruning", 0.02), ("fine-tuning epoch 1/1", 0.06), ("evaluating epoch 1/1", 0.02),
                        ("exporting ONNX", 0.02), ("benchmarking", 0.03)):
        clock(text)
        time.sleep(pause)
    figures = clock.metrics()
    assert said[0] == "pruning" and len(said) == 5  # the progress still reaches the reporter
    assert figures["seconds_finetune"] >= 0.06 and figures["seconds_benchmark"] >= 0.03
    parts = sum(v for k, v in figures.items() if k.startswith("seconds_") and k != "seconds_trial")
    assert parts == pytest.approx(figures["seconds_trial"], abs=1e-3)
    useful = figures["seconds_finetune"] + figures["seconds_evaluate"]
    assert figures["overhead_share"] == pytest.approx(1 - useful / figures["seconds_trial"], abs=1e-3)
    assert 0.2 < figures["overhead_share"] < 0.8
