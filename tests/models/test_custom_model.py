"""A network no registry knows, from the user's own file (`model.factory`), on the user's own
data (`data.factory`: RGB 32 x 32 Datasets), with a plain state_dict for weights: pruned,
fine-tuned, exported, timed, its trials rebuilt through the same factory; and every way of
naming either wrongly refused with the key, the file and what was expected."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from edgetune.config.experiment import load_experiment
from edgetune.errors import ConfigError, EdgetuneError
from edgetune.models.factory import ModelFactory
from edgetune.models.registry import load_checkpoint
from tests.models.custom_example import EXAMPLE, QUICK, example_module

ROOT = Path(__file__).parents[2]



def _weights(tmp_path: Path) -> Path:
    """The example's shipped weights (examples/custom-model/train.py wrote them: a bare state_dict)."""
    path = tmp_path / "weights.pt"
    path.write_bytes((EXAMPLE / "weights.pt").read_bytes())
    assert set(torch.load(path, weights_only=True)) >= {"features.0.weight", "classifier.bias"}  # no edgetune meta
    return path


def _experiment(tmp_path: Path, weights: Path, **model) -> Path:
    raw = yaml.safe_load((EXAMPLE / "experiment.yaml").read_text())
    raw["model"] = {"factory": str(EXAMPLE / "model.py") + ":build", "kwargs": {"width": 32},
                    "checkpoint": str(weights), **model}
    raw["data"] = {"factory": str(EXAMPLE / "data.py") + ":make", "kwargs": {"n_train": 1000, "n_val": 300,
                                                                            "n_test": 300}}
    raw.update(trials=2, run_dir=str(tmp_path / "run"), evaluate=str(EXAMPLE / "metrics.py") + ":score")
    raw["benchmark"] = {"runs_per_round": 5, "min_rounds": 2, "max_rounds": 3, "throughput_batches": [8],
                        "throughput_seconds": 0.2, "warmup": 2}
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.slow
def test_a_users_own_network_is_pruned_measured_and_rebuilt(tmp_path):
    from edgetune.study import run_study
    from edgetune.study.records.trial_export import export_trial

    weights = _weights(tmp_path)
    outcome = run_study(load_experiment(_experiment(tmp_path, weights))[0])
    done = [t for t in outcome.study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 2 and all(t.user_attrs["latency_ms"] > 0 for t in done)
    assert outcome.baseline["top1"] > 80  # the plain state_dict was loaded, not fresh weights (chance: 25)
    # The user's metrics: computed for every network, constrained by the sweep, in trials.csv.
    assert 0 < outcome.baseline["worst_class_recall"] <= outcome.baseline["balanced_accuracy"] <= 100
    for t in done:
        held = t.user_attrs["worst_class_recall"] >= 50
        assert held == ("worst_class_recall" not in t.user_attrs.get("infeasible", "")), t.user_attrs
    import csv

    with open(tmp_path / "run" / "trials.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert all(float(r["balanced_accuracy"]) > 0 for r in rows)
    factory = ModelFactory(str(EXAMPLE / "model.py") + ":build", {"width": 32})
    for t in done:
        model, meta = load_checkpoint(tmp_path / "run" / "trials" / f"{t.number:04d}" / "model.pt", factory=factory)
        kept = model.features[0].out_channels
        assert kept < 32 or t.params["stage_1"] < 1 / 64
        assert meta["factory"].endswith("model.py:build")
    # A trial's checkpoint names the user's code but is not enough to import it.
    with pytest.raises(EdgetuneError, match=r"built by '.*model.py:build'.*does not import on a checkpoint's word"):
        load_checkpoint(tmp_path / "run" / "trials" / "0000" / "model.pt")
    exported = export_trial(tmp_path / "run", "0", tmp_path / "export")
    assert exported.max_abs_diff < 1e-3


@pytest.mark.slow
def test_the_cli_runs_it_with_a_factory_relative_to_the_experiment_file(tmp_path):
    weights = _weights(tmp_path)
    folder = tmp_path / "project"
    folder.mkdir()
    for name in ("model.py", "data.py", "metrics.py"):
        (folder / name).write_text((EXAMPLE / name).read_text())
    raw = yaml.safe_load(_experiment(tmp_path, weights, factory="model.py:build").read_text())
    raw["data"]["factory"] = "data.py:make"
    raw["evaluate"] = "metrics.py:score"
    raw["trials"] = 1
    (folder / "experiment.yaml").write_text(yaml.safe_dump(raw))
    run = subprocess.run([sys.executable, "-m", "edgetune.cli", "run", str(folder / "experiment.yaml")],
                         check=False, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    resolved = yaml.safe_load((tmp_path / "run" / "experiment.resolved.yaml").read_text())
    assert resolved["model"]["factory"] == f"{(folder / 'model.py').resolve()}:build"
    assert resolved["data"]["factory"] == f"{(folder / 'data.py').resolve()}:make"


def _factory_error(tmp_path: Path, ref: str, **model) -> str:
    weights = tmp_path / "w.pt"
    if not weights.exists():
        torch.save(example_module("model").build(width=32).state_dict(), weights)
    from edgetune.study import plan_study
    from edgetune.study.runner import _workbench

    spec = load_experiment(_experiment(tmp_path, weights, factory=ref, **model))[0]
    with pytest.raises(EdgetuneError) as err:
        _workbench(plan_study(spec))
    return str(err.value)


def test_a_factory_named_wrongly_is_refused_with_the_key_the_file_and_what_was_expected(tmp_path):
    here = str(EXAMPLE / "model.py")
    assert "cannot import module 'no_such_pkg.models'" in _factory_error(tmp_path, "no_such_pkg.models:build")
    message = _factory_error(tmp_path, str(tmp_path / "missing.py") + ":build")
    assert "missing.py does not exist" in message and "model.factory" in message
    message = _factory_error(tmp_path, here + ":nope")
    assert "defines no 'nope'" in message and "build" in message  # the callables there are listed
    (tmp_path / "bad.py").write_text("def build(**kwargs):\n    return 42\n\nVALUE = 3\n")
    assert "returned a int; it must return a torch.nn.Module" in _factory_error(tmp_path, f"{tmp_path / 'bad.py'}:build")
    assert "is a int, not a function" in _factory_error(tmp_path, f"{tmp_path / 'bad.py'}:VALUE")
    (tmp_path / "broken.py").write_text("import torch\nraise RuntimeError('half-written file')\n")
    assert "importing" in _factory_error(tmp_path, f"{tmp_path / 'broken.py'}:build") and "half-written" in \
        _factory_error(tmp_path, f"{tmp_path / 'broken.py'}:build")
    assert "could not be called with model.kwargs {'depth': 3}" in _factory_error(
        tmp_path, here + ":build", kwargs={"depth": 3})
    # A checkpoint of another shape; a network whose outputs are not one score per class of the data.
    assert "w.pt does not fit the network model.factory" in _factory_error(
        tmp_path, here + ":build", kwargs={"width": 32, "num_classes": 7})
    assert "gives outputs of shape (2, 7) for (2, 3, 32, 32) images; the data's 4 classes need (2, 4)" in _factory_error(tmp_path, here + ":build",
                                                             kwargs={"width": 32, "num_classes": 7}, checkpoint=None)
    assert "cannot take the data's images (shape (2, 3, 32, 32))" in _factory_error(
        tmp_path, here + ":build", kwargs={"width": 32, "in_channels": 1}, checkpoint=None)


def test_model_section_rejects_a_malformed_entry_point_and_two_sources(tmp_path):
    path = tmp_path / "e.yaml"
    for model, expected in (({"factory": "model.py"}, r"model\.factory.*not an entry point"),
                            ({"factory": "m.py:build", "name": "resnet20"}, "not both"),
                            ({"name": "resnet20", "kwargs": {"width": 2}}, "model.kwargs are the arguments")):
        path.write_text(yaml.safe_dump({"model": model}))
        with pytest.raises(ConfigError, match=expected):
            load_experiment(path)


DATA_ERRORS = {
    "def make(**k):\n    return [1, 2, 3, 4]\n": "returned a list; it must return (train, val), (train, val, test) or a mapping",
    "def make(**k):\n    return 5, 6\n": "train is a int, not a Dataset or DataLoader",
    "import torch\ndef make(**k):\n    return [torch.zeros(1, 4, 4)], [torch.zeros(1, 4, 4)]\n":
        "item 0 is a Tensor; expected (image, label)",
    "import torch\ndef make(**k):\n    return [(torch.zeros(4, 4), 1)], [(torch.zeros(4, 4), 1)]\n":
        "images of shape (4, 4); expected channels x height x width",
    "import torch\ndef make(**k):\n    return [(torch.zeros(1, 4, 4), 0.5)], [(torch.zeros(1, 4, 4), 1)]\n":
        "expected integer classes: one per image, or one per pixel",
    "import torch\ndef make(**k):\n    return [(torch.zeros(1, 4, 4), 1)], [(torch.zeros(1, 8, 8), 1)]\n":
        "the splits' images differ in shape",
    "def make(**k):\n    return [], []\n": "train is empty",
}


def test_a_data_factory_returning_the_wrong_thing_is_refused_with_what_was_expected(tmp_path):
    from edgetune.data.custom import load_factory_data

    for i, (source, expected) in enumerate(DATA_ERRORS.items()):
        path = tmp_path / f"data{i}.py"
        path.write_text(source)
        with pytest.raises(ConfigError, match="data.factory") as err:
            load_factory_data(f"{path}:make", {})
        assert expected in str(err.value), (source, str(err.value))
    with pytest.raises(ConfigError, match=r"could not be called with data.kwargs \{'colour': 1\}"):
        load_factory_data(f"{EXAMPLE / 'data.py'}:make", {"colour": 1})


def test_the_example_data_is_read_as_given():
    from edgetune.data.custom import load_factory_data

    data = load_factory_data(f"{EXAMPLE / 'data.py'}:make", {"n_train": 64, "n_val": 32, "n_test": 16})
    assert (len(data.train), len(data.val), len(data.test)) == (64, 32, 16)
    assert data.in_channels == 3 and data.image_size == (32, 32) and data.num_classes == 4
    assert torch.equal(data.normalize(data.val.images[:4]), data.val.images[:4])  # float images: as given



@pytest.mark.slow
def test_the_python_api_takes_a_network_object_and_datasets_and_resumes(tmp_path):
    import edgetune

    data = example_module("data")
    train, val, test = data.make(n_train=600, n_val=200, n_test=200)
    net = example_module("model").build(width=32)
    net.load_state_dict(torch.load(_weights(tmp_path), weights_only=True))
    recipe = yaml.safe_load((EXAMPLE / "experiment.yaml").read_text())["recipe"]
    sweep = {"method": "random", "metric": {"name": "latency_ratio", "goal": "minimize"},
             "parameters": {"stage_1": {"min": 0.0, "max": 0.75}, "stage_2": {"min": 0.0, "max": 0.75}}}
    arguments = {"model": net, "train_data": train, "val_data": val, "test_data": test, "recipe": recipe,
                 "example_input": torch.zeros(1, 3, 32, 32),
                 "sweep": sweep, "finetune": {"epochs": 1, "learning_rate": 0.01, "augment": False},
                 "benchmark": QUICK, "trials": 2, "run_dir": tmp_path / "api", "progress": False}
    result = edgetune.tune(**arguments)
    frame = result.trials
    assert list(frame["trial"]) == ["baseline", 0, 1] and (frame["state"][1:] == "COMPLETE").all()
    assert result.best is not None and result.best["latency_ratio"] == frame["latency_ratio"][1:].min()
    done = result.export("best", tmp_path / "deploy")
    assert done.number == result.best["trial"] and done.max_abs_diff < 1e-3
    # The network object the user holds is left as it was (each candidate is a copy).
    assert net.features[0].out_channels == 32
    again = edgetune.tune(**arguments)  # resumes: the study has its trials, nothing runs again
    assert len(again.outcome.study.trials) == 2
    with pytest.raises(ConfigError, match="tune\\(\\) has no argument 'epochs'"):
        edgetune.tune(model=net, epochs=3)
    with pytest.raises(ConfigError, match="give both train_data and val_data"):
        edgetune.tune(model=net, train_data=train, recipe=recipe, run_dir=tmp_path / "x")


class _HuggingFaceStyle(torch.utils.data.Dataset):
    """Items as a `datasets.Dataset` with `.with_format("numpy")` gives them: mappings holding an
    H x W x C array and a label, under keys of the dataset's choosing."""

    def __init__(self, split, keys=("image", "label")):
        self.split, self.keys = split, keys

    def __len__(self):
        return len(self.split)

    def __getitem__(self, i):
        image, label = self.split[i]
        return {self.keys[0]: image.permute(1, 2, 0).numpy(), self.keys[1]: label, "id": i}


class _Accuracy:
    """A metric object as torchmetrics makes them: called on outputs and targets, it returns one
    number as a tensor, and its name is its class's."""

    def __call__(self, outputs, targets):
        return (outputs.argmax(1) == targets).float().mean() * 100


@pytest.mark.slow
def test_tune_takes_the_metric_the_loss_and_the_data_as_python_objects(tmp_path):
    """Notebook-style: a metric object, a partial as the loss, a DatasetDict-shaped factory of
    mapping items; each recorded by name in the study, which resumes from the same objects and
    refuses another metric under another name."""
    import functools

    import edgetune

    splits = example_module("data").make(n_train=300, n_val=200, n_test=100)
    net = example_module("model").build(width=32)
    net.load_state_dict(torch.load(_weights(tmp_path), weights_only=True))
    recipe = yaml.safe_load((EXAMPLE / "experiment.yaml").read_text())["recipe"]
    sweep = {"method": "random", "metric": {"name": "latency_ratio", "goal": "minimize"},
             "constraints": [{"metric": "accuracy", "min": 1}], "parameters": {"stage_1": {"min": 0.2, "max": 0.5}}}
    smoothed = functools.partial(torch.nn.functional.cross_entropy, label_smoothing=0.1)
    arguments = {"model": net, "recipe": recipe, "sweep": sweep, "benchmark": QUICK, "trials": 1,
                 "data": lambda: {"train": _HuggingFaceStyle(splits[0]), "validation": _HuggingFaceStyle(splits[1]),
                                  "test": _HuggingFaceStyle(splits[2])},
                 "finetune": {"epochs": 1, "learning_rate": 0.01}, "evaluate": _Accuracy(), "loss": smoothed,
                 "run_dir": tmp_path / "api", "progress": False}
    result = edgetune.tune(**arguments)
    row = result.trials.iloc[1]
    assert row["state"] == "COMPLETE" and row["accuracy"] == pytest.approx(row["top1"], abs=0.01)
    assert result.outcome.plan.user_code("loss") == "python:partial(torch.nn.functional:cross_entropy, " \
                                                    "label_smoothing=0.1)"
    again = edgetune.tune(**arguments)  # the same objects: the same study, nothing run again
    assert len(again.outcome.study.trials) == 1
    renamed = {**arguments, "evaluate": edgetune.named(_Accuracy(), "acc2"),
               "sweep": {**sweep, "constraints": [{"metric": "acc2", "min": 1}]}}
    with pytest.raises(EdgetuneError, match="of a different experiment"):
        edgetune.tune(**renamed)
    keyed = {**arguments, "data": lambda: {"train": _HuggingFaceStyle(splits[0], ("pixels", "y")),
                                           "val": _HuggingFaceStyle(splits[1], ("pixels", "y"))},
             "run_dir": tmp_path / "keyed"}
    with pytest.raises(ConfigError, match="item 0 is a mapping with keys 'pixels', 'y', 'id'.*data.item_keys"):
        edgetune.tune(**keyed)
    with pytest.raises(ConfigError, match="returned a mapping with keys 'train', 'dev'.*'val'"):
        edgetune.tune(**{**keyed, "data": lambda: {"train": splits[0], "dev": splits[1]}})


def test_python_callables_are_named_stably_for_the_study_and_their_one_number():
    import functools

    import edgetune
    from edgetune.entrypoints import function_name, metric_name, user_metrics

    def macro_f1(outputs, targets):
        return 0.5

    assert function_name(macro_f1).endswith(":test_python_callables_are_named_stably_for_the_study_and_their_one_"
                                            "number.<locals>.macro_f1")
    assert function_name(_Accuracy()) == "tests.models.test_custom_model:_Accuracy"
    assert function_name(functools.partial(macro_f1, 3)).startswith("partial(") and ", 3)" in \
        function_name(functools.partial(macro_f1, 3))
    assert metric_name(_Accuracy()) == "accuracy"
    assert metric_name(macro_f1) == "macro_f1" and metric_name(lambda o, t: 1) == "metric"
    assert metric_name(edgetune.named(macro_f1, "f1")) == "f1"
    outputs, targets = torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([1, 1])
    assert user_metrics(_Accuracy(), outputs, targets) == {"accuracy": 50.0}
    assert user_metrics(edgetune.named(lambda o, t: torch.tensor([0.25]), "quarter"), outputs, targets) == \
        {"quarter": 0.25}
    with pytest.raises(ConfigError, match="named\\(\\): 'two words' is not a name"):
        edgetune.named(macro_f1, "two words")


def test_an_input_shape_the_data_does_not_have_is_refused_naming_both_before_any_trial(tmp_path):
    import edgetune
    from edgetune.study import run_study

    weights = _weights(tmp_path)
    with pytest.raises(ConfigError, match=r"model.input_shape is \[3, 224, 224\] .* the data's images are \[3, 32, 32\]"):
        run_study(load_experiment(_experiment(tmp_path, weights, input_shape=[3, 224, 224]))[0])
    assert not (tmp_path / "run" / "trials").exists()
    train, val, _ = example_module("data").make(n_train=64, n_val=32, n_test=0)
    net = example_module("model").build(width=32)
    with pytest.raises(ConfigError, match=r"model.input_shape is \[1, 32, 32\]"):
        edgetune.tune(model=net, train_data=train, val_data=val, example_input=torch.zeros(2, 1, 32, 32),
                      run_dir=tmp_path / "api", progress=False, benchmark=QUICK)
    with pytest.raises(ConfigError, match=r"example_input: a batch of images \(N, C, H, W\) or their shape"):
        edgetune.tune(model=net, train_data=train, val_data=val, example_input=(32, 32), run_dir=tmp_path / "b")
    with pytest.raises(ConfigError, match="input_shape"):
        load_experiment(_experiment(tmp_path, weights, input_shape=[3, 0, 32]))


METRIC_ERRORS = {
    "def score(o, t):\n    raise KeyError('class 9')\n": "failed on outputs (64, 4) and targets (64,): KeyError",
    "def score(o, t):\n    return [0.5, 0.7]\n": "returned a list; it must return one number or a non-empty dict",
    "def score(o, t):\n    return {'miou': 'high'}\n": "returned 'miou': 'high', not a number",
}


@pytest.mark.slow
def test_a_users_metric_that_breaks_its_contract_or_is_missing_is_refused(tmp_path):
    from edgetune.study import run_study

    weights = _weights(tmp_path)
    for i, (source, expected) in enumerate(METRIC_ERRORS.items()):
        (tmp_path / f"m{i}.py").write_text(source)
        raw = yaml.safe_load(_experiment(tmp_path, weights).read_text())
        raw.update(evaluate=f"{tmp_path / f'm{i}.py'}:score", run_dir=str(tmp_path / f"run{i}"))
        (tmp_path / "e.yaml").write_text(yaml.safe_dump(raw))
        with pytest.raises(ConfigError, match="evaluate") as err:
            run_study(load_experiment(tmp_path / "e.yaml")[0])
        assert expected in str(err.value), str(err.value)
    raw = yaml.safe_load(_experiment(tmp_path, weights).read_text())
    raw["sweep"]["constraints"] = [{"metric": "miou", "min": 50}]
    raw["run_dir"] = str(tmp_path / "run-miou")
    (tmp_path / "e.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="names metric 'miou'.*it returned balanced_accuracy, worst_class_recall"):
        run_study(load_experiment(tmp_path / "e.yaml")[0])
    # Without an evaluate function, an unknown metric is still a typo, refused before any work.
    del raw["evaluate"]
    (tmp_path / "e.yaml").write_text(yaml.safe_dump(raw))
    from edgetune.study import plan_study

    with pytest.raises(ConfigError, match="unknown metric 'miou'"):
        plan_study(load_experiment(tmp_path / "e.yaml")[0])
    raw["evaluate"] = str(EXAMPLE / "metrics.py") + ":score"
    raw["benchmark"]["precision"] = "int8"
    raw["remote"] = {"broker": "redis://127.0.0.1:1/0", "queue": "device"}
    (tmp_path / "e.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="at int8 with your function, which runs in this process; a device worker"):
        plan_study(load_experiment(tmp_path / "e.yaml")[0])


@pytest.mark.slow
def test_at_int8_the_users_metric_scores_the_deployed_network(tmp_path):
    """The INT8 artefact is what users get: its outputs go to the user's function, and PyTorch's
    figure is kept beside it as `<name>_torch`."""
    from edgetune.study import run_study

    raw = yaml.safe_load(_experiment(tmp_path, _weights(tmp_path)).read_text())
    raw["benchmark"].update(precision="int8", int8_format="qdq-u8-channel", calibration_images=64)
    raw["trials"] = 1
    (tmp_path / "e.yaml").write_text(yaml.safe_dump(raw))
    outcome = run_study(load_experiment(tmp_path / "e.yaml")[0])
    for attrs in (outcome.baseline, outcome.study.trials[0].user_attrs):
        assert attrs["worst_class_recall"] == attrs["deployed_worst_class_recall"]
        assert attrs["balanced_accuracy"] == attrs["deployed_balanced_accuracy"]
        assert "balanced_accuracy_torch" in attrs and attrs["top1"] == attrs["deployed_top1"]
