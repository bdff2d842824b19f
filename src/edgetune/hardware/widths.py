"""Which channel counts run fast on this device: width profiles and the staircase in them.

A runtime computes channels in blocks (ONNX Runtime's NCHWc layout uses 8 or 16 lanes), so a
layer with one channel more than a multiple of 8 can cost a whole block more, and a pruned
network can be slower than the unpruned one (docs/hardware-aware.md measures it). The profile
is measured in the network's own context: every layer of one shape signature is cut to the same
width at once (the same filter pruning a trial does), the whole network is exported and timed
beside the unpruned one, and the latency change divided among those layers.
"""

from __future__ import annotations

import copy
import hashlib
import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgetune.catalog import runtime_traits
from edgetune.compress.base import CompressionContext, PrunerOptions, get_method
from edgetune.compress.groups import coupled_targets
from edgetune.compress.widths import efficient_widths, snap_width  # noqa: F401 - re-exported
from edgetune.config.architecture import Architecture
from edgetune.config.benchmark import BenchmarkSpec
from edgetune.data.splits import load_dataset
from edgetune.errors import ConfigError
from edgetune.executors.base import Executor, Scoring
from edgetune.executors.local import LocalExecutor
from edgetune.files import atomic_write_json, cache_root
from edgetune.models.registry import load_described
from edgetune.plotting import pyplot, save
from edgetune.runtimes.export import export_onnx


@dataclass(frozen=True)
class WidthProfile:
    """Latency of the network against the width of one signature's layers (all cut alike)."""

    signature: str
    layers: tuple[str, ...]  # weights sharing the signature
    full: int  # the unpruned width
    widths: tuple[int, ...]
    latency_ms: tuple[float, ...]  # whole network, interleaved-ratio adjusted
    baseline_ms: float


def signatures(model: nn.Module, example: torch.Tensor, targets: Sequence[str],
               coupled: dict[str, int] | None = None) -> dict[str, list[str]]:
    """Targets grouped by what decides their cost: input and output channels, kernel, stride,
    groups, the input's spatial size, and how many layers are pruned with it (a residual
    stream's convolution cuts several). Layers sharing a signature share a staircase."""
    coupled = coupled if coupled is not None else coupled_sizes(coupled_groups(model, example))
    shapes: dict[str, tuple] = {}
    hooks = []
    modules = dict(model.named_modules())
    for t in targets:
        m = modules[t.removesuffix(".weight")]

        def hook(mod, inputs, _out, name=t):
            x = inputs[0]
            shapes[name] = (mod.in_channels, mod.out_channels, tuple(mod.kernel_size), tuple(mod.stride),
                            mod.groups, tuple(x.shape[2:]))

        hooks.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model.eval()(example)
    finally:
        for h in hooks:
            h.remove()
    groups: dict[str, list[str]] = {}
    for t in targets:
        i, o, k, s, g, hw = shapes[t]
        n = coupled.get(t, 1)
        key = f"conv{k[0]}x{k[1]} {i}->{o} s{s[0]} g{g} @{hw[0]}x{hw[1]}" + (f" +{n - 1} coupled" if n > 1 else "")
        groups.setdefault(key, []).append(t)
    return groups


def coupled_groups(model: nn.Module, example: torch.Tensor, method: str = "filters-l1") -> dict[str, list[str]]:
    """The method's targets by pruning group, named by their first member (one dependency-graph
    build: callers derive representatives and group sizes from it)."""
    return coupled_targets(get_method(method), model, CompressionContext(example))


def coupled_sizes(groups: dict[str, list[str]]) -> dict[str, int]:
    """Each weight -> how many weights its pruning group cuts."""
    return {w: len(members) for members in groups.values() for w in members}


@dataclass(frozen=True)
class Measuring:
    """Where and how a width is timed: the executor (this machine, or the study's device
    worker), the target's settings (timed the short way: only latency matters here), the images
    timed and, at INT8, those each cut network is quantised on (INT8 kernels have staircases of
    their own)."""

    executor: Executor
    spec: BenchmarkSpec
    sample: np.ndarray
    calibration: np.ndarray | None = None


