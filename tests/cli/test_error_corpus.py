"""A corpus of bad inputs across every command and `edgetune.tune()`, driven through the real
entry point (`edgetune.cli.main`, in this process so the corpus stays fast) and sorted as the
reliability issue sorted its 302 cases: a clear error (non-zero exit, one message naming what
was wrong), unclear (non-zero, but the message does not name it), a traceback (an exception
escaped the boundary), silently accepted (exit 0), or a hang (over the time limit). The target,
and what this test holds: every case clear; docs/reliability.md quotes the count."""

from __future__ import annotations

import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]
RESNET20 = ROOT / "models" / "resnet20-fmnist.pt"
LIMIT_S = 120


@dataclass(frozen=True)
class Case:
    name: str
    argv: list[str]
    names: tuple[str, ...]  # what the message must name (a file, a flag, a key, the bad value)


class _Hang(Exception):
    pass


def _files(tmp: Path) -> dict[str, Path]:
    """The damaged and malformed files the cases hand over."""
    out = {"junk": tmp / "junk.yaml", "junkpt": tmp / "junk.pt", "junkonnx": tmp / "junk.onnx",
           "empty": tmp / "empty.yaml", "dup": tmp / "dup.yaml", "bomb": tmp / "bomb.yaml", "list": tmp / "list.yaml",
           "norun": tmp / "norun", "emptydb": tmp / "emptydb", "good": tmp / "good.yaml", "afile": tmp / "afile",
           "tpu": tmp / "tpu.yaml"}
    blob = bytes(range(256)) * 64
    for key in ("junk", "junkpt", "junkonnx"):
        out[key].write_bytes(blob)
    out["empty"].write_text("")
    out["dup"].write_text("name: a\ntrials: 2\nname: b\n")
    laughs = ["a: &a [x, x, x, x, x, x, x, x, x, x]"] + [
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]" for i in range(8)]
    out["bomb"].write_text("\n".join(laughs) + "\n")
    out["list"].write_text("- 1\n- 2\n")
    out["norun"].mkdir()
    out["emptydb"].mkdir()
    (out["emptydb"] / "study.db").write_bytes(b"")
    (out["emptydb"] / "experiment.resolved.yaml").write_text("name: x\nstorage: sqlite:///" + str(
        out["emptydb"] / "study.db") + "\n")
    (out["emptydb"] / "trials.csv").write_text("trial,state\nbaseline,BASELINE\n0,COMPLETE\n")
    good = yaml.safe_load((ROOT / "examples" / "resnet56-fmnist" / "table3.2.experiment.yaml").read_text())
    good["model"]["checkpoint"] = str(ROOT / "models" / "resnet56-fmnist.pt")
    good["recipe"] = str(ROOT / "examples" / "resnet56-fmnist" / "resnet56-table3.2.schedule.yaml")
    out["good"].write_text(yaml.safe_dump(good))
    out["tpu"].write_text(yaml.safe_dump({**good, "device": "tpu9"}))
    out["afile"].write_text("a file where a folder goes\n")
    out["state"] = tmp / "resume.pt"  # its `.train-state` is damaged: training must not start over it
    (tmp / "resume.pt.train-state").write_bytes(blob)
    out["other"] = tmp / "other.pt"  # its `.train-state` is another run's, of 5 epochs
    import torch

    torch.save({"epochs": 5, "epoch": 1}, tmp / "other.pt.train-state")
    import torch

    from edgetune.runtimes.export import export_onnx

    out["onnx"] = tmp / "tiny.onnx"
    export_onnx(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).eval(), torch.zeros(1, 1, 28, 28),
                out["onnx"])
    return out


