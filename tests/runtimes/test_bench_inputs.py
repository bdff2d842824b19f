"""`edgetune bench` on the files users actually have: not ONNX at all, exported with a fixed
batch of 1 (torch.onnx.export's default), with a free image size, two inputs, a matrix input; bad
`--batch` values; an output path it cannot write. Each gets a clear error or the right result,
before any benchmarking, and no temporary folder is left behind."""

import os
import tempfile
from pathlib import Path

import pytest
import torch
from rich.console import Console
from torch import nn

from edgetune.cli.bench_run import run_bench
from edgetune.errors import EdgetuneError

QUICK = {"runtime": "onnxruntime", "device": "cpu", "precision": "fp32", "calibration": None, "data": None,
         "data_root": None, "split": "val", "checkpoint": None, "threads": 1, "hint": "latency", "repeats": 1,
         "per_layer": False, "top": 5, "csv_path": None, "json_path": None}


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean((2, 3)))


class TwoInputs(Small):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x) + super().forward(y)


def _export(tmp_path: Path, model: nn.Module, args: tuple, name: str = "m.onnx", **kwargs) -> Path:
    path = tmp_path / name
    torch.onnx.export(model.eval(), args, str(path), dynamo=False, **kwargs)
    return path


def _bench(path: Path, batches=(1,), **extra):
    return run_bench(model=path, batches=list(batches), console=Console(file=open(os.devnull, "w")),
                     **{**QUICK, **extra})


@pytest.mark.parametrize("content", [b"", b"ir_version: 7\nnot a protobuf", os.urandom(4096)])
def test_a_file_that_is_not_onnx_is_named_not_a_traceback(tmp_path, content):
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    with pytest.raises(EdgetuneError, match=r"model.onnx: not a readable ONNX model"):
        _bench(path)


def test_a_fixed_batch_of_one_is_timed_at_one_and_other_batches_say_how_to_export(tmp_path):
    path = _export(tmp_path, Small(), (torch.randn(1, 1, 8, 8),), input_names=["x"])  # no dynamic axes
    report = _bench(path)
    assert report.metrics["latency_ms"] > 0
    with pytest.raises(EdgetuneError, match=r"input 'x' is \[1, 1, 8, 8\]: the batch is fixed at 1, so --batch 32 "
                                            r"cannot run; export with a dynamic batch"):
        _bench(path, batches=(1, 32))


def test_a_free_image_size_two_inputs_or_a_matrix_input_are_refused_by_name(tmp_path):
    free = _export(tmp_path, Small(), (torch.randn(1, 1, 8, 8),), input_names=["x"],
                   dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}})
    with pytest.raises(EdgetuneError, match=r"input 'x' is \[\?, 1, \?, \?\]: its image size is left free.*--data"):
        _bench(free)
    two = _export(tmp_path, TwoInputs(), (torch.randn(1, 1, 8, 8), torch.randn(1, 1, 8, 8)), "two.onnx",
                  input_names=["a", "b"])
    with pytest.raises(EdgetuneError, match=r"the model has 2 inputs \(a, b\)"):
        _bench(two)
    matrix = _export(tmp_path, nn.Linear(4, 3), (torch.randn(1, 4),), "fc.onnx", input_names=["v"])
    matrix_ok = _bench(matrix)  # (batch, features) is a batch too
    assert matrix_ok.metrics["latency_ms"] > 0
    flat = _export(tmp_path, nn.Flatten(0), (torch.randn(4, 3),), "flat.onnx", input_names=["v"])
    with pytest.raises(EdgetuneError):
        _bench(flat, batches=(2,))


def test_a_free_image_size_counts_its_macs_at_the_size_it_is_timed_at(tmp_path):
    from edgetune.runtimes.onnx_stats import onnx_params_and_macs

    free = _export(tmp_path, Small(), (torch.randn(1, 1, 8, 8),), input_names=["x"],
                   dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}})
    fixed = _export(tmp_path, Small(), (torch.randn(1, 1, 28, 28),), "fixed.onnx", input_names=["x"])
    _, at_28 = onnx_params_and_macs(fixed)
    assert at_28 == 4 * 26 * 26 * 9 + 4 * 3
    assert onnx_params_and_macs(free, (1, 28, 28))[1] == at_28
    assert onnx_params_and_macs(fixed, (1, 28, 28))[1] == at_28  # a size the file fixes stays its own
    done = _bench(free, data="fashion-mnist")  # 28 x 28 images: what it is timed at
    assert done.metrics["macs"] == at_28 and done.metrics["flops"] == 2 * at_28


def test_every_batch_is_checked_and_the_flag_is_named(tmp_path):
    path = _export(tmp_path, Small(), (torch.randn(1, 1, 8, 8),), input_names=["x"], dynamic_axes={"x": {0: "n"}})
    for batches in ((1, 0), (1, -4)):
        with pytest.raises(EdgetuneError, match=r"--batch (0|-4): a batch holds at least one image"):
            _bench(path, batches=batches)


