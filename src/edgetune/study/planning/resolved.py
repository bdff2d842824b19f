"""The experiment as run, as `experiment.resolved.yaml` records it (the seed's two files inlined,
secrets redacted), and what differs from it when a run is refused as another experiment."""

from __future__ import annotations

from typing import Any

import yaml

from edgetune.errors import redact_url
from edgetune.files import read_yaml
from edgetune.study.planning.plan import Plan


def resolved_experiment(plan: Plan) -> str:
    """The experiment as run, the seed's two files inlined (their paths kept beside, as
    `recipe_file` and `sweep_file`): a report or an export reads what was searched, even after
    the files changed or moved."""
    resolved = redact_secrets(plan.spec.model_dump(mode="json"))
    for key in ("recipe", "sweep"):
        if isinstance(resolved.get(key), str):
            resolved[f"{key}_file"] = resolved[key]
    if isinstance(resolved.get("recipe"), str):
        resolved["recipe"] = plan.raw_schedule
    if isinstance(resolved.get("sweep"), str):
        resolved["sweep"] = read_yaml(resolved["sweep_file"], "sweep") or {}
    return yaml.safe_dump(resolved, sort_keys=False)


def changed_since(plan: Plan) -> str:
    """What differs between the study's recorded experiment (experiment.resolved.yaml) and this
    one, key by key, so a user sees which setting (or which changed default) makes it another."""
    try:
        before = yaml.safe_load(plan.paths.resolved_experiment.read_text())
    except (OSError, yaml.YAMLError):
        before = None
    if not isinstance(before, dict):
        return "recipe, sweep, data, model, fine-tuning or benchmark changed"
    now = yaml.safe_load(resolved_experiment(plan))
    diffs = [f"{key}: {a!r} then, {b!r} now" for key, a, b in _differences(before, now)
             if key not in ("run_dir", "trials", "storage")]
    return "; ".join(diffs[:5]) + (f"; and {len(diffs) - 5} more" if len(diffs) > 5 else "") if diffs else (
        "what changed is not in experiment.resolved.yaml: the edgetune version, or the network or data handed over")


def _differences(a: Any, b: Any, key: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str)
                for d in _differences(a.get(k), b.get(k), f"{key}.{k}" if key else str(k))]
    return [] if a == b else [(key, a, b)]


def redact_secrets(resolved: dict[str, Any]) -> dict[str, Any]:
    if resolved.get("storage"):
        resolved["storage"] = redact_url(resolved["storage"])
    if resolved.get("remote"):
        resolved["remote"]["broker"] = redact_url(resolved["remote"]["broker"])
    return resolved
