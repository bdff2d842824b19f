"""After the search: train the front again, re-score it, pick one that holds, test it once.

A search scores each candidate cheaply (a short fine-tune, a validation subset) because it
scores many. The few it ends with deserve more: the members of the feasible accuracy/latency
front are trained again with a larger budget (`final:`), scored on the whole validation split
image by image beside the unpruned network, and the pick is the best by the study's objective
among those whose loss holds at the stated confidence (held.py). The test split is looked at
once, after the pick, for the pick, the baseline and the references: never to choose.

Everything lands under RUN_DIR/final (one folder per finalist, written when it is done; the
training itself resumes by epoch, and a finished training is never repeated), so a killed stage
picks up where it stopped and a rerun of a finished one redoes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna.trial import TrialState
from torch import nn

from edgetune.config.benchmark import BenchmarkSpec
from edgetune.config.experiment import FinalSpec
from edgetune.data.splits import ImageSplit
from edgetune.errors import EdgetuneError, MissingExtraError
from edgetune.files import atomic_write_json
from edgetune.metrics.objectives import ACCURACY, Constraint
from edgetune.metrics.record import Recorded
from edgetune.models.registry import load_checkpoint
from edgetune.runtimes.export import export_onnx
from edgetune.runtimes.profiler import deployed_predictions
from edgetune.study.planning.plan import Plan
from edgetune.study.planning.references import reference_source
from edgetune.study.records.held import FinalOutcome, PairedDrop, finalist_records, paired_drop
from edgetune.study.records.results import accuracy_latency_front, feasible_trials
from edgetune.study.trial.reporter import Reporter
from edgetune.study.trial.workbench import Workbench
from edgetune.training.baseline import train_baseline, training_completed
from edgetune.training.loop import Training


@dataclass(frozen=True)
class Finalist:
    number: int
    reference: str | None  # the `enqueue` entry a reference trial measured
    train_again: bool


def choose_finalists(study: optuna.Study, candidates: int, train_references: bool) -> list[Finalist]:
    """Up to `candidates` members of the feasible front, spread from fastest to most accurate
    (filled from the most accurate other feasible trials when the front is shorter), then one
    trial of each reference (the unpruned `baseline` reference is the baseline row). Only trials
    measured faster than the unpruned network qualify: one that is slower (a width that runs
    slower than the full one, a more accurate but heavier candidate) is no compression to deploy,
    however well it holds its accuracy."""
    faster = {t.number for t in feasible_trials(study) if (Recorded.of(t).latency_ratio or 0.0) < 1.0}
    front = [number for number, _, _ in accuracy_latency_front(study, keep=lambda t: t.number in faster)]
    if len(front) > candidates:
        front = [front[i] for i in sorted({round(x) for x in np.linspace(0, len(front) - 1, candidates)})]
    else:  # a front shorter than asked: the most accurate of the other feasible trials fill it
        rest = sorted((t for t in feasible_trials(study) if t.number not in front and t.number in faster
                       and Recorded.of(t).top1 is not None),
                      key=lambda t: -float(Recorded.of(t).top1))  # type: ignore[arg-type]
        front += [t.number for t in rest[:candidates - len(front)]]
    chosen = [Finalist(n, None, True) for n in front]
    seen: set[str] = set()
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        ref = Recorded.of(t).reference
        if ref and ref != "baseline" and ref not in seen:
            seen.add(ref)
            # Another network (a checkpoint, or an object from Python) was trained as usual already.
            network = Path(reference_source(ref)).suffix in (".pt", ".pth") or ref.startswith("python:")
            chosen.append(Finalist(t.number, ref, train_references or not network))
    return chosen


def run_final(plan: Plan, study: optuna.Study, bench: Workbench, constraints: list[Constraint],
              baseline: dict[str, Any], reporter: Reporter) -> FinalOutcome | None:
    final = plan.spec.final
    if final is None:
        return None
    paths = plan.paths
    if paths.pick.is_file():  # done before: the test split is looked at once
        return _read_pick(paths.pick)
    finalists = choose_finalists(study, final.candidates, plan.sweep.reference_finetune)
    max_drop = final.max_accuracy_drop if final.max_accuracy_drop is not None else allowed_drop(constraints, baseline)
    val = bench.data.val
    images = bench.data.normalize(val.images).numpy()
    labels = val.labels.numpy()
    base = _baseline_record(plan, bench, images, labels, reporter)
    records = {"baseline": base}
    base_correct = np.load(paths.finalist("baseline") / "correct.npy")
    against = _Against(images, labels, base_correct, max_drop)
    for f in finalists:
        records[str(f.number)] = _finalise(plan, study, bench, f, against, reporter)
    picked, reason = _pick(plan, study, finalists, records, max_drop)
    test = _test_once(plan, bench, picked, finalists, reporter) if len(bench.data.test) else {}
    if not len(bench.data.test):
        reason += "; the data gives no test split, so there is no test figure"
    outcome = FinalOutcome(records, picked, reason, max_drop, final.confidence, test)
    atomic_write_json(paths.pick, {"picked": picked, "reason": reason, "max_drop": max_drop,
                                   "confidence": final.confidence, "test_top1": test,
                                   "finalists": [f.number for f in finalists if f.reference is None],
                                   "references": {str(f.number): f.reference for f in finalists if f.reference}},
                      indent=2)
    return outcome


def allowed_drop(constraints: list[Constraint], baseline: dict[str, Any]) -> float | None:
    """The most top-1 a candidate may lose: the tightest floor on top-1 under the baseline's."""
    floors = [c.min for c in constraints if c.metric == "top1" and c.min is not None]
    return baseline["top1"] - max(floors) if floors and baseline.get("top1") is not None else None


