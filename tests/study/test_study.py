"""End to end on real data: a small search over the shipped ResNet-20, resumed after a kill.

Uses Debian's Fashion-MNIST (installed by `make test`) and small subsets to stay fast.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml

from edgetune.config.experiment import load_experiment
from edgetune.errors import ConfigError, EdgetuneError
from edgetune.study import run_study
from tests.helpers import ROOT, experiment, read_csv

# Runs studies or trains networks: the `slow` tier (`pytest -m 'not slow'` leaves it out).
pytestmark = pytest.mark.slow

EXAMPLES = ROOT / "examples" / "resnet56-fmnist"

def test_search_thins_measures_records_and_resumes(tmp_path):
    spec, _ = load_experiment(experiment(tmp_path, trials=2, epochs=2))
    outcome = run_study(spec)
    run = tmp_path / "run"
    rows = read_csv(run / "trials.csv")
    base, trials = rows[0], rows[1:]
    assert base["trial"] == "baseline" and len(trials) == 2
    for row in trials:
        assert row["state"] == "COMPLETE"
        assert int(row["macs"]) < int(base["macs"]) and int(row["params"]) < int(base["params"])
        assert int(row["onnx_bytes"]) < int(base["onnx_bytes"])
        assert float(row["latency_ms"]) > 0 and float(row["latency_ratio"]) > 0
        # ExponentialLR(gamma=0.5) steps at the end of epoch 1 only (its policy starts there).
        assert float(row["final_lr"]) == pytest.approx(0.005)
        onnx_file = run / "trials" / f"{int(row['trial']):04d}" / "model.onnx"
        assert onnx_file.is_file() and (onnx_file.parent / "recipe.yaml").is_file()
    # The baseline is the unpruned network: its measured top-1 is the checkpoint's on these images.
    assert float(base["top1"]) > 85

    import onnxruntime as ort

    session = ort.InferenceSession(str(run / "trials" / "0000" / "model.onnx"))
    out = session.run(None, {"input": np.zeros((3, 1, 28, 28), np.float32)})[0]
    assert out.shape == (3, 10)

    first = {t.number: t.datetime_complete for t in outcome.study.trials}
    spec.trials = 3
    again = run_study(spec)
    done = again.study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(done) == 3
    assert {t.number: t.datetime_complete for t in done if t.number in first} == first
    # The resumed sampler does not replay the first run's draws (it once ran trial 0 again as trial 2).
    assert len({tuple(sorted(t.params.items())) for t in done}) == 3


def test_a_changed_experiment_is_not_mixed_into_an_old_study(tmp_path):
    spec, _ = load_experiment(experiment(tmp_path, trials=1, epochs=0))
    run_study(spec)
    spec.finetune.learning_rate = 0.05
    spec.finetune.epochs = 1
    with pytest.raises(EdgetuneError, match="different experiment"):
        run_study(spec)


def _trial_states(db: Path) -> dict[int, optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")
    return {t.number: t for t in study.trials}


def test_killed_mid_trial_loses_nothing_and_resumes(tmp_path):
    # Trial 1 is killed as soon as its folder appears, long before its pruning, recovery and
    # fine-tuning (seconds) end: a small budget suffices, and keeps the test fast.
    path = experiment(tmp_path, trials=2, epochs=1, train_subset=256)
    cmd = [sys.executable, "-m", "edgetune.cli", "run", str(path)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = tmp_path / "run" / "trials" / "0001" / "recipe.yaml"
    deadline = time.time() + 240
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert marker.exists(), "the search never reached trial 1"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _trial_states(tmp_path / "run" / "study.db")
    assert before[0].state == optuna.trial.TrialState.COMPLETE
    assert before[1].state == optuna.trial.TrialState.RUNNING  # killed mid-trial, for real

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert "interrupted" in done.stdout
    after = _trial_states(tmp_path / "run" / "study.db")
    assert after[0].datetime_complete == before[0].datetime_complete  # the finished trial was kept
    assert after[1].state == optuna.trial.TrialState.FAIL and after[1].user_attrs["interrupted"]
    retry = [t for t in after.values() if t.user_attrs.get("retry_of") == 1]
    assert len(retry) == 1 and retry[0].params == before[1].params
    assert retry[0].state == optuna.trial.TrialState.COMPLETE
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in after.values()) == 2
    assert len(read_csv(tmp_path / "run" / "trials.csv")) == 1 + len(after)


def test_cli_reports_bad_input_without_traceback(tmp_path):
    path = experiment(tmp_path, sweep={"metric": {"name": "Top-1"}})
    done = subprocess.run([sys.executable, "-m", "edgetune.cli", "run", str(path)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 2
    assert "unknown metric 'Top-1'" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("raw, key", [
    ({"trials": -1}, "trials"),
    ({"finetune": {"epochs": -1}}, "finetune.epochs"),
    ({"benchmark": {"treads": 1}}, "benchmark.treads"),
    ({"data": {"name": "mnist"}}, "data.name"),
    ({"colour": "red"}, "colour"),
])
def test_experiment_file_errors_name_the_key(tmp_path, raw, key):
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=f"in {path}, at '{key}'"):
        load_experiment(path)


def test_example_paths_are_relative_to_the_file_and_flags_override():
    spec, _ = load_experiment(EXAMPLES / "table3.2.experiment.yaml", {"trials": 3, "finetune.epochs": 0})
    assert spec.model.checkpoint == (ROOT / "models" / "resnet56-fmnist.pt").resolve()
    assert spec.recipe == (EXAMPLES / "resnet56-table3.2.schedule.yaml").resolve()
    assert spec.trials == 3 and spec.finetune.epochs == 0
    from edgetune.study import plan_study

    plan = plan_study(spec)
    assert plan.objective == "latency_adj_ms" and set(plan.targets) == {
        "filter_pruner_layer_1", "filter_pruner_layer_2", "filter_pruner_layer_3.1", "filter_pruner_layer_3.2"}
    # An inline sweep's reference recipes are found beside the experiment file, from any directory.
    plan = plan_study(load_experiment(ROOT / "experiments" / "baselines.experiment.yaml")[0])
    assert [ref.name for ref in plan.references] == [str((EXAMPLES / "resnet56.schedule.yaml").resolve())]
    assert plan.limit == 0  # the references only
    # The main job's file: depth + width + precision searched, ResNet-20 beside, a final stage.
    main = plan_study(load_experiment(EXAMPLES / "experiment.yaml")[0])
    sibling = (ROOT / "models" / "resnet20-fmnist.pt").resolve()
    # ResNet-20 as trained, and quantised: the precision is searched, so the sibling is measured in both.
    assert [(ref.checkpoint, ref.precision) for ref in main.references] == [(sibling, None), (sibling, "int8")]
    assert {"depth_1_blocks", "width_1", "precision"} <= set(main.targets)
    assert main.spec.final is not None and main.spec.final.max_accuracy_drop == 0.5
    # Fine-tuned on a cosine without a teacher (docs/results.md part 8: as good, a third cheaper).
    assert main.spec.finetune.distill is None and main.spec.finetune.learning_rate == 0.02


def test_the_seeds_two_files_run_as_is_from_flags(tmp_path):
    """Figure 3.2's schedule and figure 3.4's sweep (which searches Channels against Filters)."""
    cmd = [sys.executable, "-m", "edgetune.cli", "run",
           "--schedule", str(EXAMPLES / "figure3.2.schedule.yaml"), "--sweep", str(EXAMPLES / "figure3.4.sweep.yaml"),
           "--model", "resnet20", "--checkpoint", str(ROOT / "models" / "resnet20-fmnist.pt"),
           "--data", "fashion-mnist", "--trials", "3", "--epochs", "0", "--val-subset", "200",
           "--run-dir", str(tmp_path / "run"), "--seed", "3"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    rows = read_csv(tmp_path / "run" / "trials.csv")
    assert [r["state"] for r in rows[1:]] == ["COMPLETE"] * 3
    assert {r["param.layer_1_conv_pruner_group_type"] for r in rows[1:]} <= {"Channels", "Filters"}
    assert all(int(r["macs"]) < int(rows[0]["macs"]) for r in rows[1:])


@pytest.mark.openvino
def test_a_search_on_openvino_int8_scores_the_int8_model(tmp_path):
    path = experiment(tmp_path, trials=1, epochs=0, benchmark={
        "runtime": "openvino", "device": "CPU", "precision": "int8", "calibration_images": 64,
        "runs_per_round": 5, "min_rounds": 2, "max_rounds": 3, "throughput_batches": [8], "throughput_seconds": 0.2,
        "warmup": 2, "energy_seconds": 0.2})
    spec, _ = load_experiment(path)
    run_study(spec)
    rows = read_csv(tmp_path / "run" / "trials.csv")
    trial = rows[1]
    assert trial["state"] == "COMPLETE"
    assert float(trial["top1"]) == float(trial["deployed_top1"])  # the objective sees int8's accuracy
    assert trial["top1_torch"] != "" and abs(float(trial["top1"]) - float(trial["top1_torch"])) < 10
    assert (tmp_path / "run" / "trials" / "0000" / "model.int8.xml").is_file()
