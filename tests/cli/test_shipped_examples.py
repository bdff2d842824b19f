"""Every shipped example runs as a newcomer runs it: as it is and with flags added. A flag once
turned every default of the file into a setting (data.name beside data.factory) and refused
both custom examples as soon as any flag was given."""

import subprocess
import sys
from pathlib import Path

import pytest

from edgetune.config.experiment import load_experiment

ROOT = Path(__file__).parents[2]
CUSTOM = [ROOT / "examples" / "custom-model" / "experiment.yaml", ROOT / "examples" / "segmentation" / "experiment.yaml"]


@pytest.mark.parametrize("example", CUSTOM, ids=lambda p: p.parent.name)
@pytest.mark.parametrize("flags", [{"run_dir": Path("elsewhere")}, {"trials": 1}, {"finetune.epochs": 0},
                                   {"data.val_subset": 100}])
def test_a_flag_on_a_custom_example_is_accepted_and_changes_only_itself(example, flags):
    plain, _ = load_experiment(example)
    spec, _ = load_experiment(example, flags)
    assert spec.data.factory == plain.data.factory and "name" not in spec.data.model_fields_set
    assert spec.model_dump(exclude={"run_dir", "trials", "finetune", "data"}) == plain.model_dump(
        exclude={"run_dir", "trials", "finetune", "data"})


@pytest.mark.slow
@pytest.mark.parametrize("example", CUSTOM, ids=lambda p: p.parent.name)
@pytest.mark.parametrize("flags", [[], ["--run-dir", "flagged", "--trials", "1", "--epochs", "0"]],
                         ids=["as-is", "with-flags"])
