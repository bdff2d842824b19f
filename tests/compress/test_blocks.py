"""Depth pruning: residual blocks found from the structure, removed whole, combined with width
pruning in one recipe, exported and rebuilt from a checkpoint."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edgetune.compress import describe_structure, rebuild_structure
from edgetune.compress.blocks import residual_blocks
from edgetune.compress.recipe import apply_pruners
from edgetune.config.recipe import parse_schedule
from edgetune.errors import ConfigError
from edgetune.models import build_model
from edgetune.runtimes.export import export_onnx
from edgetune.search.space import apply, parse_sweep, resolve_all


def _batches(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(n)
    return torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


X = torch.randn(1, 1, 28, 28)


def test_blocks_are_found_from_the_structure():
    """Identity-shortcut blocks only: the first block of stages 2 and 3 changes the shape (its
    shortcut is a strided projection) and stays; MobileNetV2's residual blocks are those whose
    input and output match."""
    assert list(residual_blocks(build_model("resnet20", num_classes=10, in_channels=1), X)) == [
        "layer1.0", "layer1.1", "layer1.2", "layer2.1", "layer2.2", "layer3.1", "layer3.2"]
    mobilenet = build_model("mobilenetv2", num_classes=10, in_channels=1)
    found = residual_blocks(mobilenet, X)
    assert found and all(mobilenet.get_submodule(b).use_residual for b in found)
    assert len(found) == sum(getattr(m, "use_residual", False) for m in mobilenet.modules())
    assert residual_blocks(build_model("vgg11", num_classes=10, in_channels=1), X) == {}


def _onnx_nodes(model: torch.nn.Module, path) -> int:
    export_onnx(model, X, path)
    return len(onnx.load(str(path)).graph.node)


@pytest.mark.parametrize("method", ["blocks", "blocks-change", "blocks-bn", "blocks-loss"])
def test_depth_and_width_in_one_recipe_export_and_rebuild(method, tmp_path, monkeypatch):
    # blocks-loss scores every block on its sampled images (256 by default, 64 s of the suite on
    # ResNet-56): the structure is what is checked here, not the ranking.
    monkeypatch.setattr("edgetune.compress.blocks.SAMPLES", 16)
    torch.manual_seed(0)
    model = build_model("resnet56", num_classes=10, in_channels=1).eval()
    before = _onnx_nodes(model, tmp_path / "before.onnx")
    raw = {"pruners": {
        "depth": {"class": method, "blocks": 3, "weights": ["module.layer1", "layer2", "layer3"]},
        "width": {"class": "filters-l1", "desired_sparsity": 0.5,
                  "weights": [f"module.layer{s}.{i}.conv1.weight" for s in (1, 2, 3) for i in range(9)]},
    }}
    records = apply_pruners(model, parse_schedule(raw), X, batches=_batches)
    depth = [r for r in records if r.pruner == "depth"]
    # Nine blocks a stage; the first of stages 2 and 3 changes the shape and stays.
    assert len(depth) == 9 + 8 + 8 and sum(r.removed for r in depth) == 6 + 5 + 5
    gone = [r for r in records if r.pruner == "width" and r.skipped and r.skipped.startswith("removed with")]
    assert len(gone) == 16  # the width pruner's layers inside removed blocks went with them
    after = _onnx_nodes(model, tmp_path / "after.onnx")
    assert after < before * 0.6  # operators gone, not only channels
    with torch.no_grad():
        expected = model.eval()(X).numpy()
    got = ort.InferenceSession(str(tmp_path / "after.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"input": X.numpy()})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)
    rebuilt = rebuild_structure(build_model("resnet56", num_classes=10, in_channels=1), describe_structure(model))
    rebuilt.load_state_dict(model.state_dict())
    with torch.no_grad():
        np.testing.assert_allclose(rebuilt.eval()(X).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_the_least_important_blocks_go_first():
    """A block whose residual branch is scaled to nothing is the first `blocks-bn` and
    `blocks-change` remove."""
    for method in ("blocks-bn", "blocks-change"):
        model = build_model("resnet20", num_classes=10, in_channels=1).eval()
        with torch.no_grad():
            model.layer2[2].bn2.weight.mul_(1e-3)
        raw = {"pruners": {"d": {"class": method, "blocks": 1, "weights": ["layer2"]}}}
        records = apply_pruners(model, parse_schedule(raw), X, batches=_batches)
        assert [r.weight for r in records if r.removed] == ["layer2.2"], method
        assert isinstance(model.layer2[2], torch.nn.Identity)


def test_depth_pruning_errors_name_the_module():
    vgg = build_model("vgg11", num_classes=10, in_channels=1)
    raw = {"pruners": {"d": {"class": "blocks", "desired_sparsity": 0.5, "weights": ["features"]}}}
    with pytest.raises(ConfigError, match=r"'features' holds no removable residual block.*removable blocks of "
                                          r"this network: none"):
        apply_pruners(vgg, parse_schedule(raw), X, batches=_batches)
    resnet = build_model("resnet20", num_classes=10, in_channels=1)
    raw = {"pruners": {"d": {"class": "blocks", "desired_sparsity": 0.5, "weights": ["layer2.0"]}}}
    with pytest.raises(ConfigError, match=r"'layer2.0' holds no removable residual block.*layer1.0, layer1.1"):
        apply_pruners(resnet, parse_schedule(raw), X, batches=_batches)
    raw["pruners"]["d"]["weights"] = ["layer4"]
    with pytest.raises(ConfigError, match="'layer4' is no module of this network; closest: layer"):
        apply_pruners(resnet, parse_schedule(raw), X, batches=_batches)
    with pytest.raises(ConfigError, match="blocks applies to depth pruning"):
        parse_schedule({"pruners": {"p": {"class": "filters-l1", "blocks": 2, "weights": ["conv1.weight"]}}})


def test_a_sweep_searches_blocks_kept_per_stage():
    raw = {"pruners": {"stage_1": {"class": "blocks", "desired_sparsity": 0.0, "weights": ["layer1"]}}}
    schedule = parse_schedule(raw)
    sweep = parse_sweep({"parameters": {"stage_1_blocks": {"min": 0, "max": 3}}})
    targets = resolve_all(sweep.parameters, schedule, {})
    applied, _ = apply(raw, targets, {"stage_1_blocks": 1})
    assert applied.pruners["stage_1"].blocks == 1 and "desired_sparsity" not in applied.pruners["stage_1"].model_fields_set
    model = build_model("resnet20", num_classes=10, in_channels=1).eval()
    records = apply_pruners(model, applied, X, batches=_batches)
    assert sum(r.removed for r in records) == 2  # three removable blocks in stage 1, one kept


def test_a_stage_is_scored_once_per_network_and_images(monkeypatch):
    """A study prunes copies of one network: the second trial's stages are answered from the
    first's scores, the same blocks go; other weights or other images are scored afresh."""
    import copy

    from edgetune.compress import blocks

    monkeypatch.setattr(blocks, "_SCORES", {})
    calls: list[list[str]] = []
    real = blocks.Blocks.scores
    monkeypatch.setattr(blocks.Blocks, "scores", lambda self, model, members, *a: calls.append(members) or
                        real(self, model, members, *a))
    base = build_model("resnet20", num_classes=10, in_channels=1).eval()
    raw = {"pruners": {"d": {"class": "blocks-change", "blocks": 1, "weights": ["layer1", "layer2"]}}}

    def removed(model, batches=_batches) -> list[str]:
        return [r.weight for r in apply_pruners(model, parse_schedule(raw), X, batches=batches) if r.removed]

    first = removed(copy.deepcopy(base))
    assert len(calls) == 2  # one score per stage
    assert removed(copy.deepcopy(base)) == first and len(calls) == 2
    other = copy.deepcopy(base)
    with torch.no_grad():
        other.layer1[0].conv1.weight.mul_(2)
    removed(other)
    assert len(calls) == 4
    removed(copy.deepcopy(base), batches=lambda n: _batches(n + 1))
    assert len(calls) == 6