def _read_pick(path: Path) -> FinalOutcome:
    blob = json.loads(path.read_text())
    records = finalist_records(path.parent)
    records["baseline"] = records.pop("baseline", {})
    return FinalOutcome(records, blob["picked"], blob["reason"], blob["max_drop"], blob["confidence"],
                        blob["test_top1"])


def _trial_benchmark(plan: Plan, number: int) -> BenchmarkSpec:
    """The benchmark a trial was measured with (a sweep may have searched its precision)."""
    saved = plan.paths.trial_benchmark(number)
    return BenchmarkSpec.model_validate(saved) if saved is not None else plan.spec.benchmark


def _predict(model: nn.Module, spec: BenchmarkSpec, bench: Workbench, images: np.ndarray, work: Path) -> np.ndarray:
    """The deployed artefact's answers; PyTorch's when the runtime is not installed here (a
    study that measured on a device worker) and the precision is fp32, where they agree."""
    onnx_path = work / "model.onnx"
    export_onnx(model, bench.example(spec.batch_size), onnx_path)
    try:
        return deployed_predictions(onnx_path, spec, images, module=model, calibration=bench.calibration,
                                    work_dir=work)
    except MissingExtraError:
        if spec.precision != "fp32":
            raise
        with torch.no_grad():
            return torch.cat([model(torch.from_numpy(images[i:i + 250])).argmax(1)
                              for i in range(0, len(images), 250)]).numpy()


def _baseline_record(plan: Plan, bench: Workbench, images: np.ndarray, labels: np.ndarray,
                     reporter: Reporter) -> dict[str, Any]:
    work = plan.paths.finalist("baseline")
    if (work / "result.json").is_file():
        return json.loads((work / "result.json").read_text())
    work.mkdir(parents=True, exist_ok=True)
    reporter.stage(f"final: scoring the unpruned network on {len(labels)} validation images")
    spec = plan.spec.benchmark.model_copy(update={"precision": "fp32"})
    correct = _predict(bench.start, spec, bench, images, work) == labels
    np.save(work / "correct.npy", correct)
    record = {"final_val_top1": 100.0 * float(correct.mean()), "n": len(labels)}
    atomic_write_json(work / "result.json", record, indent=2)
    return record


