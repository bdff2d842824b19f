"""A study's fingerprint (what may resume it): a setting added later, left at its default,
keeps the fingerprints of studies made before it."""

from __future__ import annotations

import json

from edgetune.config.experiment import load_experiment
from tests.helpers import experiment

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
