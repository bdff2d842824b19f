"""Other networks measured beside the search (references): each repeat measured, a checkpoint
in every precision the search may deploy, one of other classes refused naming both."""

from __future__ import annotations

import pytest
import torch
import yaml

from edgetune.config.experiment import load_experiment
from edgetune.study import run_study
from tests.helpers import ROOT, experiment, five_class_checkpoint


@pytest.mark.slow
def test_reference_repeats_are_measured_each_time(tmp_path):
    """Repeats of a reference recipe measure how much its figures vary: they are the same network
    on purpose and are never answered from one another."""
    path = experiment(tmp_path, trials=0, epochs=0)
    raw = yaml.safe_load(path.read_text())
    raw["sweep"].update(enqueue=["baseline"], reference_repeats=2)
    path.write_text(yaml.safe_dump(raw))
    spec, _ = load_experiment(path)
    outcome = run_study(spec)
    refs = [t for t in outcome.study.trials if t.user_attrs.get("reference")]
    assert len(refs) == 2 and all("duplicate_of" not in t.user_attrs for t in refs)
    assert all((tmp_path / "run" / "trials" / f"{t.number:04d}" / "model.onnx").is_file() for t in refs)


@pytest.mark.slow
def test_another_checkpoint_is_measured_beside_the_search(tmp_path):
    """The smaller (here: larger) sibling of the family, enqueued as a checkpoint, is measured
    like a trial without fine-tuning, listed in the results table and judged in the report."""
    from rich.console import Console

    from edgetune.report.build import write_report
    from edgetune.report.progress import results_table

    other = ROOT / "models" / "resnet56-fmnist.pt"
    path = experiment(tmp_path, trials=3, epochs=1)
    raw = yaml.safe_load(path.read_text())
    raw["sweep"]["enqueue"] = [str(other)]
    path.write_text(yaml.safe_dump(raw))
    spec, _ = load_experiment(path)
    outcome = run_study(spec)
    ref = next(t for t in outcome.study.trials if t.user_attrs.get("reference"))
    assert ref.state.name == "COMPLETE" and ref.user_attrs["top1"] == ref.user_attrs["top1_before_ft"]  # not tuned
    assert ref.user_attrs["macs"] > 2 * outcome.baseline["macs"]  # ResNet-56's, not the baseline's
    saved = torch.load(tmp_path / "run" / "trials" / f"{ref.number:04d}" / "model.pt", weights_only=True)
    assert saved["meta"]["model"] == "resnet56"
    console = Console(width=100, record=True)
    console.print(results_table(outcome))
    text = console.export_text()
    # A 100-column terminal holds it whole: no header cut to `…`, the settings wrapped in their cell.
    assert "ref resnet56-fmnist" in text and "…" not in text and max(map(len, text.splitlines())) <= 100
    assert "1=" in text and "3=" in text  # stage_1 and stage_3, their common prefix dropped
    report, _ = write_report(tmp_path / "run", tmp_path / "report", ["csv"], per_layer=False)
    summary = next(s for s in report.sections if s.key == "summary").text
    # Named by its file, not by the absolute path it was given as.
    assert "Reference resnet56-fmnist is" in summary and "dominated" in summary and str(other) not in summary


def test_a_reference_of_other_classes_is_refused_naming_both(tmp_path):
    from edgetune.errors import ConfigError

    five = five_class_checkpoint(tmp_path)
    path = experiment(tmp_path, trials=0, epochs=0)
    raw = yaml.safe_load(path.read_text())
    raw["sweep"]["enqueue"] = [str(five)]
    path.write_text(yaml.safe_dump(raw))
    spec, _ = load_experiment(path)
    with pytest.raises(ConfigError, match=r"reference .*five-classes.pt does not fit the student \(model resnet20: 10 classes"):
        run_study(spec)


@pytest.mark.slow
def test_a_checkpoint_reference_is_measured_in_every_precision_the_search_may_deploy(tmp_path):
    """With the precision searched, the smaller sibling is measured quantised too: what a user
    would try first is beside the search in each precision the search may pick."""
    from rich.console import Console

    from edgetune.report.progress import results_table

    other = ROOT / "models" / "resnet20-fmnist.pt"
    path = experiment(tmp_path, trials=1, epochs=0)
    raw = yaml.safe_load(path.read_text())
    raw["sweep"]["enqueue"] = [str(other)]
    raw["sweep"]["parameters"]["precision"] = {"values": ["fp32", "int8"]}
    raw["benchmark"]["calibration_images"] = 64
    path.write_text(yaml.safe_dump(raw))
    outcome = run_study(load_experiment(path)[0])
    refs = {t.user_attrs["reference"]: t for t in outcome.study.trials if t.user_attrs.get("reference")}
    assert set(refs) == {str(other), f"{other}@int8"}
    fp32, int8 = refs[str(other)].user_attrs, refs[f"{other}@int8"].user_attrs
    assert "deployed_top1" in int8 and "deployed_top1" not in fp32  # the INT8 file itself is scored
    assert int8["model_bytes"] < 0.5 * fp32["model_bytes"]
    recipe = yaml.safe_load((tmp_path / "run" / "trials" / f"{refs[f'{other}@int8'].number:04d}" /
                             "recipe.yaml").read_text())
    assert recipe["benchmark"]["precision"] == "int8"
    console = Console(width=200, record=True)
    console.print(results_table(outcome))
    assert "ref resnet20-fmnist int8" in console.export_text()
