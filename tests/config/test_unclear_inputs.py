"""Inputs whose errors used to leave a user guessing: an empty section, an unknown network name,
a file of random bytes given as a checkpoint, a flag's error naming a flag nobody typed."""

import os

import pytest

from edgetune.config.experiment import load_experiment
from edgetune.errors import ConfigError, EdgetuneError

ROOT = __import__("pathlib").Path(__file__).parents[2]
EXPERIMENT = ROOT / "examples" / "resnet56-fmnist" / "experiment.yaml"


def test_an_empty_section_says_what_goes_in_it(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text("model:\n")
    with pytest.raises(ConfigError, match=r"`model:` is empty; give its settings, e\.g\. model: \{checkpoint:"):
        load_experiment(path)


def test_a_flags_error_names_the_flag_that_was_typed():
    with pytest.raises(ConfigError, match=r"with --data, at 'data.name': unknown dataset 'mnist'") as err:
        load_experiment(EXPERIMENT, {"data.name": "mnist"})
    assert "--name" not in str(err.value)


def test_an_unknown_network_lists_the_registered_ones_and_random_bytes_are_not_a_checkpoint(tmp_path):
    from edgetune.models.registry import load_checkpoint

    with pytest.raises(ConfigError, match=r"unknown model 'resnet9000'; registered: .*resnet56.*model.factory"):
        load_checkpoint(ROOT / "models" / "resnet20-fmnist.pt", model_name="resnet9000")
    junk = tmp_path / "weights.pt"
    junk.write_bytes(os.urandom(512))
    with pytest.raises(EdgetuneError, match=r"weights.pt: not a PyTorch checkpoint of weights") as err:
        load_checkpoint(junk)
    assert "weights_only=False" not in str(err.value)  # torch's advice would run arbitrary code


@pytest.mark.parametrize(("key", "value", "says"), [
    ("storage", "notaurl", "is not a study storage URL; accepted: sqlite:///"),
    ("storage", "sqlite://", "is not a study storage URL"),
    ("device", "tpu9", "is not a training device; accepted: cpu, cuda, cuda:N"),
    ("device", "cuda:x", "is not a training device"),
])
def test_a_storage_url_or_device_that_cannot_work_is_refused_when_the_experiment_is_read(key, value, says):
    """Both once passed until the run directory was made, then ended in SQLAlchemy's or PyTorch's
    traceback."""
    with pytest.raises(ConfigError, match=rf"at '{key}': .*{says}"):
        load_experiment(EXPERIMENT, {key: value})


def test_accepted_storage_urls_and_devices_pass():
    for url in ("sqlite:///x.db", "postgresql://u:p@localhost:5432/db", "postgresql+psycopg2://h/db",
                "redis://localhost:6379/0", "rediss://h:6380/1"):
        assert load_experiment(EXPERIMENT, {"storage": url})[0].storage == url
    for device in ("cpu", "cuda", "cuda:1", "mps"):
        assert load_experiment(EXPERIMENT, {"device": device})[0].device == device


def test_a_yaml_key_given_twice_is_refused_naming_both_lines(tmp_path):
    """PyYAML kept the last value silently."""
    path = tmp_path / "e.yaml"
    path.write_text("name: first\ntrials: 3\nname: second\n")
    with pytest.raises(ConfigError, match=r"'name' first given on line 1, given again on line 3; keep one"):
        load_experiment(path)


def test_aliases_that_expand_without_bound_are_refused_at_once(tmp_path):
    """A 552-byte file of nested anchors filled 4.4 GB in 120 s with no output."""
    import time

    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="aliases expand to more than 1,000,000 values"):
        load_experiment(path)
    assert time.perf_counter() - t0 < 10


def test_a_binary_file_as_an_experiment_is_named_not_a_traceback(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConfigError, match=r"e\.yaml: not a text file: a YAML experiment was expected"):
        load_experiment(path)


def test_every_shipped_yaml_file_reads_under_the_strict_loader():
    from edgetune.files import read_yaml

    files = [*ROOT.joinpath("examples").rglob("*.yaml"), *ROOT.joinpath("experiments").rglob("*.yaml")]
    assert files
    for path in files:
        read_yaml(path, "file")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_metric_that_is_not_finite_is_refused_naming_the_function_and_the_key(bad):
    """A NaN was feasible under `min` constraints and returned as the best trial."""
    from edgetune.entrypoints import user_metrics

    def my_score(outputs, targets):
        return {"fine": 1.0, "my_score": bad}

    with pytest.raises(ConfigError, match=r"evaluate function .*my_score returned 'my_score': .*finite number"):
        user_metrics(my_score, None, None)