def _cases(f: dict[str, Path]) -> list[Case]:
    good, r20 = str(f["good"]), str(RESNET20)
    return [
        # run
        Case("run a missing file", ["run", "missing.yaml"], ("missing.yaml",)),
        Case("run binary bytes", ["run", str(f["junk"])], ("junk.yaml", "text")),
        Case("run an empty file", ["run", str(f["empty"])], ("checkpoint",)),
        Case("run a duplicate key", ["run", str(f["dup"])], ("dup.yaml", "name", "line 3")),
        Case("run an alias bomb", ["run", str(f["bomb"])], ("bomb.yaml", "alias")),
        Case("run a list", ["run", str(f["list"])], ("list.yaml", "mapping")),
        Case("run --data mnist", ["run", good, "--data", "mnist"], ("--data", "mnist")),
        Case("run --storage notaurl", ["run", good, "--storage", "notaurl"], ("storage", "notaurl")),
        Case("run --run-dir on a file", ["run", good, "--run-dir", str(f["afile"]), "--trials", "1"], ("afile",)),
        Case("run --schedule bytes", ["run", good, "--schedule", str(f["junk"])], ("junk.yaml",)),
        Case("run --sweep missing", ["run", good, "--sweep", "nosweep.yaml"], ("nosweep.yaml",)),
        Case("run --model-factory malformed", ["run", good, "--model-factory", "nocolon"], ("nocolon",)),
        Case("run --bench-queue without broker", ["run", good, "--bench-queue", "q"], ("--broker",)),
        Case("run device: tpu9", ["run", str(f["tpu"])], ("device", "tpu9")),
        Case("run --trials -1", ["run", good, "--trials", "-1"], ("--trials",)),
        # train
        Case("train an unknown model", ["train", "--model", "nonet", "--out", "x.pt"], ("nonet",)),
        Case("train --device tpu", ["train", "--model", "resnet20", "--device", "tpu", "--out", "x.pt"], ("tpu",)),
        Case("train --lr -1", ["train", "--model", "resnet20", "--lr", "-1", "--out", "x.pt"], ("--lr", "-1")),
        Case("train --epochs 0", ["train", "--model", "resnet20", "--epochs", "0", "--out", "x.pt"], ("--epochs",)),
        Case("train --data mnist", ["train", "--model", "resnet20", "--data", "mnist", "--out", "x.pt"], ("mnist",)),
        # evaluate
        Case("evaluate a missing checkpoint", ["evaluate", "missing.pt"], ("missing.pt",)),
        Case("evaluate bytes", ["evaluate", str(f["junkpt"])], ("junk.pt",)),
        Case("evaluate --split dev", ["evaluate", r20, "--split", "dev"], ("--split", "dev")),
        Case("evaluate --data-root missing", ["evaluate", r20, "--data-root", "nowhere"], ("nowhere",)),
        Case("evaluate --model-factory malformed", ["evaluate", r20, "--model-factory", "x"], ("--model-factory",)),
        # bench
        Case("bench a missing model", ["bench", "missing.onnx"], ("missing.onnx",)),
        Case("bench bytes", ["bench", str(f["junkonnx"])], ("junk.onnx",)),
        Case("bench --runtime bogus", ["bench", r20, "--runtime", "bogus"], ("bogus", "onnxruntime")),
        Case("bench --precision int4", ["bench", r20, "--precision", "int4"], ("int4",)),
        Case("bench int8 without calibration", ["bench", r20, "--precision", "int8"], ("--calibration",)),
        Case("bench --against missing", ["bench", str(f["onnx"]), "--against", "nothere.onnx"], ("nothere.onnx",)),
        # export, report, dashboard, recipe suggest: run directories
        Case("export a missing run", ["export", "nowhere"], ("nowhere",)),
        Case("export a folder with no study", ["export", str(f["norun"])], ("norun",)),
        Case("export an empty study.db", ["export", str(f["emptydb"])], ("study.db", "empty")),
        Case("report a missing run", ["report", "nowhere"], ("nowhere",)),
        Case("report an empty study.db", ["report", str(f["emptydb"])], ("study.db", "empty")),
        Case("report --format pdf", ["report", str(f["norun"]), "--format", "pdf"], ("pdf",)),
        Case("dashboard --port 99999", ["dashboard", str(f["norun"]), "--port", "99999"], ("--port", "65535")),
        Case("train a corrupt train-state", ["train", "--model", "resnet20", "--out", str(f["state"])],
             ("resume.pt.train-state",)),
        Case("train over another run's state", ["train", "--model", "resnet20", "--epochs", "3", "--out",
                                                str(f["other"])], ("other.pt.train-state", "5-epoch", "--epochs")),
        Case("evaluate a 1-channel network on RGB data", ["evaluate", r20, "--data", "cifar10", "--data-root",
                                                          str(f["norun"])], ("cifar10",)),
        Case("dashboard a missing run", ["dashboard", "nowhere"], ("nowhere",)),
        Case("recipe suggest a missing folder", ["recipe", "suggest", "nowhere"], ("nowhere",)),
        Case("recipe suggest --groups 0", ["recipe", "suggest", str(f["norun"]), "--groups", "0"], ("--groups",)),
        # sensitivity, profile-widths
        Case("sensitivity a missing checkpoint", ["sensitivity", "--checkpoint", "missing.pt"], ("missing.pt",)),
        Case("sensitivity --method bogus", ["sensitivity", "--checkpoint", r20, "--method", "bogus"], ("bogus",)),
        Case("sensitivity a reversed range", ["sensitivity", "--checkpoint", r20, "--range", "0.9:0.1:0.1"],
             ("--range", "0.9:0.1:0.1")),
        Case("sensitivity a range of words", ["sensitivity", "--checkpoint", r20, "--range", "abc"], ("--range", "abc")),
        Case("profile-widths a missing checkpoint", ["profile-widths", "--checkpoint", "missing.pt"], ("missing.pt",)),
        Case("profile-widths --runtime bogus", ["profile-widths", "--checkpoint", r20, "--runtime", "bogus"],
             ("bogus",)),
        Case("profile-widths --precision int4", ["profile-widths", "--checkpoint", r20, "--precision", "int4"],
             ("int4",)),
        # the device worker
        Case("bench-worker --broker notaurl", ["bench-worker", "--broker", "notaurl", "--queue", "q"], ("notaurl",)),
        Case("bench-worker nothing listening", ["bench-worker", "--broker", "redis://127.0.0.1:9/0", "--queue", "q",
                                                "--connect-timeout", "1"], ("127.0.0.1:9",)),
    ]