def cache_key(model_sha: str, measuring: Measuring, method: str, step: int = 1) -> str:
    """A profile holds for one network, target (this machine or a device worker), runtime,
    device, precision (and INT8 format), thread count and grid of widths."""
    spec = measuring.spec
    fields = {"model": model_sha, "runtime": spec.runtime, "device": spec.device, "precision": spec.precision,
              "threads": spec.threads, "batch": spec.batch_size, "method": method}
    if spec.precision == "int8":
        fields["int8_format"] = spec.int8_format
    if step != 1:
        fields["step"] = step
    fields.update(measuring.executor.cache_fields())
    blob = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def profile_widths(model: nn.Module, example: torch.Tensor, measuring: Measuring, method: str = "filters-l1",
                   widths_for: Callable[[int], list[int]] | None = None, targets: Sequence[str] | None = None,
                   progress: Callable[[str], None] = lambda _: None,
                   groups: dict[str, list[str]] | None = None) -> list[WidthProfile]:
    """Measure each signature's staircase: for each width, cut every layer of the signature to
    it, export, time the whole network interleaved with the unpruned one on the executor. The
    exported files live only while they are timed."""
    with tempfile.TemporaryDirectory(prefix="edgetune-widths-") as work:
        work_dir = Path(work)
        spec, sample, executor = measuring.spec.quick(), measuring.sample, measuring.executor
        pruner = get_method(method)
        groups = groups if groups is not None else coupled_groups(model, example, method)
        if targets is None:  # one representative per coupled group: a residual stream is one width
            targets = list(groups)
        widths_for = widths_for or (lambda full: list(range(1, full + 1)))
        scoring = Scoring(measuring.calibration)
        # Only the time is kept: each cut file is checked against its own FP32 output on ONNX Runtime
        # (what its conversion could break) and its MACs read from the file, not from a PyTorch
        # forward pass twice per width; a runtime that runs the network object itself gets it.
        eager = runtime_traits(spec.runtime).runs_module
        base_onnx = work_dir / "baseline.onnx"
        export_onnx(model, example, base_onnx)
        executor.open_reference(base_onnx, spec, model, measuring.calibration, work_dir)
        base = executor.measure(base_onnx, spec, sample, module=model if eager else None, scoring=scoring,
                                work_dir=work_dir).metrics
        base_ms = base["latency_ms"] / base["latency_ratio"]  # the reference's own time in those rounds
        profiles = []
        for sig, layers in signatures(model, example, targets, coupled_sizes(groups)).items():
            full = dict(model.named_modules())[layers[0].removesuffix(".weight")].out_channels
            lat = []
            widths = sorted(set(widths_for(full)))
            for w in widths:
                progress(f"{sig}: width {w}/{full}")
                if w == full:
                    lat.append(base_ms * base["latency_ratio"])
                    continue
                cut = copy.deepcopy(model)
                pruner.apply(cut, "widths", list(layers), (full - w) / full, CompressionContext(example),
                             PrunerOptions(scope="layer"))
                path = work_dir / "candidate.onnx"
                export_onnx(cut, example, path)
                m = executor.measure(path, spec, sample, module=cut if eager else None, scoring=scoring,
                                     work_dir=work_dir).metrics
                lat.append(m["latency_ratio"] * base_ms)
            profiles.append(WidthProfile(sig, tuple(layers), full, tuple(widths), tuple(lat), base_ms))
        return profiles


def save_profiles(path: Path, key: str, profiles: list[WidthProfile]) -> None:
    atomic_write_json(path, {"key": key, "profiles": [asdict(p) for p in profiles]}, indent=1)


def load_profiles(path: Path, key: str) -> list[WidthProfile] | None:
    """The cached profiles when they were measured for this key, else None (measure again)."""
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    if data.get("key") != key:
        return None
    return [WidthProfile(p["signature"], tuple(p["layers"]), p["full"], tuple(p["widths"]), tuple(p["latency_ms"]),
                         p["baseline_ms"]) for p in data["profiles"]]


def cache_dir() -> Path:
    """Where width profiles are kept between runs."""
    return cache_root() / "widths"


def model_sha(model: nn.Module) -> str:
    """Shapes, not weights, decide speed: the profile of a network holds for any training of it."""
    shapes = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    return hashlib.sha256(repr(shapes).encode()).hexdigest()[:16]


def width_table(model: nn.Module, example: torch.Tensor, measuring: Measuring, weights: Sequence[str],
                method: str = "filters-l1", progress: Callable[[str], None] = lambda _: None,
                step: int = 1) -> WidthTable:
    """Each weight's profile on the executor's target: signatures already in the cache are read
    from it, the others measured once and added to it. A signature is measured by cutting every
    layer of that shape at once (a large, measurable change), not only the layers named here."""
    key = cache_key(model_sha(model), measuring, method, step)
    path = cache_dir() / f"{key}.json"
    profiles = load_profiles(path, key) or []
    groups = coupled_groups(model, example, method)
    sizes = coupled_sizes(groups)
    wanted = signatures(model, example, [w.removeprefix("module.") for w in weights], sizes)
    missing = [sig for sig in wanted if sig not in {p.signature for p in profiles}]
    if missing:
        everyone = signatures(model, example, list(groups), sizes)
        targets = [t for sig in missing for t in everyone.get(sig, wanted[sig])]
        progress("profiling widths on the target (cached for later runs)")
        widths_for = None if step == 1 else (lambda full: sorted({*range(step, full, step), full}))
        profiles += profile_widths(model, example, measuring, method, widths_for=widths_for, targets=targets,
                                   progress=progress, groups=groups)
        save_profiles(path, key, profiles)
    return WidthTable({p.signature: p for p in profiles}, {w: sig for sig, layers in wanted.items() for w in layers},
                      groups)