def test_an_unwritable_json_path_fails_before_benchmarking_and_no_temporary_folder_is_left(tmp_path):
    path = _export(tmp_path, Small(), (torch.randn(1, 1, 8, 8),), input_names=["x"], dynamic_axes={"x": {0: "n"}})
    before = set(Path(tempfile.gettempdir()).glob("edgetune-bench-*"))
    with pytest.raises(EdgetuneError, match=r"--json .*: the folder .*nowhere does not exist"):
        _bench(path, json_path=tmp_path / "nowhere" / "out.json")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(EdgetuneError, match=r"--json .*: the folder .*a-file does not exist"):
        _bench(path, json_path=tmp_path / "a-file" / "out.json")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not os.access(locked, os.W_OK):  # root writes anywhere: the check is then moot
            with pytest.raises(EdgetuneError, match=r"--json .*out.json: not writable here"):
                _bench(path, json_path=locked / "out.json")
    finally:
        locked.chmod(0o700)
    _bench(path, json_path=tmp_path / "out.json")
    assert (tmp_path / "out.json").is_file()
    assert set(Path(tempfile.gettempdir()).glob("edgetune-bench-*")) == before  # every run cleaned up after itself


def test_bench_against_times_networks_interleaved_with_the_reference_in_one_table(tmp_path):
    import subprocess
    import sys

    torch.manual_seed(0)
    base = _export(tmp_path, Small(), (torch.randn(1, 1, 8, 8),), "base.onnx", input_names=["x"],
                   dynamic_axes={"x": {0: "n"}})
    wide = Small()
    wide.conv = nn.Conv2d(1, 4, 3)
    pick = _export(tmp_path, wide, (torch.randn(1, 1, 8, 8),), "pick.onnx", input_names=["x"],
                   dynamic_axes={"x": {0: "n"}})
    done = subprocess.run([sys.executable, "-m", "edgetune.cli", "bench", str(pick), "--against", str(base),
                           "--against", str(base)], capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if "│" in line and (".onnx" in line)]
    assert "interleaved with base.onnx" in done.stdout and [r.split("│")[1].strip() for r in rows] == [
        "base.onnx", "pick.onnx", "base.onnx"]
    cells = [[c.strip() for c in r.split("│")[1:-1]] for r in rows]
    assert 0.8 < float(cells[0][2]) < 1.25 and cells[0][4] == cells[2][4] == "100.0%"  # the reference against itself
    other = _export(tmp_path, Small(), (torch.randn(1, 1, 9, 9),), "other.onnx", input_names=["x"])
    bad = subprocess.run([sys.executable, "-m", "edgetune.cli", "bench", str(other), "--against", str(base)],
                         capture_output=True, text=True, timeout=300, check=False)
    assert bad.returncode == 2 and "cannot be timed on the same images" in bad.stderr


def test_bench_against_writes_its_rows_to_json_and_refuses_flags_it_would_not_honour(tmp_path):
    """`--json` was dropped with `--against`, `--precision int8` timed the file in fp32 under the
    int8 name, and a file exported at a fixed batch of 1 (torch.onnx.export's default) raised
    ONNX Runtime's traceback; the rows are now kept, the flag refused, the file timed."""
    import json
    import subprocess
    import sys

    torch.manual_seed(0)
    base = _export(tmp_path, Small(), (torch.randn(1, 1, 8, 8),), "base.onnx", input_names=["x"])
    pick = _export(tmp_path, Small(), (torch.randn(1, 1, 8, 8),), "pick.onnx", input_names=["x"])
    cli = [sys.executable, "-m", "edgetune.cli", "bench", str(pick), "--against", str(base)]
    done = subprocess.run([*cli, "--json", str(tmp_path / "rows.json")], capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    saved = json.loads((tmp_path / "rows.json").read_text())
    assert saved["reference"] == str(base) and [r["network"] for r in saved["rows"]] == ["base.onnx", "pick.onnx"]
    assert all(r["latency_ms"] > 0 and r["ratio"] > 0 for r in saved["rows"])
    bad = subprocess.run([*cli, "--precision", "int8", "--calibration", "fashion-mnist"], capture_output=True,
                         text=True, timeout=300, check=False)
    assert bad.returncode == 2 and "--precision, --calibration: not used with --against" in bad.stderr
    pair = _export(tmp_path, Small(), (torch.randn(2, 1, 8, 8),), "pair.onnx", input_names=["x"])
    bad = subprocess.run([*cli[:4], str(pair), "--against", str(base)], capture_output=True, text=True, timeout=300,
                         check=False)
    assert bad.returncode == 2 and "pair.onnx" in bad.stderr and "fixed at 2" in bad.stderr
