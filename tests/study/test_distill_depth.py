"""Distillation from the unpruned network and depth pruning inside a study: both searchable,
both recorded per trial."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import yaml

from edgetune.config.experiment import load_experiment
from edgetune.study import run_study
from edgetune.training.loop import distillation_loss
from tests.helpers import RECIPE, ROOT, experiment, read_csv


def test_distillation_loss_is_the_stated_mix():
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(16, 10, generator=g), torch.randn(16, 10, generator=g)
    labels = torch.randint(0, 10, (16,), generator=g)
    ce = torch.nn.functional.cross_entropy(student, labels)
    assert torch.allclose(distillation_loss(student, teacher, labels, 0.0, 4.0), ce)
    assert float(distillation_loss(student, student, labels, 1.0, 4.0)) == pytest.approx(0.0, abs=1e-6)
    t = 3.0  # alpha = 1: T^2 KL(softmax(teacher/T) || softmax(student/T)), by hand
    p = torch.softmax(teacher / t, 1)
    kl = (p * (torch.log(p) - torch.log_softmax(student / t, 1))).sum(1).mean()
    assert torch.allclose(distillation_loss(student, teacher, labels, 1.0, t), t * t * kl, atol=1e-6)


@pytest.mark.slow
def test_a_study_searches_depth_width_and_distillation(tmp_path):
    recipe = copy.deepcopy(RECIPE)
    recipe["pruners"]["depth"] = {"class": "blocks", "desired_sparsity": 0.0, "weights": ["layer1", "layer2"]}
    recipe["policies"].insert(0, {"pruner": {"instance_name": "depth"}, "epochs": [0]})
    path = experiment(tmp_path, trials=3, epochs=1, recipe=recipe)
    raw = yaml.safe_load(path.read_text())
    raw["sweep"]["parameters"] = {"depth_blocks": {"values": [0, 1]}, "stage_3": {"min": 0.3, "max": 0.6},
                                  "finetune.distill.alpha": {"values": [0.0, 0.7]}}
    raw["finetune"]["distill"] = {"temperature": 4.0}
    path.write_text(yaml.safe_dump(raw))
    spec, _ = load_experiment(path)
    run_study(spec)
    rows = read_csv(tmp_path / "run" / "trials.csv")[1:]
    assert len(rows) == 3 and all(r["state"] == "COMPLETE" for r in rows), [r.get("error") for r in rows]
    for r in rows:
        saved = yaml.safe_load((tmp_path / "run" / "trials" / f"{int(r['trial']):04d}" / "recipe.yaml").read_text())
        assert saved["finetune"]["distill"] == {"alpha": float(r["param.finetune.distill.alpha"]), "temperature": 4.0,
                                                "teacher": None}
        assert saved["schedule"]["pruners"]["depth"]["blocks"] == int(float(r["param.depth_blocks"]))
    by_depth = {int(float(r["param.depth_blocks"])): float(r["macs"]) for r in rows}
    if len(by_depth) == 2:  # fewer blocks kept, fewer MACs
        assert by_depth[0] < by_depth[1]


@pytest.mark.slow
def test_a_repeated_candidate_is_answered_from_the_study(tmp_path):
    """Two ratios that keep the same widths make the same network: the second trial is not
    pruned, trained and timed again but answered from the first, and the sampler told the same."""
    path = experiment(tmp_path, trials=3, epochs=1)
    raw = yaml.safe_load(path.read_text())
    # 16 filters: 0.5 and 0.51 both remove 8; 0.25 removes 4.
    raw["sweep"] = {"method": "grid", "metric": {"name": "Latency", "goal": "minimize"},
                    "parameters": {"stage_1": {"values": [0.5, 0.51, 0.25]}, "stage_3": {"value": 0.5}},
                    "early_stop": {"collapse": False}}
    path.write_text(yaml.safe_dump(raw))
    spec, _ = load_experiment(path)
    outcome = run_study(spec)
    trials = {t.params["stage_1"]: t for t in outcome.study.trials}
    first, again = trials[0.5], trials[0.51]
    if first.number > again.number:
        first, again = again, first
    assert again.user_attrs["duplicate_of"] == first.number
    assert again.values == first.values and again.user_attrs["top1"] == first.user_attrs["top1"]
    assert not (tmp_path / "run" / "trials" / f"{again.number:04d}" / "model.onnx").exists()  # nothing exported
    # The same figures in both folders; only the time each trial took is its own (the repeat's, a
    # lookup's).
    def figures(number):
        saved = json.loads((tmp_path / "run" / "trials" / f"{number:04d}" / "metrics.json").read_text())
        saved["metrics"] = {k: v for k, v in saved["metrics"].items() if not k.startswith(("seconds_", "overhead"))}
        return saved

    assert figures(again.number) == figures(first.number)
    assert again.user_attrs["seconds_trial"] < first.user_attrs["seconds_trial"] / 5
    assert "duplicate_of" not in trials[0.25].user_attrs
    assert again.number not in {t.number for t in outcome.feasible()}  # shown once, as the first
    rows = read_csv(tmp_path / "run" / "trials.csv")
    assert any(r["duplicate_of"] for r in rows)


@pytest.mark.slow
def test_the_same_widths_at_another_precision_are_another_candidate(tmp_path):
    """An INT8 candidate with an fp32 trial's widths is a different deployed network: measured
    and scored for itself, never answered from the fp32 trial."""
    path = experiment(tmp_path, trials=2, epochs=0)
    raw = yaml.safe_load(path.read_text())
    raw["sweep"] = {"method": "grid", "metric": {"name": "Latency", "goal": "minimize"},
                    "parameters": {"stage_1": {"value": 0.5}, "stage_3": {"value": 0.5},
                                   "precision": {"values": ["fp32", "int8"]}},
                    "early_stop": {"collapse": False}}
    path.write_text(yaml.safe_dump(raw))
    outcome = run_study(load_experiment(path)[0])
    trials = {t.params["precision"]: t for t in outcome.study.trials}
    assert set(trials) == {"fp32", "int8"}
    assert all("duplicate_of" not in t.user_attrs for t in trials.values())
    assert trials["int8"].user_attrs["precision"] == "int8"
    assert (tmp_path / "run" / "trials" / f"{trials['int8'].number:04d}" / "model.onnx").is_file()
    assert trials["int8"].user_attrs["latency_ratio"] != trials["fp32"].user_attrs["latency_ratio"]


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
    from tests.helpers import ROOT

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

    five = _five_classes(tmp_path)
    path = experiment(tmp_path, trials=0, epochs=0)
    raw = yaml.safe_load(path.read_text())
    raw["sweep"]["enqueue"] = [str(five)]
    path.write_text(yaml.safe_dump(raw))
    spec, _ = load_experiment(path)
    with pytest.raises(ConfigError, match=r"reference .*five-classes.pt does not fit the student \(model resnet20: 10 classes"):
        run_study(spec)


def _five_classes(tmp_path):
    from edgetune.models import build_model, save_checkpoint

    five = tmp_path / "five-classes.pt"
    save_checkpoint(five, build_model("resnet20", num_classes=5, in_channels=1),
                    {"model": "resnet20", "num_classes": 5, "in_channels": 1})
    return five


def test_a_teacher_of_other_classes_is_refused_naming_both_before_any_trial(tmp_path):
    from edgetune.errors import ConfigError

    path = experiment(tmp_path, trials=1, epochs=1)
    raw = yaml.safe_load(path.read_text())
    raw["finetune"]["distill"] = {"alpha": 0.5, "teacher": str(_five_classes(tmp_path))}
    path.write_text(yaml.safe_dump(raw))
    spec, _ = load_experiment(path)
    with pytest.raises(ConfigError, match=r"teacher .*five-classes.pt does not fit the student \(model resnet20: "
                                          r"10 classes, \(1, 28, 28\) images\)") as caught:
        run_study(spec)
    assert caught.value.key == "finetune.distill.teacher"
    assert not (tmp_path / "run" / "trials").exists()


def _answers_class_3(tmp_path):
    """The shipped ResNet-20 with its classifier made to answer class 3 whatever it sees."""
    from edgetune.models import load_checkpoint, save_checkpoint

    model, meta = load_checkpoint(ROOT / "models" / "resnet20-fmnist.pt")
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.copy_(torch.nn.functional.one_hot(torch.tensor(3), 10).float() * 10)
    path = tmp_path / "class-3.pt"
    save_checkpoint(path, model, meta)
    return path


@pytest.mark.slow
def test_the_named_teacher_is_the_one_the_candidates_learn_from(tmp_path):
    """A teacher that always answers class 3, distilled at alpha 1, drags the student's top-1
    towards chance; the unpruned network as teacher keeps it: so the named one was used."""
    biased = _answers_class_3(tmp_path)
    top1 = {}
    for name, teacher in (("unpruned", None), ("biased", str(biased))):
        (tmp_path / name).mkdir()
        path = experiment(tmp_path / name, trials=1, epochs=1, train_subset=2048)
        raw = yaml.safe_load(path.read_text())
        raw["sweep"]["parameters"] = {"stage_1": {"value": 0.3}, "stage_3": {"value": 0.3}}
        raw["finetune"].update(learning_rate=0.02, distill={"alpha": 1.0, "temperature": 1.0, "teacher": teacher})
        path.write_text(yaml.safe_dump(raw))
        spec, _ = load_experiment(path)
        run_study(spec)
        row = read_csv(tmp_path / name / "run" / "trials.csv")[1]
        top1[name] = float(row["top1"])
    assert top1["unpruned"] > 80 and top1["biased"] < top1["unpruned"] - 30, top1


@pytest.mark.slow
def test_a_fine_tuned_reference_learns_from_the_unpruned_network_not_from_itself(tmp_path):
    """A reference whose classifier answers class 3 whatever it sees, fine-tuned with
    distillation at alpha 1: taught by the unpruned network it recovers; taught by itself (it
    stands in the baseline's place while it is measured) it would stay at chance."""
    broken = _answers_class_3(tmp_path)
    path = experiment(tmp_path, trials=0, epochs=1, train_subset=2048)
    raw = yaml.safe_load(path.read_text())
    raw["sweep"].update(enqueue=[str(broken)], reference_finetune=True)
    raw["finetune"].update(learning_rate=0.02, distill={"alpha": 1.0, "temperature": 1.0})
    path.write_text(yaml.safe_dump(raw))
    spec, _ = load_experiment(path)
    outcome = run_study(spec)
    ref = next(t for t in outcome.study.trials if t.user_attrs.get("reference"))
    assert ref.user_attrs["top1_before_ft"] < 20, ref.user_attrs  # the broken classifier, as enqueued
    assert ref.user_attrs["top1"] > 80, ref.user_attrs  # taught by the unpruned network


# The fields of the schemas when the first studies were written (commit 9d5be25): a study's
# fingerprint over them must not change when a setting is added at its default, or every
# earlier study would be refused on resume as "a different experiment".
FIRST_FIELDS = {
    "sweep": ["command", "constraints", "description", "early_stop", "enqueue", "entity", "method", "metric", "name",
              "objectives", "parameters", "per_layer", "predictor", "program", "project", "protocol",
              "reference_repeats", "rl", "run_cap", "space", "trials"],
    "finetune": ["augment", "batch_size", "epochs", "learning_rate", "momentum", "weight_decay"],
    "data": ["name", "root", "split_seed", "train_subset", "val_size", "val_subset"],
    "model": ["checkpoint", "name"],
    "benchmark": ["batch_size", "calibration_images", "device", "energy_seconds", "engine_throughput", "hint",
                  "int8_format", "int8_tolerance", "interleave_reference", "layer_runs", "max_rounds", "max_seconds",
                  "max_spread", "min_rounds", "per_layer", "precision", "remeasure", "repeats", "runs_per_round",
                  "runtime", "threads", "throughput_batches", "throughput_seconds", "warmup"],
}


FIRST_PARAMETER_FIELDS = ("value", "values", "min", "max", "q", "distribution", "widths")


def test_a_new_setting_at_its_default_keeps_earlier_studies_fingerprints(tmp_path):
    import hashlib
    import json

    from edgetune.study import plan_study

    spec, _ = load_experiment(experiment(tmp_path))
    plan = plan_study(spec)

    def first(section: str, dumped: dict) -> dict:
        out = {k: v for k, v in dumped.items() if k in FIRST_FIELDS[section]}
        if section == "sweep":  # and inside the sweep, the metric's and the parameters' first keys
            out["metric"] = {k: v for k, v in out["metric"].items() if k in ("name", "goal")}
            out["parameters"] = {n: {k: v for k, v in p.items() if k in FIRST_PARAMETER_FIELDS}
                                 for n, p in out["parameters"].items()}
            out["early_stop"] = {k: v for k, v in out["early_stop"].items()
                                 if k in ("method", "collapse", "collapse_margin", "warmup_epochs")}
        return out

    blob = json.dumps([plan.raw_schedule, first("sweep", plan.sweep.model_dump()),
                       first("data", spec.data.model_dump(mode="json")), first("model", spec.model.model_dump(mode="json")),
                       first("finetune", spec.finetune.model_dump()), first("benchmark", spec.benchmark.model_dump())],
                      sort_keys=True, default=str)
    assert plan.fingerprint == hashlib.sha256(blob.encode()).hexdigest()[:16]


@pytest.mark.slow
def test_a_repeat_of_another_producers_candidate_is_answered_from_the_study(tmp_path):
    """On a shared storage the first trial's files are in another producer's run directory: the
    repeat is answered from the figures the study holds."""
    path = experiment(tmp_path, trials=1, epochs=0)
    raw = yaml.safe_load(path.read_text())
    raw["sweep"] = {"method": "grid", "metric": {"name": "Latency", "goal": "minimize"},
                    "parameters": {"stage_1": {"values": [0.5, 0.51]}, "stage_3": {"value": 0.5}}}
    raw["storage"] = f"sqlite:///{tmp_path / 'shared.db'}"
    path.write_text(yaml.safe_dump(raw))
    spec, _ = load_experiment(path, {"run_dir": tmp_path / "p0"})
    run_study(spec)
    spec, _ = load_experiment(path, {"run_dir": tmp_path / "p1", "trials": 2})
    outcome = run_study(spec)
    first, again = sorted(outcome.study.trials, key=lambda t: t.number)
    assert again.state.name == "COMPLETE", again.user_attrs.get("error")
    assert again.user_attrs["duplicate_of"] == first.number and again.values == first.values
    assert again.user_attrs["top1"] == first.user_attrs["top1"]
    assert again.user_attrs["pruned_structures"] == first.user_attrs["pruned_structures"]


@pytest.mark.slow
def test_a_checkpoint_reference_is_measured_in_every_precision_the_search_may_deploy(tmp_path):
    """With the precision searched, the smaller sibling is measured quantised too: what a user
    would try first is beside the search in each precision the search may pick."""
    from rich.console import Console

    from edgetune.report.progress import results_table
    from tests.helpers import ROOT

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