def test_the_custom_examples_run_from_the_command_line(tmp_path, example, flags):
    done = subprocess.run([sys.executable, "-m", "edgetune.cli", "run", str(example), *flags], cwd=tmp_path,
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = tmp_path / ("flagged" if flags else Path("runs") / example.parent.name)
    assert (run / "trials.csv").is_file()
    report = subprocess.run([sys.executable, "-m", "edgetune.cli", "report", str(run), "--format", "md"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert report.returncode == 0, report.stdout[-3000:] + report.stderr[-3000:]


def _objects_of(example: Path) -> dict:
    """What the example's file names (model.factory + checkpoint, data.factory, evaluate, loss),
    imported from its folder and handed over as Python objects, as a notebook would."""
    import importlib.util

    import torch
    import yaml

    raw = yaml.safe_load(example.read_text())

    def imported(ref: str):
        file, _, name = ref.partition(":")
        spec = importlib.util.spec_from_file_location(f"shipped_{example.parent.name}_{Path(file).stem}",
                                                      example.parent / file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return getattr(module, name)

    net = imported(raw["model"]["factory"])(**raw["model"].get("kwargs", {}))
    net.load_state_dict(torch.load(example.parent / raw["model"]["checkpoint"], weights_only=True))
    make = imported(raw["data"]["factory"])
    sizes = {k: min(v, 300) for k, v in raw["data"]["kwargs"].items()}
    objects = {"model": net, "data": lambda: make(**sizes), "evaluate": imported(raw["evaluate"])}
    if raw.get("loss"):
        objects["loss"] = imported(raw["loss"])
    sections = {k: raw[k] for k in ("recipe", "sweep", "finetune")}
    return {**objects, **sections, "name": raw["name"]}


@pytest.mark.slow
@pytest.mark.parametrize("example", CUSTOM, ids=lambda p: p.parent.name)
def test_the_custom_examples_run_from_python_with_their_content_as_objects(tmp_path, example):
    """The file's content, with every name it holds replaced by the object it names: the same
    study runs, with the user's metric and loss called from Python."""
    import edgetune

    given = _objects_of(example)
    result = edgetune.tune(**given, trials=1, run_dir=tmp_path / "objects", progress=False)
    frame = result.trials
    assert list(frame["trial"]) == ["baseline", 0] and frame["state"][1] == "COMPLETE"
    constrained = given["sweep"]["constraints"][0]["metric"]
    assert frame[constrained].notna().all()  # the example's own metric, from the function object
    assert result.outcome.plan.user_code("evaluate").startswith("python:")


SEED_EXAMPLES = sorted((ROOT / "examples" / "resnet56-fmnist").glob("*.experiment.yaml")) + [
    ROOT / "examples" / "resnet56-fmnist" / "experiment.yaml"]


@pytest.mark.parametrize("example", SEED_EXAMPLES, ids=lambda p: p.name)
@pytest.mark.parametrize("flags", [{}, {"run_dir": Path("elsewhere"), "trials": 1}, {"finetune.epochs": 0}])
def test_every_resnet56_example_reads_with_and_without_flags(example, flags):
    spec, _ = load_experiment(example, flags)
    assert spec.model.checkpoint is not None and spec.model.checkpoint.is_file()
    assert spec.trials == flags.get("trials", load_experiment(example)[0].trials)


@pytest.mark.slow
@pytest.mark.parametrize("example", SEED_EXAMPLES, ids=lambda p: p.name)
def test_every_resnet56_example_passes_its_dry_run_with_flags(tmp_path, example):
    """The whole run of each is minutes to tens of minutes (`make run` is the first); its dry run
    checks everything the run checks before the first trial (the recipe applied at the sweep's
    bounds, the references, the metric), here with flags added."""
    done = subprocess.run([sys.executable, "-m", "edgetune.cli", "run", str(example), "--dry-run", "--run-dir",
                           "flagged", "--trials", "1", "--epochs", "0"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "nothing was written" in done.stdout and not (tmp_path / "flagged").exists()


@pytest.mark.slow
def test_the_main_job_runs_from_python_with_its_networks_as_objects(tmp_path):
    """`make run`'s file with ResNet-56 and its sibling ResNet-20 handed over as network objects
    (as a notebook holding them would), at a budget of seconds: the same search (depth, width and
    precision, the sibling measured at fp32 and INT8 beside it); the final stage, which scores
    every finalist on the whole test split, is left to the custom examples' twins and test_final."""
    import yaml

    import edgetune
    from edgetune.models.registry import load_checkpoint

    example = ROOT / "examples" / "resnet56-fmnist" / "experiment.yaml"
    raw = yaml.safe_load(example.read_text())
    resnet56, _ = load_checkpoint(ROOT / "models" / "resnet56-fmnist.pt")
    resnet20, _ = load_checkpoint(ROOT / "models" / "resnet20-fmnist.pt")
    sweep = {**raw["sweep"], "enqueue": []}
    result = edgetune.tune(
        model=resnet56, references=[edgetune.named(resnet20, "resnet20")], recipe=raw["recipe"], sweep=sweep,
        data={**raw["data"], "train_subset": 128, "val_subset": 200},
        finetune={**raw["finetune"], "epochs": 0}, final=None,
        benchmark={**raw["benchmark"], "runs_per_round": 5, "min_rounds": 2, "max_rounds": 3,
                   "throughput_batches": [8], "throughput_seconds": 0.2, "warmup": 2},
        trials=1, run_dir=tmp_path / "main", progress=False)
    frame = result.trials
    references = sorted(r for r in frame["reference"].dropna() if r)
    assert references == ["python:resnet20", "python:resnet20@int8"]
    assert (frame["state"][1:] == "COMPLETE").all() and len(frame) == 4
    assert set(frame.loc[frame["reference"] == "python:resnet20@int8", "precision"]) == {"int8"}


@pytest.mark.slow
@pytest.mark.parametrize("example", [p for p in SEED_EXAMPLES if p.name != "experiment.yaml"], ids=lambda p: p.name)
def test_the_other_resnet56_examples_run_from_python_with_the_network_and_recipe_as_objects(tmp_path, example):
    """The seed's search and the two comparison files: ResNet-56 as an object, the recipe file's
    content as a dict (what a notebook holding both would pass), one trial without fine-tuning."""
    import yaml

    import edgetune
    from edgetune.models.registry import load_checkpoint

    raw = yaml.safe_load(example.read_text())
    recipe = yaml.safe_load((example.parent / raw["recipe"]).read_text())
    resnet56, _ = load_checkpoint(ROOT / "models" / "resnet56-fmnist.pt")
    result = edgetune.tune(
        model=resnet56, recipe=recipe, sweep=raw["sweep"], data={**raw["data"], "train_subset": 128, "val_subset": 200},
        finetune={**raw.get("finetune", {}), "epochs": 0},
        benchmark={**raw.get("benchmark", {}), "runs_per_round": 5, "min_rounds": 2, "max_rounds": 3,
                   "throughput_batches": [8], "throughput_seconds": 0.2, "warmup": 2},
        trials=1, run_dir=tmp_path / "run", progress=False)
    frame = result.trials
    assert list(frame["trial"]) == ["baseline", 0] and frame["state"][1] == "COMPLETE"
    assert frame["macs"][1] < frame["macs"][0]  # the recipe at the sampled ratios thinned the network
