"""Part 7, issue #17's targets: ResNet-56 on Fashion-MNIST made fast by depth and width pruning
with distillation, the front trained again and the pick held to 0.5 point at 90 % confidence,
in fp32 and with every candidate INT8, ResNet-20 (trained as usual) measured beside both.

    python experiments/part7.py [--models resnet56 resnet20 mobilenetv2] [--precisions fp32 int8]
                                [--longer | --final-variant NAME]

`--models resnet20` starts from the smaller sibling, ResNet-56 teaching and enqueued, so the
speed-up column is against ResNet-56 there too. `--longer` trains the front of a finished run
again with a larger final budget (`part7-MODEL-PRECISION-long.experiment.yaml`): the run's search
is copied into its own directory (the study, its trials and networks; not `final/`), so only the
final stage runs, and the summary counts the search's time plus the new final stage's.
`--final-variant NAME` does the same with `part7-MODEL-PRECISION-NAME.experiment.yaml` (`--longer`
is `--final-variant long`). `--models resnet20v10k` starts from ResNet-20 trained beside 10,000
validation images (models/resnet20-fmnist-val10k.pt); ResNet-56 learnt half of those, so it is not
enqueued but timed against afterwards (`edgetune bench --against`), with ResNet-20 quantised.

Prints, per run, the unpruned network, ResNet-20 and each finalist: validation top-1 on the whole
validation split, the paired bound on what it loses, test top-1 where the final stage measured it
(the pick, the baseline, the reference: once, after the pick), the latency ratio to ResNet-56
measured in interleaved rounds (the speed-up: against ResNet-56 where it was measured, else
against the run's own unpruned network), and the wall time of the whole run; writes
docs/results/part7.json.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path

import torch
from _run import ROOT, RUNS, SUMMARIES, edgetune, save, study_seconds, trials

from edgetune.data import load_dataset
from edgetune.models import load_checkpoint
from edgetune.runtimes.export import export_onnx
from edgetune.runtimes.quantize import format_args, ort_int8

NAMES = {"resnet20-fmnist": "ResNet-20 (trained as usual)", "resnet56-fmnist": "ResNet-56 (trained as usual)"}


def summarise(model: str, precision: str, seconds: float, variant: str = "") -> dict:
    run_dir = RUNS / f"part7-{model}-{precision}{variant}"
    pick = json.loads((run_dir / "final" / "pick.json").read_text())
    frame = trials(run_dir)
    finals = frame[frame["final_val_top1"].notna()]
    rows = []
    for r in finals.to_dict("records"):
        ref = r.get("reference") if isinstance(r.get("reference"), str) else None
        name = f"{model} (unpruned)" if r["trial"] == "baseline" else reference_name(ref) if ref else f"trial {r['trial']}"
        rows.append({"network": name, "latency_ratio": 1.0 if r["trial"] == "baseline" else r.get("latency_ratio"),
                     "search_top1": r.get("top1"), "val_top1": r["final_val_top1"], "drop": r.get("final_drop"),
                     "bound": r.get("final_drop_upper"), "held": r.get("held"), "test_top1": r.get("test_top1"),
                     "picked": bool(r.get("picked"))})
    # A search from a smaller network enqueues ResNet-56 (fp32): its ratio, timed in the same
    # rounds, turns each row's ratio into one against ResNet-56, the yardstick.
    big = [r["latency_ratio"] for r in rows if r["network"] == NAMES["resnet56-fmnist"] and model != "resnet56"]
    for r in rows:
        r["x_resnet56"] = r["latency_ratio"] / big[0] if big and r["latency_ratio"] else None
    if not big and model.startswith("resnet20"):
        rows += timed_beside_resnet56(run_dir, model, rows, finals, precision)
    return {"model": model, "precision": precision, "variant": variant, "wall_seconds": seconds, "search_seconds": study_seconds(run_dir),
            "picked": pick["picked"], "reason": pick["reason"], "rows": rows,
            "trials": int((frame["trial"] != "baseline").sum())}


def timed_beside_resnet56(run_dir: Path, model: str, rows: list[dict], finals, precision: str) -> list[dict]:
    """A run whose validation split ResNet-56 partly learnt cannot enqueue it (a study refuses to
    score it there), so its finalists' deployed files, its unpruned network and (INT8 runs) that
    network quantised in the format the run chose are timed afterwards in rounds interleaved with
    ResNet-56 fp32 (`edgetune bench --against`, the study's timing, kept in
    final/against-resnet56.json and read back by a later --summarise); each row's ratio is then a
    direct measurement, and the quantised sibling is a row of its own."""
    out = run_dir / "final" / "against-resnet56.json"
    extra = [] if precision != "int8" else [
        {"network": f"{model} unpruned, INT8", "latency_ratio": None, "search_top1": None, "val_top1": None,
         "drop": None, "bound": None, "held": None, "test_top1": None, "picked": False}]
    if not out.exists():
        paths = [deployed(run_dir / "final" / ("baseline" if r["trial"] == "baseline" else f"{int(r['trial']):04d}"))
                 for r in finals.to_dict("records")] + [quantised_baseline(run_dir) for _ in extra]
        big = run_dir / "final" / "resnet56.onnx"
        network, _ = load_checkpoint(ROOT / "models" / "resnet56-fmnist.pt")
        export_onnx(network.eval(), torch.zeros(1, 1, 28, 28), big)
        edgetune("bench", str(paths[0]), "--against", str(big), *[a for p in paths[1:] for a in ("--against", str(p))],
                 "--data", "fashion-mnist", "--json", str(out))
    timed = json.loads(out.read_text())["rows"][1:]  # after ResNet-56 itself, in the order they were given
    for r, row in zip(rows + extra, timed, strict=True):
        r["x_resnet56"] = row["ratio"]
    return extra


def deployed(final_dir: Path) -> Path:
    """The file a finalist was scored as: its INT8 form where it has one."""
    return next(p for p in (final_dir / "model.int8.onnx", final_dir / "model.onnx") if p.exists())


def quantised_baseline(run_dir: Path) -> Path:
    """The run's unpruned network in the INT8 format its trials used (int8-formats.csv), calibrated
    on 300 training images as benchmarks/bench_quantised_siblings.py calibrates its siblings."""
    chosen = next(line.split(",")[0] for line in (run_dir / "int8-formats.csv").read_text().splitlines()[1:]
                  if line.rstrip().endswith("True"))
    data = load_dataset("fashion-mnist")
    calibration = data.normalize(data.train.subset(300, seed=1).images).numpy()
    folder = run_dir / "final" / "baseline-int8"
    folder.mkdir(exist_ok=True)
    return ort_int8(run_dir / "final" / "baseline" / "model.onnx", folder, calibration, *format_args(chosen))


def reference_name(ref: str) -> str:
    """`.../models/resnet20-fmnist.pt@int8` -> `ResNet-20 (trained as usual) INT8`."""
    path, _, precision = ref.partition("@")
    stem = Path(path).stem
    return NAMES.get(stem, stem) + (f" {precision.upper()}" if precision else "")


def show(summary: dict) -> None:
    print(f"\n{summary.get('model', 'resnet56')} {summary['precision']}{summary.get('variant', '')}: {summary['wall_seconds'] / 60:.1f} min in all; pick: {summary['picked']} "
          f"({summary['reason']})")
    print(f"{'network':32} {'x base':>7} {'x R-56':>7} {'speed-up':>8} {'val %':>7} {'lost':>6} {'bound':>6} {'test %':>7}")
    for r in summary["rows"]:
        ratio = r["latency_ratio"]
        big = r.get("x_resnet56") or (ratio if summary.get("model", "resnet56") == "resnet56" else None)
        against = big or ratio  # ResNet-56 where it was measured, else the run's own baseline
        print(f"{r['network']:32} {cell(ratio, '{:.3f}'):>7} {cell(big, '{:.3f}'):>7} "
              f"{cell(1 / against if against else None, '{:.2f}x'):>8} "
              f"{cell(r['val_top1'], '{:.2f}'):>7} {cell(r['drop'], '{:+.2f}'):>6} {cell(r['bound'], '{:.2f}'):>6} "
              f"{cell(r['test_top1'], '{:.2f}'):>7}" + ("  <- picked" if r["picked"] else ""))


def cell(value: float | None, fmt: str) -> str:
    return "-" if value is None or math.isnan(value) else fmt.format(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["resnet56"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "int8"])
    parser.add_argument("--summarise", action="store_true",
                        help="summarise finished runs again without running anything (wall time: the study's)")
    parser.add_argument("--longer", action="store_true",
                        help="train the front of a finished run again with the -long experiment's final budget")
    parser.add_argument("--final-variant", metavar="NAME",
                        help="train the front of a finished run again as part7-MODEL-PRECISION-NAME says")
    args = parser.parse_args()
    again = args.final_variant or ("long" if args.longer else None)
    variant = f"-{again}" if again else ""
    summaries = []
    for model in args.models:
        for precision in args.precisions:
            name = f"part7-{model}-{precision}{variant}"
            if again:
                copy_search(RUNS / f"part7-{model}-{precision}", RUNS / name)
            seconds = (earlier_seconds(model, precision, variant) if args.summarise else
                       edgetune("run", f"experiments/{name}.experiment.yaml", "--run-dir", str(RUNS / name)))
            if again and not args.summarise:  # the copied search's time, then the final stage's
                seconds += study_seconds(RUNS / name) or 0.0
            summaries.append(summarise(model, precision, seconds, variant))
    for s in summaries:
        show(s)
    save("part7", {"runs": merged(summaries)})


def copy_search(done: Path, into: Path) -> None:
    """The finished run's search, without its final stage, as the start of the longer one."""
    if (into / "study.db").exists():
        return
    if not (done / "study.db").exists():
        raise SystemExit(f"{done} holds no finished search: run it first (without --longer)")
    shutil.copytree(done, into, ignore=shutil.ignore_patterns("final", "report", "*.bak"))


def key(run: dict) -> tuple[str, str, str]:
    return run.get("model", "resnet56"), run["precision"], run.get("variant", "")


def earlier_seconds(model: str, precision: str, variant: str = "") -> float:
    path = SUMMARIES / "part7.json"
    runs = json.loads(path.read_text())["runs"] if path.exists() else []
    return next(r["wall_seconds"] for r in runs if key(r) == (model, precision, variant))


def merged(summaries: list[dict]) -> list[dict]:
    """Keep the runs of other precisions already summarised, so each can be made on its own."""
    path = SUMMARIES / "part7.json"
    earlier = json.loads(path.read_text())["runs"] if path.exists() else []
    fresh = {key(s) for s in summaries}
    return [r for r in earlier if key(r) not in fresh] + summaries


if __name__ == "__main__":
    main()