def _final_spec(plan: Plan) -> FinalSpec:
    """The experiment's `final:` section (a study without one has no final stage)."""
    assert plan.spec.final is not None
    return plan.spec.final


@dataclass(frozen=True)
class _Against:
    """What every finalist is judged against: the whole validation split, whether the unpruned
    network got each image right, and the most top-1 a finalist may lose (None: no limit)."""

    images: np.ndarray
    labels: np.ndarray
    base_correct: np.ndarray
    max_drop: float | None

    def judge(self, answers: np.ndarray, confidence: float) -> tuple[np.ndarray, PairedDrop, dict[str, Any]]:
        """Which images a finalist's `answers` got right, what it loses against the unpruned
        network image by image (a one-sided paired bound at `confidence`), and its record of it."""
        correct = answers == self.labels
        drop = paired_drop(self.base_correct, correct, confidence)
        return correct, drop, {"final_val_top1": 100.0 * float(correct.mean()), "final_drop": drop.drop,
                               "final_drop_upper": drop.upper,
                               "held": self.max_drop is None or drop.holds(self.max_drop), "paired": drop.as_dict()}


def _finalise(plan: Plan, study: optuna.Study, bench: Workbench, f: Finalist, against: _Against,
              reporter: Reporter) -> dict[str, Any]:
    """One finalist trained again (resuming by epoch) and scored; its record once written is final."""
    final = _final_spec(plan)
    work = plan.paths.finalist(f.number)
    if (work / "result.json").is_file():
        return json.loads((work / "result.json").read_text())
    work.mkdir(parents=True, exist_ok=True)
    checkpoint = plan.paths.trial(f.number) / "model.pt"
    if not checkpoint.is_file():  # a study written before trials kept their networks
        raise EdgetuneError(f"trial {f.number} kept no network ({checkpoint} is missing): it cannot be trained "
                            "again; run the search in a new run directory")
    epochs = final.epochs if f.train_again else 0
    done = _trained_before(plan, work, epochs, f.reference)
    if done is not None:  # killed after its training ended, before its record: score it, do not train it again
        model, seconds = done
    else:
        model, meta = load_checkpoint(checkpoint, factory=plan.factory_for(f.reference))
        model, seconds = _train_again(plan, bench, model, meta, f, work, reporter) if epochs else (model, 0.0)
    model.eval()
    spec = _trial_benchmark(plan, f.number)
    reporter.stage(f"final: scoring trial {f.number} on {len(against.labels)} validation images")
    correct, drop, judged = against.judge(_predict(model, spec, bench, against.images, work), final.confidence)
    np.save(work / "correct.npy", correct)
    searched = Recorded.of(study.get_trials(deepcopy=False)[f.number])
    record = {"final_epochs": epochs, "final_seconds": round(seconds, 1), **judged,
              "precision": spec.precision, "reference": f.reference,
              "latency_ratio": searched.latency_ratio, "latency_ms": searched.value("latency_ms"),
              "search_top1": searched.top1}
    atomic_write_json(work / "result.json", record, indent=2)
    reporter.stage(f"final: trial {f.number} {record['final_val_top1']:.2f} % ({_drop_text(drop)})")
    return record


def _trained_before(plan: Plan, work: Path, epochs: int, reference: str | None
                    ) -> tuple[nn.Module, float] | None:
    """The finalist's network as its finished training left it (`training_completed`), with the
    seconds that training took; None when training must (re)start."""
    trained = work / "model.pt"
    if not epochs or not trained.is_file():
        return None
    model, meta = load_checkpoint(trained, factory=plan.factory_for(reference))
    return (model, float(meta["train_seconds"])) if training_completed(trained, meta, epochs) else None


def _drop_text(drop: PairedDrop) -> str:
    return f"{drop.drop:+.2f} pt lost, at most {drop.upper:.2f} at {drop.confidence:.0%}"


