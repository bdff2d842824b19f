"""docs/custom-models.md's snippets, run as the page shows them: a page that teaches code that
does not run is worse than none."""

import re
import sys
from pathlib import Path

import pytest
import yaml

from edgetune.config.experiment import experiment_from

ROOT = Path(__file__).parents[2]
PAGE = ROOT / "docs" / "custom-models.md"
EXAMPLE = ROOT / "examples" / "custom-model"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)


def test_every_yaml_block_is_accepted_by_the_experiment_schema():
    blocks = _blocks("yaml")
    assert len(blocks) >= 3
    sweep = {"metric": {"name": "latency_ratio", "goal": "minimize"}}
    for block in blocks:
        raw = yaml.safe_load(block)
        raw.setdefault("sweep", sweep)  # a snippet shows its own sections; the rest take defaults
        if "recipe" not in raw:
            raw["recipe"] = yaml.safe_load((EXAMPLE / "experiment.yaml").read_text())["recipe"]
        if "evaluate" in raw:
            raw["evaluate"] = f"{ROOT / 'examples' / 'segmentation' / raw['evaluate'].split(':')[0]}:" \
                              f"{raw['evaluate'].split(':')[1]}"
        raw.setdefault("model", {"factory": "model.py:build", "checkpoint": "weights.pt"})
        experiment_from(raw, EXAMPLE, str(PAGE))


def _run(block: str, tmp_path: Path, monkeypatch) -> dict:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(EXAMPLE))
    names: dict = {}
    try:
        exec(compile(block, str(PAGE), "exec"), names)  # noqa: S102 - the page's own code
    finally:
        for module in ("data", "model"):
            sys.modules.pop(module, None)
    return names


@pytest.mark.slow
def test_the_python_snippet_runs_as_written(tmp_path, monkeypatch):
    first = _blocks("python")[0]
    result = _run(first, tmp_path, monkeypatch)["result"]
    assert list(result.trials["trial"]) == ["baseline", 0, 1, 2]
    assert (tmp_path / "deploy" / "model.onnx").is_file() and (tmp_path / "runs" / "mine" / "study.db").is_file()


@pytest.mark.slow
def test_the_notebook_of_objects_runs_as_written(tmp_path, monkeypatch):
    """A network defined inline, a torchmetrics metric, a DatasetDict-shaped factory of mapping
    items, a partial as the loss: the page's walk-through, as it stands."""
    (notebook,) = [b for b in _blocks("python") if "torchmetrics" in b]
    (tmp_path / "examples" / "custom-model").mkdir(parents=True)
    (tmp_path / "examples" / "custom-model" / "weights.pt").write_bytes((EXAMPLE / "weights.pt").read_bytes())
    result = _run(notebook, tmp_path, monkeypatch)["result"]
    frame = result.trials
    assert list(frame["trial"]) == ["baseline", 0, 1, 2] and (frame["state"][1:] == "COMPLETE").all()
    assert list(frame["reference"][1:].fillna("")) == ["python:net-w16", "", ""]  # the sibling held as an object
    assert frame["params"][1] < frame["params"][0] / 3
    assert 0.5 < frame["macro_f1"][0] <= 1  # torchmetrics' figure for the unpruned network
    assert result.outcome.plan.user_code("evaluate") == "python:macro_f1"
