"""The metrics a trial records, and the names a sweep may use for them.

The seed's sweeps name `Latency` and `Top1`; users of other tools write `latency_ms` or
`top1`. Names are matched case-insensitively against the recorded keys and these aliases.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgetune.errors import ConfigError, closest


@dataclass(frozen=True)
class Metric:
    """One recorded metric: what it means, how a person's table labels it (its unit in the label,
    the recorded value divided by `scale`), and whether it scores the network's outputs (an
    accuracy: fine-tuning moves it, so it is never checked as a resource before training)."""

    meaning: str
    label: str | None = None
    scale: float = 1.0
    accuracy: bool = False


# Every metric a trial and the baseline record: the one table the sweep's names, the report's
# labels and units, and the set of accuracies are read from.
TABLE: dict[str, Metric] = {
    "top1": Metric("validation top-1 accuracy (%) after fine-tuning", "top-1 %", accuracy=True),
    "predicted_latency_ratio": Metric("latency ratio predicted from the width profile before the candidate "
                                      "was built"),
    "prediction_error": Metric("predicted / measured latency ratio - 1 (round_to: measured recipes)"),
    "top5": Metric("validation top-5 accuracy (%) after fine-tuning", "top-5 %", accuracy=True),
    "loss": Metric("validation cross-entropy after fine-tuning", "loss", accuracy=True),
    "top1_before_ft": Metric("validation top-1 (%) right after pruning (and the norm statistics' "
                             "re-estimation), before fine-tuning",
                             "top-1 before fine-tuning %", accuracy=True),
    "top1_as_pruned": Metric("validation top-1 (%) as pruned, with the unpruned network's norm statistics "
                             "(before calibrate.batchnorm re-estimated them)",
                             "top-1 as pruned (stale norm statistics) %", accuracy=True),
    "norms_reestimated": Metric("norm layers whose running statistics were re-estimated after pruning"),
    "layers_refitted": Metric("layers that lost inputs and were re-fitted by least squares "
                              "(calibrate.reconstruct)"),
    "rung": Metric("the last rung the candidate reached: 0 scored after re-estimation only, 1 fine-tuned "
                   "(the final stage, the top rung, is in final_* columns)"),
    "top5_before_ft": Metric("validation top-5 (%) right after pruning", accuracy=True),
    "loss_before_ft": Metric("validation cross-entropy right after pruning", accuracy=True),
    "top1_torch": Metric("PyTorch's top-1 when another precision is deployed (top1 is then the deployed "
                         "model's)", accuracy=True),
    "top5_torch": Metric("PyTorch's top-5 when another precision is deployed", accuracy=True),
    "deployed_top1": Metric("top-1 computed from the deployed artefact's outputs (non-fp32 precisions)",
                            accuracy=True),
    "deployed_top5": Metric("top-5 computed from the deployed artefact's outputs", accuracy=True),
    "latency_ms": Metric("median latency at the benchmark batch size (ms, raw)", "latency ms"),
    "latency_std_ms": Metric("standard deviation of single-run latency (ms)"),
    "latency_min_ms": Metric("fastest single run (ms)"),
    "runs": Metric("timed runs behind the latency statistics"),
    "repeat_spread": Metric("(max - min) / median of the repeated measurements' medians"),
    "total_latency_ms": Metric("median latency with host-side input and output copies: the seed's 'total "
                               "latency' (image loaded into the device, result read back)",
                               "total latency ms"),
    "latency_mean_ms": Metric("mean latency (ms)"),
    "latency_p90_ms": Metric("90th percentile latency (ms)", "p90 ms"),
    "latency_p99_ms": Metric("99th percentile latency (ms)", "p99 ms"),
    "latency_ratio": Metric("median of per-round latency ratios to the baseline timed alongside",
                            "x unpruned latency"),
    "latency_adj_ms": Metric("latency_ratio x the baseline's median at study start: latency with host drift"
                             " removed", "latency ms (host-adjusted)"),
    "throughput": Metric("images per second at the first throughput batch size", "images/s"),
    "engine_throughput": Metric("images per second in the runtime's own throughput mode (OpenVINO), else "
                                "empty"),
    "batch_latency_ms": Metric("latency of one batch at the first throughput batch size (ms)"),
    "params": Metric("parameter count", "k parameters", scale=1000),
    "macs": Metric("multiply-accumulates per image", "M MACs", scale=1e+06),
    "flops": Metric("floating-point operations per image (2 x MACs)"),
    "achieved_gflops": Metric("FLOPs per second achieved at the benchmark batch size"),
    "onnx_bytes": Metric("size of the fp32 ONNX file", "ONNX MB", scale=2**20),
    "model_bytes": Metric("size of the deployed file(s) at the chosen precision", "model MB", scale=2**20),
    "load_seconds": Metric("time to read the model file"),
    "compile_seconds": Metric("time to build the runtime's executable form"),
    "session_memory_mb": Metric("resident memory the session added (MiB)"),
    "energy_mj": Metric("energy per batch (mJ) from RAPL or NVML; empty where the machine exposes neither"),
    "power_w": Metric("average power (W) while running; empty where unavailable"),
    "max_abs_diff": Metric("largest |difference| between deployed and reference outputs"),
    "argmax_agreement": Metric("share of images where deployed and reference outputs agree on the class"),
    "macs_ratio": Metric("MACs / the baseline's MACs", "x unpruned MACs"),
    "params_ratio": Metric("parameters / the baseline's parameters", "x unpruned parameters"),
    "size_ratio": Metric("deployed file size / the baseline's (the second seed's 0.8x size budget is "
                         "size_ratio <= 0.8)", "x unpruned size"),
    "sparsity": Metric("share of convolution and linear weights that are exactly zero"),
    "finetune_seconds": Metric("wall time of fine-tuning"),
    "final_lr": Metric("learning rate at the end of fine-tuning, after the recipe's LR schedulers"),
}
METRICS: dict[str, str] = {name: m.meaning for name, m in TABLE.items()}
ACCURACY = frozenset(name for name, m in TABLE.items() if m.accuracy)

# The other forms a score is recorded in: right after pruning (before fine-tuning), and PyTorch's
# beside the deployed artefact's at a reduced precision (`top1_before_ft`, `top1_torch`; a user
# metric `miou` likewise).
BEFORE_FT, TORCH = "_before_ft", "_torch"


def recorded_forms(name: str) -> list[str]:
    """Every column a score named `name` may be recorded under."""
    return [name, name + BEFORE_FT, name + TORCH]

ALIASES = {
    # `Latency` is the seed's objective; the drift-free form keeps the search from chasing the host.
    "latency": "latency_adj_ms",
    "total_latency": "total_latency_ms",
    "total latency": "total_latency_ms",
    "accuracy": "top1",
    "size": "onnx_bytes",
}


def resolve_metric(name: str, source: str = "<sweep>", custom: bool = False) -> str:
    """A built-in metric's canonical name; with `custom` (the experiment names an `evaluate`
    function), any other identifier is taken as one of its metrics, checked once it has run."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key in METRICS:
        return key
    if custom and name.strip().isidentifier():
        return name.strip()
    accepted = sorted({*METRICS, *(a for a in ALIASES if " " not in a)})
    near = closest(key, accepted, n=3)
    raise ConfigError(
        f"unknown metric '{name}'; did you mean {', '.join(near)}? accepted: {', '.join(accepted)}",
        source=source, key="metric.name",
    )


