"""References and teachers handed to `tune()` as Python objects: a network the user holds (or a
function building one) is measured beside the search, taken to the final stage and exported
like a checkpoint reference, teaches when the experiment distils, and is recorded in the study
by name, never pickled; every way of giving one wrongly is refused before any trial."""

import sys
from pathlib import Path

import pytest
import torch
import yaml

import edgetune
from edgetune.errors import ConfigError, EdgetuneError
from tests.models.custom_example import EXAMPLE, QUICK, example_module


def _trained(width: int = 32) -> torch.nn.Module:
    net = example_module("model").build(width=32)
    net.load_state_dict(torch.load(EXAMPLE / "weights.pt", weights_only=True))
    if width == 32:
        return net
    return example_module("model").build(width=width)  # a sibling of another width, untrained (it is measured, not judged)


def _cli(argv: list[str]) -> object:
    """`edgetune ARGV` through the real entry point, in this process; its exit code."""
    from edgetune.cli import main

    saved, sys.argv = sys.argv, ["edgetune", *argv]
    try:
        main()
    except SystemExit as exc:
        return exc.code or 0
    finally:
        sys.argv = saved
    return 0


def _arguments(tmp_path: Path, **extra) -> dict:
    splits = example_module("data").make(n_train=300, n_val=200, n_test=100)
    recipe = yaml.safe_load((EXAMPLE / "experiment.yaml").read_text())["recipe"]
    sweep = {"method": "random", "metric": {"name": "latency_ratio", "goal": "minimize"},
             "parameters": {"stage_1": {"min": 0.2, "max": 0.5}}}
    return {"model": _trained(), "train_data": splits[0], "val_data": splits[1], "test_data": splits[2],
            "recipe": recipe, "sweep": sweep, "benchmark": QUICK, "trials": 2,
            "finetune": {"epochs": 1, "learning_rate": 0.01, "augment": False}, "data": {"train_subset": 128},
            "run_dir": tmp_path / "run", "progress": False, **extra}


@pytest.mark.slow
def test_a_reference_and_a_teacher_held_as_objects_are_measured_taught_from_and_exported(tmp_path):
    teacher = _trained()
    taught = []
    teacher.register_forward_hook(lambda module, args, out: taught.append(len(args[0])))
    narrow = edgetune.named(_trained(width=8), "narrow")
    arguments = _arguments(tmp_path, references=[narrow, lambda: _trained(width=16)], teacher=teacher,
                           final={"candidates": 1, "epochs": 0})
    result = edgetune.tune(**arguments)
    frame = result.trials
    by_reference = {r: row for r, row in zip(frame["reference"], frame.to_dict("records"), strict=True)
                    if isinstance(r, str) and r.startswith("python:")}
    built = "python:tests.models.test_networks_as_objects." \
            "test_a_reference_and_a_teacher_held_as_objects_are_measured_taught_from_and_exported.<locals>.<lambda>"
    assert sorted(by_reference) == ["python:narrow", built]
    narrow_row = by_reference["python:narrow"]
    assert narrow_row["state"] == "COMPLETE" and narrow_row["params"] < frame["params"][0] / 10
    assert by_reference[built]["params"] < frame["params"][0] / 3
    assert sum(taught) >= 128  # the object taught every fine-tuned candidate's images (the unpruned network did not)
    # The study records the objects by name: the same names resume, nothing runs again.
    again = edgetune.tune(**arguments)
    assert len(again.outcome.study.trials) == len(result.outcome.study.trials)
    # The reference rebuilds through its own builder, not the study's network.
    number = int(narrow_row["trial"])
    exported = result.export(number, tmp_path / "narrow")
    assert exported.max_abs_diff < 1e-3
    # From the command line, the reference's builder is told by --model-factory (the error names it).
    (tmp_path / "nets.py").write_text(f"import sys\nsys.path.insert(0, {str(EXAMPLE)!r})\nfrom model import build\n\n\n"
                                      "def narrow():\n    return build(width=8)\n")
    assert _cli(["export", str(tmp_path / "run"), "--trial", str(number), "--out", str(tmp_path / "a")]) == 2
    assert _cli(["export", str(tmp_path / "run"), "--trial", str(number), "--out", str(tmp_path / "b"),
                 "--model-factory", f"{tmp_path / 'nets.py'}:narrow"]) == 0
    assert (tmp_path / "b" / "model.onnx").is_file()
    # Another name is another study: refused in this run directory, naming what changed.
    with pytest.raises(EdgetuneError, match="different experiment"):
        edgetune.tune(**_arguments(tmp_path, references=[edgetune.named(_trained(width=8), "thin")],
                                   teacher=teacher, final={"candidates": 1, "epochs": 0}))


def test_references_and_teachers_given_wrongly_are_refused_before_any_trial(tmp_path):
    with pytest.raises(ConfigError, match="references is a str; give a list"):
        edgetune.tune(**_arguments(tmp_path, references="resnet20.pt"))
    with pytest.raises(ConfigError, match="references must be a torch.nn.Module or a function returning one, not a int"):
        edgetune.tune(**_arguments(tmp_path, references=[3]))
    twins = [edgetune.named(_trained(8), "twin"), edgetune.named(_trained(16), "twin")]
    with pytest.raises(ConfigError, match="both named 'twin'"):
        edgetune.tune(**_arguments(tmp_path, references=twins))
    wrong_classes = edgetune.named(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 7)), "seven")
    with pytest.raises(ConfigError, match="reference seven gives outputs of shape \\(1, 7\\)"):
        edgetune.tune(**_arguments(tmp_path, references=[wrong_classes]))
    with pytest.raises(ConfigError, match="teacher seven gives outputs of shape \\(1, 7\\)"):
        edgetune.tune(**_arguments(tmp_path, teacher=wrong_classes))
    named_in_file = {"epochs": 1, "learning_rate": 0.01, "distill": {"teacher": str(EXAMPLE / "weights.pt")}}
    with pytest.raises(ConfigError, match="teacher= is given and finetune.distill.teacher names"):
        edgetune.tune(**_arguments(tmp_path, teacher=_trained(), finetune=named_in_file))
    missing = tmp_path / "nowhere.pt"
    with pytest.raises(ConfigError, match=f"reference {missing} does not exist"):
        edgetune.tune(**_arguments(tmp_path, references=[missing]))
    assert not (tmp_path / "run").exists()  # each refused before the run directory was written
