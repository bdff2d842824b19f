"""The metrics a trial records, and the names a sweep may use for them.

The seed's sweeps name `Latency` and `Top1`; users of other tools write `latency_ms` or
`top1`. Names are matched case-insensitively against the recorded keys and these aliases.
"""

from __future__ import annotations

from edgetune.errors import ConfigError, closest

# key -> what it means; every trial and the baseline record all of them.
METRICS: dict[str, str] = {
    "top1": "validation top-1 accuracy (%) after fine-tuning",
    "predicted_latency_ratio": "latency ratio predicted from the width profile before the candidate was built",
    "prediction_error": "predicted / measured latency ratio - 1 (round_to: measured recipes)",
    "top5": "validation top-5 accuracy (%) after fine-tuning",
    "loss": "validation cross-entropy after fine-tuning",
    "top1_before_ft": "validation top-1 (%) right after pruning (and the norm statistics' re-estimation), "
                      "before fine-tuning",
    "top1_as_pruned": "validation top-1 (%) as pruned, with the unpruned network's norm statistics (before "
                      "calibrate.batchnorm re-estimated them)",
    "norms_reestimated": "norm layers whose running statistics were re-estimated after pruning",
    "layers_refitted": "layers that lost inputs and were re-fitted by least squares (calibrate.reconstruct)",
    "rung": "the last rung the candidate reached: 0 scored after re-estimation only, 1 fine-tuned "
            "(the final stage, the top rung, is in final_* columns)",
    "top5_before_ft": "validation top-5 (%) right after pruning",
    "loss_before_ft": "validation cross-entropy right after pruning",
    "top1_torch": "PyTorch's top-1 when another precision is deployed (top1 is then the deployed model's)",
    "top5_torch": "PyTorch's top-5 when another precision is deployed",
    "deployed_top1": "top-1 computed from the deployed artefact's outputs (non-fp32 precisions)",
    "deployed_top5": "top-5 computed from the deployed artefact's outputs",
    "latency_ms": "median latency at the benchmark batch size (ms, raw)",
    "latency_std_ms": "standard deviation of single-run latency (ms)",
    "latency_min_ms": "fastest single run (ms)",
    "runs": "timed runs behind the latency statistics",
    "repeat_spread": "(max - min) / median of the repeated measurements' medians",
    "total_latency_ms": "median latency with host-side input and output copies: the seed's 'total latency' "
                        "(image loaded into the device, result read back)",
    "latency_mean_ms": "mean latency (ms)",
    "latency_p90_ms": "90th percentile latency (ms)",
    "latency_p99_ms": "99th percentile latency (ms)",
    "latency_ratio": "median of per-round latency ratios to the baseline timed alongside",
    "latency_adj_ms": "latency_ratio x the baseline's median at study start: latency with host drift removed",
    "throughput": "images per second at the first throughput batch size",
    "engine_throughput": "images per second in the runtime's own throughput mode (OpenVINO), else empty",
    "batch_latency_ms": "latency of one batch at the first throughput batch size (ms)",
    "params": "parameter count",
    "macs": "multiply-accumulates per image",
    "flops": "floating-point operations per image (2 x MACs)",
    "achieved_gflops": "FLOPs per second achieved at the benchmark batch size",
    "onnx_bytes": "size of the fp32 ONNX file",
    "model_bytes": "size of the deployed file(s) at the chosen precision",
    "load_seconds": "time to read the model file",
    "compile_seconds": "time to build the runtime's executable form",
    "session_memory_mb": "resident memory the session added (MiB)",
    "energy_mj": "energy per batch (mJ) from RAPL or NVML; empty where the machine exposes neither",
    "power_w": "average power (W) while running; empty where unavailable",
    "max_abs_diff": "largest |difference| between deployed and reference outputs",
    "argmax_agreement": "share of images where deployed and reference outputs agree on the class",
    "macs_ratio": "MACs / the baseline's MACs",
    "params_ratio": "parameters / the baseline's parameters",
    "size_ratio": "deployed file size / the baseline's (the second seed's 0.8x size budget is size_ratio <= 0.8)",
    "sparsity": "share of convolution and linear weights that are exactly zero",
    "finetune_seconds": "wall time of fine-tuning",
    "final_lr": "learning rate at the end of fine-tuning, after the recipe's LR schedulers",
}

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