def _outcome(case: Case, capsys) -> tuple[str, str]:
    """(clear | unclear | traceback | silent | hang, what the user saw)."""
    from edgetune.cli import main

    def stop(*_):
        raise _Hang

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(LIMIT_S)
    saved = sys.argv
    sys.argv = ["edgetune", *case.argv]
    code: object = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    except _Hang:
        return "hang", ""
    except BaseException as exc:  # noqa: BLE001 - what escaped the boundary is what this counts
        return "traceback", f"{type(exc).__name__}: {exc}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        sys.argv = saved
    seen = capsys.readouterr()
    said = " ".join((seen.out + seen.err).split()).replace("│", "")
    if code in (0, None):
        return "silent", said
    flat = said.replace(" ", "")
    return ("clear" if all(n.replace(" ", "") in flat for n in case.names) else "unclear"), said


@pytest.mark.slow
def test_every_bad_input_in_the_corpus_gets_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cases = _cases(_files(tmp_path))
    results = {c.name: _outcome(c, capsys) for c in cases}
    counts = {kind: sum(r[0] == kind for r in results.values())
              for kind in ("clear", "unclear", "traceback", "silent", "hang")}
    wrong = {name: r for name, r in results.items() if r[0] != "clear"}
    print(f"{len(cases)} bad inputs: {counts}")
    assert not wrong, "\n".join(f"{name}: {kind}: {said[-400:]}" for name, (kind, said) in wrong.items())
    assert len(cases) >= 50


def _tune_cases(f: dict[str, Path]) -> list[tuple[str, dict, tuple[str, ...]]]:
    good = str(f["good"])
    return [
        ("an int as the experiment", {"experiment": 123}, ("experiment", "int")),
        ("a binary experiment file", {"experiment": f["junk"]}, ("junk.yaml",)),
        ("a string as the model", {"experiment": good, "model": "resnet20"}, ("model", "str")),
        ("an unknown argument", {"experiment": good, "epochs": 3}, ("epochs",)),
        ("a number as evaluate", {"experiment": good, "evaluate": 3}, ("evaluate", "int")),
        ("a string as references", {"experiment": good, "references": "x.pt"}, ("references", "list")),
        ("data returning a number", {"experiment": good, "data": lambda: 5}, ("data", "int")),
        ("train_data without val_data", {"experiment": good, "train_data": [1]}, ("val_data",)),
        ("an example_input of two numbers", {"experiment": good, "example_input": (28, 28)}, ("example_input",)),
    ]


def test_every_bad_argument_to_tune_in_the_corpus_gets_a_clear_error(tmp_path, monkeypatch):
    import edgetune
    from edgetune.errors import EdgetuneError

    monkeypatch.chdir(tmp_path)
    cases = _tune_cases(_files(tmp_path))
    wrong = {}
    for name, arguments, names in cases:
        try:
            edgetune.tune(**arguments, run_dir=tmp_path / "run", progress=False)
        except EdgetuneError as exc:
            if not all(n in str(exc) for n in names):
                wrong[name] = f"unclear: {exc}"
        except Exception as exc:  # noqa: BLE001 - what escaped as a traceback is what this counts
            wrong[name] = f"traceback: {type(exc).__name__}: {exc}"
        else:
            wrong[name] = "silent: accepted"
    assert not wrong, "\n".join(f"{n}: {w}" for n, w in wrong.items())
    assert not (tmp_path / "run").exists()
