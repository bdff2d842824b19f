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


@pytest.mark.slow
def test_the_python_snippet_runs_as_written(tmp_path, monkeypatch):
    (block,) = _blocks("python")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(EXAMPLE))
    names: dict = {}
    try:
        exec(compile(block, str(PAGE), "exec"), names)  # noqa: S102 - the page's own code
    finally:
        for module in ("data", "model"):
            sys.modules.pop(module, None)
    result = names["result"]
    assert list(result.trials["trial"]) == ["baseline", 0, 1, 2]
    assert (tmp_path / "deploy" / "model.onnx").is_file() and (tmp_path / "runs" / "mine" / "study.db").is_file()
