"""Random damage to any file of a finished study (deleted, emptied, cut in half, overwritten with
random bytes, replaced by a folder), then the run started again: either a clear refusal that
leaves every finished trial's record as it was, or a resumed study that still holds every
finished trial. Never another exception, never a finished trial lost or overwritten."""

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from edgetune.config.experiment import load_experiment
from edgetune.errors import EdgetuneError
from edgetune.study import run_study
from tests.helpers import experiment

pytestmark = pytest.mark.slow

DAMAGE = ("delete", "empty", "half", "random", "folder")


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A study of two finished trials, made once; each example damages a copy."""
    root = tmp_path_factory.mktemp("finished")
    run_study(load_experiment(experiment(root, trials=2, epochs=0))[0])
    return root


def _records(run: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in sorted((run / "trials").glob("[0-9][0-9][0-9][0-9]/metrics.json"))
            if p.is_file()}  # the damaged one may be a folder now


def _damage(path: Path, how: str, noise: bytes) -> None:
    if how == "delete":
        path.unlink()
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "half":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "random":
        path.write_bytes(noise)
    else:
        path.unlink()
        path.mkdir()


# Each example resumes a study (seconds): few examples, and no shrinking (the example is printed as found).
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(pick=st.integers(min_value=0), how=st.sampled_from(DAMAGE), noise=st.binary(min_size=1, max_size=4096))
def test_a_damaged_file_is_refused_clearly_or_resumed_and_no_finished_trial_is_lost(finished, tmp_path_factory,
                                                                                   pick, how, noise):
    work = tmp_path_factory.mktemp("damaged")
    shutil.copytree(finished, work, dirs_exist_ok=True)
    run = work / "run"
    files = sorted(p for p in run.rglob("*") if p.is_file())
    target = files[pick % len(files)]
    before = _records(run)
    _damage(target, how, noise)
    path = experiment(work, trials=3, epochs=0)
    spared = {k: v for k, v in before.items() if run / "trials" / k / "metrics.json" != target}
    try:
        outcome = run_study(load_experiment(path)[0])
    except EdgetuneError as exc:  # a refusal: it says what and leaves the records as they were
        assert str(exc), f"{how} {target}: an empty error"
        after = _records(run)
        assert {k: after.get(k) for k in spared} == spared, f"{how} {target.relative_to(run)}: {exc}"
        return
    done = {t.number for t in outcome.study.trials if t.state.name == "COMPLETE"}
    assert {0, 1} <= done, f"{how} {target.relative_to(run)}: finished trials lost on resuming ({sorted(done)})"
    after = _records(run)
    assert {k: after.get(k) for k in spared} == spared, f"{how} {target.relative_to(run)}: a record overwritten"


# Found by the property above, each a traceback before: a damaged baseline (a cache) is measured
# again; a folder where a file must be written is refused naming it.
FOUND = {("baseline/metrics.json", "empty"): None, ("baseline/model.onnx", "random"): None,
         (".lock", "folder"): "lock file .*; a folder is in its place",
         ("study.db.bak", "folder"): "cannot write the database's copy .*study.db.bak: Is a directory; a folder is in its place",
         ("experiment.resolved.yaml", "folder"): "cannot write .*experiment.resolved.yaml: Is a directory; a folder is in its place"}


@pytest.mark.parametrize("where, how", FOUND)
def test_the_damage_the_property_found(finished, tmp_path, where, how):
    shutil.copytree(finished, tmp_path, dirs_exist_ok=True)
    run = tmp_path / "run"
    before = _records(run)
    _damage(run / where, how, b"\x93NUMPY junk")
    path = experiment(tmp_path, trials=3, epochs=0)  # one more trial: its copy of the database is taken
    if FOUND[(where, how)] is None:
        outcome = run_study(load_experiment(path)[0])
        done = [t for t in outcome.study.trials if t.state.name == "COMPLETE"]
        # A candidate whose timing a busy host disturbed is timed again as a trial of its own
        # (`remeasure_of`): the same candidate, not another (seen in a run beside other tests).
        candidates = {t.number for t in done if "remeasure_of" not in t.user_attrs}
        again = {t.user_attrs["remeasure_of"] for t in done if "remeasure_of" in t.user_attrs}
        assert {0, 1} <= candidates and len(candidates) == 3 and again <= candidates, [
            (t.number, t.state.name, t.user_attrs) for t in outcome.study.trials]
        assert (run / "baseline" / "metrics.json").read_text().startswith("{")  # measured again
        assert any(p.name.startswith("baseline.set-aside-") for p in run.iterdir())  # the damaged one kept
    else:
        with pytest.raises(EdgetuneError, match=FOUND[(where, how)]):
            run_study(load_experiment(path)[0])
    assert {k: v for k, v in _records(run).items() if k in before} == before
