"""What of Distiller's schedule format edgetune does not run, said by feature and all at once.

Distiller's users hold files written for its whole catalogue (gradual pruning, regularisers,
quantisers, element-wise pruners). A schema error on the first unknown key ("extra inputs are
not permitted") tells them neither what is missing nor what to use instead; this module reads
the raw file first and names every unsupported feature, with its key and the nearest thing
edgetune runs. docs/compatibility.md is the same table for people.
"""

from __future__ import annotations

from typing import Any

AGP = ("edgetune runs gradual pruning (AGP) with L1RankedStructureParameterPruner_AGP, "
       "L2RankedStructureParameterPruner_AGP and AutomatedGradualPruner; this ranking is not built: use {one_shot}")
ELEMENTWISE = ("it zeroes single weights, which a dense runtime still computes (no speed-up); use a structured "
               "pruner (L1RankedStructureParameterPruner) or LevelPruner, which edgetune runs and flags")
ACTIVATION = ("ranking filters by activations needs statistics gathered over training batches, not built; "
              "use L1RankedStructureParameterPruner, GradientRankedFilterPruner (Taylor) or "
              "FMReconstructionChannelPruner")

UNSUPPORTED_PRUNERS: dict[str, str] = {
    "GradientRankedFilterPruner_AGP": AGP.format(one_shot="L1RankedStructureParameterPruner_AGP, or the one-shot "
                                                          "GradientRankedFilterPruner"),
    "ActivationAPoZRankedFilterPruner_AGP": AGP.format(one_shot="L1RankedStructureParameterPruner_AGP"),
    "ActivationMeanRankedFilterPruner_AGP": AGP.format(one_shot="L1RankedStructureParameterPruner_AGP"),
    "RandomRankedFilterPruner_AGP": AGP.format(one_shot="L1RankedStructureParameterPruner_AGP"),
    "BernoulliFilterPruner_AGP": AGP.format(one_shot="L1RankedStructureParameterPruner_AGP"),
    "StructuredAGP": AGP.format(one_shot="L1RankedStructureParameterPruner_AGP"),
    "SplicingPruner": f"dynamic network surgery prunes and splices single weights during training: {ELEMENTWISE}",
    "SensitivityPruner": f"it prunes each tensor's weights under a multiple of their standard deviation: "
                         f"{ELEMENTWISE}; `edgetune sensitivity` measures structured sensitivities instead",
    "MagnitudeParameterPruner": f"it prunes weights under fixed thresholds: {ELEMENTWISE}",
    "BaiduRNNPruner": "gradual element-wise pruning of RNN weights: recurrent networks are not supported",
    "RandomLevelPruner": f"it zeroes random weights: {ELEMENTWISE}",
    "ActivationAPoZRankedFilterPruner": ACTIVATION,
    "ActivationMeanRankedFilterPruner": ACTIVATION,
    "RandomRankedFilterPruner": "random filter ranking is an ablation baseline; use the sweep's random method over "
                                "L1RankedStructureParameterPruner's desired_sparsity",
    "BernoulliFilterPruner": "random filter dropping during training (a regulariser), not a compression",
    "DropFilterPruner": "random filter dropping during training (a regulariser), not a compression",
    "StructureParameterPruner": "pruning rows, columns or kernels by a fixed threshold leaves dense shapes; use "
                                "L1RankedStructureParameterPruner with group_type Filters or Channels",
}

GROUP_TYPES: dict[str, str] = {
    **{g: "it zeroes parts of a weight tensor that a dense runtime still computes; prune whole Filters or Channels"
       for g in ("Kernels", "Cols", "Blocks", "Shapes")},
    "Rows": "zeroing a matrix's rows leaves its shape (and removing a classifier's rows would remove classes); "
            "prune the Filters or Channels feeding it",
}

SECTIONS: dict[str, str] = {
    "quantizers": "Distiller's quantisers are not run; post-training static INT8 on the runtime is: "
                  "benchmark.precision: int8 (or a sweep parameter `precision` over fp32, int8)",
}

REGULARIZERS: dict[str, str] = {
    "GroupVarianceRegularizer": "it evens out group norms for a hardware block structure; use GroupLassoRegularizer",
    "DropFilterRegularizer": "random filter dropping during training, not a compression",
}

SCHEDULERS: dict[str, str] = {
    "ReduceLROnPlateau": "it steps on a validation metric, not per epoch; use StepLR, MultiStepLR or "
                         "CosineAnnealingLR",
    "LambdaLR": "its lambda is Python code, which a YAML file cannot hold; use MultiStepMultiGammaLR or "
                "ExponentialLR",
}


def unsupported(raw: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, why and what instead) for every Distiller feature of `raw` edgetune does not run."""
    found: list[tuple[str, str]] = []
    for name, spec in _table(raw, "quantizers"):
        found.append((f"quantizers.{name}.class", f"{_field(spec, 'class')} is not run: {SECTIONS['quantizers']}"))
    for section, field, refused, what in (("regularizers", "class", REGULARIZERS, ""),
                                          ("pruners", "class", UNSUPPORTED_PRUNERS, ""),
                                          ("pruners", "group_type", GROUP_TYPES, "group_type "),
                                          ("lr_schedulers", "class", SCHEDULERS, "")):
        for name, spec in _table(raw, section):
            value = _field(spec, field)
            if isinstance(value, str) and value in refused:  # anything else is the schema's to refuse
                found.append((f"{section}.{name}.{field}", f"{what}{value} is not supported: {refused[value]}"))
    policies = raw["policies"] if isinstance(raw.get("policies"), list) else []
    for i, policy in enumerate(policies):
        if isinstance(policy, dict) and "quantizer" in policy and "quantizers" not in raw:
            found.append((f"policies[{i}].quantizer", SECTIONS["quantizers"]))
    return sorted(found, key=lambda item: ORDER.index(item[0].split(".")[0].split("[")[0]))


def _field(spec: Any, name: str) -> Any:
    return spec.get(name) if isinstance(spec, dict) else None


ORDER = ("quantizers", "regularizers", "pruners", "lr_schedulers", "policies")


def _table(raw: dict[str, Any], section: str) -> list[tuple[str, Any]]:
    """A section's entries; one of the wrong shape is left to the schema, which names it."""
    value = raw.get(section)
    return list(value.items()) if isinstance(value, dict) else []