# A proxy that fell by this much while the measured latency stayed within noise is a gap users
# must see (Torch-Pruning's own table: 2.04x fewer MACs, 1.35x lower latency).
MACS_FELL = 0.95
LATENCY_SAME = 0.98


# Points of top-1 that fine-tuning may lose before its settings are blamed: a short fine-tune
# of a recovered network moves it by a few points either way; 0.1 on 1,024 images lost 65.
FT_LOST = 10.0


def compression_flags(metrics: dict, baseline: dict) -> list[str]:
    """Warnings a result carries: proxies that fell without a measured speed-up, fine-tuning
    that destroyed what recovery gave, and zeroed weights that a dense runtime still computes."""
    flags = []
    macs_ratio, latency_ratio = metrics.get("macs_ratio"), metrics.get("latency_ratio")
    if macs_ratio is not None and latency_ratio is not None and macs_ratio <= MACS_FELL and latency_ratio >= LATENCY_SAME:
        flags.append(f"no real speed-up: MACs x{macs_ratio:.2f} but measured latency x{latency_ratio:.2f}")
    before, after = metrics.get("top1_before_ft"), metrics.get("top1")
    if metrics.get("finetune_seconds") and before is not None and after is not None and before - after > FT_LOST:
        flags.append(f"fine-tuning lost {before - after:.1f} points of top-1 ({before:.2f} -> {after:.2f} %): its "
                     "settings harm this network; try a lower finetune.learning_rate (the shipped examples "
                     "fine-tune at 0.01) or more training images (data.train_subset)")
    zeros = (metrics.get("sparsity") or 0.0) - (baseline.get("sparsity") or 0.0)
    if zeros >= 0.001:  # trained dense weights are almost never exactly zero
        flags.append(f"unstructured: {100 * zeros:.1f} % of weights zeroed, which a dense runtime still computes")
    return flags


RELATIVE = {"macs_ratio": "macs", "params_ratio": "params", "size_ratio": "model_bytes"}


def add_ratios(metrics: dict, baseline: dict) -> dict:
    """The baseline-relative forms of size metrics, so budgets read "0.8x the original"."""
    for ratio, key in RELATIVE.items():
        if metrics.get(key) and baseline.get(key):
            metrics[ratio] = metrics[key] / baseline[key]
    return metrics