def _train_again(plan: Plan, bench: Workbench, model: nn.Module, meta: dict[str, Any], f: Finalist, work: Path,
                 reporter: Reporter) -> tuple[nn.Module, float]:
    """The finalist trained again, and the seconds its training took (as its checkpoint keeps them)."""
    final = _final_spec(plan)
    distill = final.distill or plan.spec.finetune.distill
    teacher = bench.teacher(distill) if distill is not None else None
    split: ImageSplit = (bench.data.train.subset(final.train_subset, seed=plan.spec.seed + 3)
                         if final.train_subset else bench.data.train)
    label = f"final training of trial {f.number}"
    training = Training(epochs=final.epochs, lr=final.learning_rate, batch_size=final.batch_size, seed=plan.spec.seed,
                        warmup_epochs=1 if bench.begun_before_cosine else 0, augmented=final.augment,
                        precision=bench.training_precision(plan.spec.finetune), device=bench.device, split=split,
                        teacher=teacher, loss=bench.loss, settle=bench.settle if bench.settles(model) else None)
    trained = train_baseline(model, bench.data, training, out=work / "model.pt", meta=meta, log=reporter.stage,
                             on_step=lambda done, total: reporter.step(label, done, total), score_test=False)
    if teacher is not None:
        teacher.model.cpu()
    return model.cpu(), float(trained["train_seconds"])


def _pick(plan: Plan, study: optuna.Study, finalists: list[Finalist], records: dict[str, dict[str, Any]],
          max_drop: float | None) -> tuple[int | None, str]:
    """The best by the study's first objective among finalists whose loss holds."""
    objective = plan.objectives[0]
    candidates = [f.number for f in finalists if f.reference is None]
    if not candidates:
        return None, "no feasible trial to train again: the search found none (the study is kept)"
    held = [n for n in candidates if records[str(n)]["held"]]
    if not held:
        return None, (f"no finalist's loss holds: each may lose more than {max_drop:.2f} points at "
                      f"{plan.spec.final.confidence:.0%} confidence (see final_drop_upper)")  # type: ignore[union-attr]

    def value(n: int) -> float:
        if objective.metric in ACCURACY:
            return records[str(n)]["final_val_top1"]
        v = Recorded.of(study.get_trials(deepcopy=False)[n]).value(objective.metric)
        return float(v) if v is not None else float("inf") if objective.goal == "minimize" else float("-inf")

    sign = 1.0 if objective.goal == "minimize" else -1.0
    best = min(held, key=lambda n: sign * value(n))
    why = (f"best {objective.metric} ({objective.goal}) of {len(held)} finalist(s) whose loss holds"
           + (f" (at most {max_drop:.2f} points at {plan.spec.final.confidence:.0%})" if max_drop is not None  # type: ignore[union-attr]
              else " (no accuracy constraint to hold)"))
    return best, why


def _test_once(plan: Plan, bench: Workbench, picked: int | None, finalists: list[Finalist],
               reporter: Reporter) -> dict[str, float]:
    """Test top-1 of the pick, the unpruned network and each reference: once, after the pick."""
    test = bench.data.test
    images, labels = bench.data.normalize(test.images).numpy(), test.labels.numpy()
    numbers: list[int | str] = ["baseline", *([picked] if picked is not None else []),
                                *(f.number for f in finalists if f.reference)]
    out = {}
    reference_of = {f.number: f.reference for f in finalists}
    for number in numbers:
        reporter.stage(f"final: test top-1 of {'trial ' if number != 'baseline' else ''}{number}")
        work = plan.paths.finalist(number)
        if number == "baseline":
            model, spec = bench.start, plan.spec.benchmark.model_copy(update={"precision": "fp32"})
        else:
            trained = work / "model.pt"
            model, _ = load_checkpoint(trained if trained.is_file() else plan.paths.trial(number) / "model.pt",
                                       factory=plan.factory_for(reference_of.get(number)))  # type: ignore[arg-type]
            spec = _trial_benchmark(plan, int(number))
        answers = _predict(model.eval(), spec, bench, images, work / "test")
        out[str(number)] = 100.0 * float((answers == labels).mean())
    return out