@dataclass
class WidthTable:
    """The profiles a recipe's layers need: their staircases, and a latency prediction."""

    profiles: dict[str, WidthProfile]  # by signature
    signature_of: dict[str, str]  # weight (no `module.`) -> signature
    groups: dict[str, list[str]] = field(default_factory=dict)  # coupled groups, by first member
    # The unpruned network's latency at this table's precision over the study's baseline's: an
    # INT8 profile is measured against the INT8 network, a study's budget against its FP32 one.
    scale: float = 1.0

    def profile(self, weight: str) -> WidthProfile | None:
        return self.profiles.get(self.signature_of.get(weight.removeprefix("module."), ""))

    def full_width(self, weight: str) -> int | None:
        profile = self.profile(weight)
        return profile.full if profile is not None else None

    def staircases(self) -> dict[str, list[int]]:
        steps = {sig: efficient_widths(p.widths, p.latency_ms) for sig, p in self.profiles.items()}
        return {w: steps[sig] for w, sig in self.signature_of.items() if sig in steps}

    def predict_ratio(self, widths: dict[str, int]) -> float | None:
        """Latency of a candidate as a fraction of the unpruned network's (times `scale`), before building it:
        each layer at its kept width saves its share of what cutting all layers of its shape to
        that width saved when profiled (interpolated between measured widths); savings add up.
        None when a layer has no profile."""
        saved = 0.0
        for weight, width in widths.items():
            profile = self.profile(weight)
            if profile is None:
                return None
            if width >= profile.full:
                continue
            at = float(np.interp(width, profile.widths, profile.latency_ms))
            saved += (profile.baseline_ms - at) / profile.baseline_ms / len(profile.layers)
        return self.scale * (1.0 - saved)


def write_profiles(profiles: list[WidthProfile], out_dir: Path) -> None:
    """widths.csv (every measurement, with its staircase flag) and staircase.png."""
    import pandas as pd

    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for p in profiles:
        steps = set(efficient_widths(p.widths, p.latency_ms))
        rows += [{"signature": p.signature, "layers": len(p.layers), "width": w, "full": p.full, "latency_ms": t,
                  "ratio": t / p.baseline_ms, "on_staircase": w in steps}
                 for w, t in zip(p.widths, p.latency_ms, strict=True)]
    pd.DataFrame(rows).to_csv(out_dir / "widths.csv", index=False)
    fig, axes = pyplot().subplots(len(profiles), 1, figsize=(7, 2.4 * len(profiles)), dpi=100, squeeze=False)
    for ax, p in zip(axes[:, 0], profiles, strict=True):
        steps = set(efficient_widths(p.widths, p.latency_ms))
        ratio = [t / p.baseline_ms for t in p.latency_ms]
        ax.plot(p.widths, ratio, color="tab:gray", lw=1, marker=".", ms=3)
        ax.scatter([w for w in p.widths if w in steps], [r for w, r in zip(p.widths, ratio, strict=True) if w in steps],
                   color="tab:green", s=14, zorder=3, label="on the staircase")
        ax.axhline(1.0, color="black", lw=0.6, ls="--")
        ax.set_title(f"{p.signature} ({len(p.layers)} layers cut together)", fontsize=8)
        ax.set_ylabel("x unpruned", fontsize=8)
        ax.legend(fontsize=7)
    axes[-1, 0].set_xlabel("kept width (channels)")
    save(fig, out_dir / "staircase.png")


def profile_checkpoint(checkpoint: Path, architecture: Architecture, spec: BenchmarkSpec, *,
                       data: str = "fashion-mnist", data_root: Path | None = None, step: int = 1,
                       progress: Callable[[str], None] = lambda _: None) -> list[WidthProfile]:
    """`edgetune profile-widths`: every layer shape of a checkpoint's network, profiled on the
    target `spec` names (its quick settings). Every width (or INT8) goes through the cache a
    study's `round_to: measured` reads; a coarser fp32 grid is a look, not cached."""
    precision = spec.precision
    if precision not in ("fp32", "int8"):
        raise ConfigError(f"--precision {precision!r}: width profiles are measured at fp32 or int8", key="precision")
    splits = load_dataset(data, data_root)
    net, _ = load_described(checkpoint, architecture, num_classes=splits.num_classes, in_channels=splits.in_channels)
    spec = spec.quick()
    example, sample = splits.sample_input(1), splits.sample_input(64).numpy()
    calibration = splits.normalize(splits.train.subset(32, seed=1).images).numpy() if precision == "int8" else None
    with LocalExecutor() as executor:
        measuring = Measuring(executor, spec, sample, calibration)
        if step == 1 or precision != "fp32":
            table = width_table(net.eval(), example, measuring, list(coupled_groups(net, example)),
                                progress=progress, step=step)
            return list(table.profiles.values())
        return profile_widths(net.eval(), example, measuring,
                              widths_for=lambda full: [*range(1, full, step), full], progress=progress)
