"""Scoring a final shape from its exported file in ONNX Runtime gives every trial the top-1
PyTorch gives it: the same candidates (one seed, one sampler), the same images, the same figures
to 0.05 point, and the file is exported once."""

import pytest
import yaml

from edgetune.config.experiment import load_experiment
from edgetune.study import run_study
from tests.helpers import experiment


def _study(tmp_path, score_with):
    (tmp_path / score_with).mkdir()
    path = experiment(tmp_path / score_with, trials=3, epochs=0)
    raw = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**raw, "score_with": score_with}))
    return run_study(load_experiment(path)[0])


@pytest.mark.slow
def test_onnxruntime_scores_every_trial_as_pytorch_does(tmp_path):
    torch_run, ort_run = _study(tmp_path, "pytorch"), _study(tmp_path, "onnxruntime")
    assert torch_run.baseline["top1"] == pytest.approx(ort_run.baseline["top1"], abs=0.05)
    pairs = list(zip(torch_run.study.get_trials(), ort_run.study.get_trials(), strict=True))
    assert len(pairs) == 3
    for a, b in pairs:
        assert a.params == b.params
        for key in ("top1", "top5", "loss"):
            assert a.user_attrs[key] == pytest.approx(b.user_attrs[key], abs=0.05 if key != "loss" else 1e-3), key
        # The ONNX Runtime path exports before scoring and never again; the PyTorch path scores first.
        assert b.user_attrs["seconds_export"] > 0 and a.user_attrs["seconds_evaluate"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("constrained", [False, True])
def test_a_fine_tuned_int8_candidate_is_converted_once_unless_a_constraint_needs_its_speed_first(
        tmp_path, monkeypatch, constrained):
    """Its speed does not depend on its weights, its accuracy does: without a resource constraint
    to act on before fine-tuning, it is timed after, from the one INT8 file that is scored."""
    import edgetune.runtimes.onnxruntime as ort_runtime

    converted: list[str] = []
    real = ort_runtime.ort_int8
    monkeypatch.setattr(ort_runtime, "ort_int8", lambda onnx_path, *a, **k: converted.append(str(onnx_path)) or
                        real(onnx_path, *a, **k))
    path = experiment(tmp_path, trials=1, epochs=1)
    raw = yaml.safe_load(path.read_text())
    raw["sweep"]["parameters"] = {"stage_1": {"value": 0.5}, "stage_3": {"value": 0.5}}
    if constrained:
        raw["sweep"]["constraints"] = [{"metric": "latency_ratio", "max": 10.0}]
    raw["benchmark"].update(precision="int8", int8_format="qdq-u8-channel")
    path.write_text(yaml.safe_dump(raw))
    outcome = run_study(load_experiment(path)[0])
    trial = outcome.study.get_trials()[0]
    assert trial.state.name == "COMPLETE" and trial.user_attrs["latency_ratio"] > 0
    assert "top1_torch" in trial.user_attrs  # the top-1 is the deployed INT8 file's, PyTorch's beside it
    in_trial = [p for p in converted if "/trials/0000" in p]  # written in 0000.partial, then renamed
    assert len(in_trial) == (2 if constrained else 1), converted
