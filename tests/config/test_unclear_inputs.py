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
