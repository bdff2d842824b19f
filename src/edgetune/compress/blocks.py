"""Depth as a compression action: whole residual blocks removed, each becoming its shortcut.

Width pruning leaves every operator in place, and at batch 1 on a CPU each operator has a cost
of its own (docs/hardware-aware.md); removing a block removes its operators. A block is found
from the module structure, not from a list of names: a submodule whose traced forward ends in
`x + f(x)` (through an activation at most) with `x` its own input, so its output has its input's
shape and, without it, the network computes what it would if `f` were zero. A block whose
shortcut changes the shape (a strided or widening block, with a projection on its shortcut) is
not removable and is left, with the reason.

Which blocks of a stage go is decided by an importance score (`blocks-*` methods):
- `blocks-change`: how much the block changes its input, ||block(x) - x|| / ||x|| on sampled
  training images (small: the block is close to its shortcut already);
- `blocks-bn`: the mean |gamma| of the block's last BatchNorm (data-free; small: its residual
  branch is scaled down);
- `blocks-loss`: the rise in cross-entropy on sampled labelled images when the block alone is
  removed (the sensitivity of the second seed, per block).
`blocks` is the one benchmarks/bench_depth.py found best (docs/methods.md).
"""

from __future__ import annotations

import copy
import operator
from dataclasses import dataclass

import torch
from torch import fx, nn

from edgetune.compress.base import (
    CompressionContext,
    CompressionError,
    CompressionMethod,
    CompressionRecord,
    PrunerOptions,
    replace_module,
    state_hash,
)
from edgetune.errors import closest

ADDS = (operator.add, operator.iadd, torch.add)
SAMPLES = 256  # training images a data-driven score looks at


@dataclass(frozen=True)
class Block:
    name: str
    shape: tuple[int, ...]  # input (= output) shape of one image


# A module's traced graph follows from its class and its children (a forward may branch on
# `self.downsample is None`); tracing every module of a ResNet-56 took 0.2 s, once per pruner of
# every trial. Keyed so, the answer is traced once per kind of block.
_RESIDUAL: dict[tuple, bool] = {}
# Block scores by network (weights and shape), criterion, blocks and images: see `_remembered_scores`.
_SCORES: dict[str, dict[str, float]] = {}


def _ends_in_residual(module: nn.Module) -> bool:
    """True when the module's traced forward returns `x + f(x)` (through one-input steps such as
    an activation) with `x` its own input."""
    key = (type(module), tuple((n, type(c)) for n, c in module.named_children()))
    if key not in _RESIDUAL:
        _RESIDUAL[key] = _traced_residual(module)
    return _RESIDUAL[key]


def _traced_residual(module: nn.Module) -> bool:
    try:
        graph = fx.symbolic_trace(module).graph
    except Exception:  # noqa: BLE001 - untraceable forwards (data-dependent control flow) are not blocks
        return False
    inputs = [n for n in graph.nodes if n.op == "placeholder"]
    output = next(n for n in graph.nodes if n.op == "output")
    if len(inputs) != 1:
        return False
    node = output.args[0]
    while isinstance(node, fx.Node):
        is_add = (node.op == "call_function" and node.target in ADDS) or (
            node.op == "call_method" and node.target in ("add", "add_"))
        if is_add:
            return inputs[0] in node.args
        tensor_args = [a for a in node.args if isinstance(a, fx.Node)]
        if len(tensor_args) != 1:
            return False
        node = tensor_args[0]
    return False


def residual_blocks(model: nn.Module, example: torch.Tensor) -> dict[str, Block]:
    """Every removable block of `model`, innermost first found, by name (in module order)."""
    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    hooks = []
    for name, module in model.named_modules():
        if name and any(isinstance(m, nn.Conv2d | nn.Linear) for m in module.modules()):
            def hook(mod, inputs, out, name=name):
                if inputs and isinstance(inputs[0], torch.Tensor) and isinstance(out, torch.Tensor):
                    shapes[name] = (tuple(inputs[0].shape[1:]), tuple(out.shape[1:]))
            hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model.eval()(example[:1])
    finally:
        for h in hooks:
            h.remove()
    modules = dict(model.named_modules())
    found = [n for n, (i, o) in shapes.items() if i == o and _ends_in_residual(modules[n])]
    # A container whose only residual is one of its children is that child, not a block of its own.
    innermost = [n for n in found if not any(other.startswith(n + ".") for other in found)]
    return {n: Block(n, shapes[n][0]) for n in sorted(innermost, key=list(modules).index)}


def removed_with_block(model: nn.Module, weight: str) -> str | None:
    """The removed block (now an nn.Identity) that held `weight`, if that is why it is missing."""
    path = weight.removeprefix("module.").removesuffix(".weight").split(".")
    for i in range(1, len(path)):
        try:
            module = model.get_submodule(".".join(path[:i]))
        except AttributeError:
            return None
        if isinstance(module, nn.Identity):
            return ".".join(path[:i])
    return None


class Blocks(CompressionMethod):
    """Remove the least important removable blocks of each named module (a stage or a block)."""

    name = "blocks-change"
    unit = "blocks"
    layer_types = (nn.Module,)
    samples_images = True  # the score reads sampled training images (part of what it is remembered by)

    def targets(self, model: nn.Module, ctx: CompressionContext) -> list[str]:
        return list(residual_blocks(model, ctx.example))

    def apply(self, model: nn.Module, pruner: str, weights: list[str], ratio: float, ctx: CompressionContext,
              options: PrunerOptions) -> list[CompressionRecord]:
        blocks = residual_blocks(model, ctx.example)
        records: list[CompressionRecord] = []
        for entry in weights:
            scope = entry.removeprefix("module.").removesuffix(".weight")
            members = [b for b in blocks if b == scope or b.startswith(scope + ".")]
            if not members:
                raise CompressionError(self._why_none(model, scope, blocks), key=f"pruners.{pruner}.weights")
            keep = len(members) - min(round(ratio * len(members)), len(members))
            if options.blocks is not None:
                keep = min(options.blocks, len(members))
            scores = self._remembered_scores(model, members, ctx, pruner)
            drop = sorted(members, key=lambda b: scores[b])[:len(members) - keep]
            for b in drop:
                replace_module(model, b, nn.Identity())
            records += [self.record(pruner, b, 1, int(b in drop)) for b in members]
        ctx.invalidate()
        return records

    def _remembered_scores(self, model: nn.Module, members: list[str], ctx: CompressionContext,
                           pruner: str) -> dict[str, float]:
        """`scores`, computed once per network, blocks and images: a study's trials prune the same
        unpruned network, so most of them ask again what an earlier one's stage was scored
        (it was 90 % of a `make run` trial's pruning time)."""
        h = state_hash(model)
        h.update(repr((self.name, members)).encode())
        if self.samples_images:
            for t in _sampled(ctx, pruner):
                h.update(t.numpy().tobytes() if t is not None else b"-")
        key = h.hexdigest()
        if key not in _SCORES:
            if len(_SCORES) >= 512:
                _SCORES.pop(next(iter(_SCORES)))
            _SCORES[key] = self.scores(model, members, ctx, pruner)
        return _SCORES[key]

    def _why_none(self, model: nn.Module, scope: str, blocks: dict[str, Block]) -> str:
        names = [n for n, _ in model.named_modules() if n]
        if scope not in names:
            return (f"'{scope}' is no module of this network; closest: {', '.join(closest(scope, names))}; "
                    f"removable blocks: {', '.join(blocks) or 'none'}")
        return (f"'{scope}' holds no removable residual block (a block must return its input plus what it "
                f"computes, at its input's shape; a strided or widening block changes the shape and stays); "
                f"removable blocks of this network: {', '.join(blocks) or 'none'}")

    def scores(self, model: nn.Module, members: list[str], ctx: CompressionContext, pruner: str) -> dict[str, float]:
        """Lower is removed first."""
        images, _ = _sampled(ctx, pruner)
        inputs = _block_inputs(model, members, images)
        out = {}
        with torch.no_grad():
            for b in members:
                x = inputs[b]
                out[b] = float((model.get_submodule(b)(x) - x).norm() / x.norm().clamp_min(1e-12))
        return out


class BlocksBatchNorm(Blocks):
    name = "blocks-bn"
    samples_images = False

    def scores(self, model: nn.Module, members: list[str], ctx: CompressionContext, pruner: str) -> dict[str, float]:
        out = {}
        for b in members:
            norms = [m for m in model.get_submodule(b).modules() if isinstance(m, nn.BatchNorm2d) and m.affine]
            out[b] = float(norms[-1].weight.detach().abs().mean()) if norms else float("inf")
        return out


class BlocksLoss(Blocks):
    name = "blocks-loss"

    def scores(self, model: nn.Module, members: list[str], ctx: CompressionContext, pruner: str) -> dict[str, float]:
        images, labels = ctx.samples(SAMPLES, pruner)
        loss = nn.functional.cross_entropy
        with torch.no_grad():
            base = float(loss(model.eval()(images), labels))
            out = {}
            for b in members:
                trial = copy.deepcopy(model)
                replace_module(trial, b, nn.Identity())
                out[b] = float(loss(trial.eval()(images), labels)) - base
        return out


class BlocksDefault(Blocks):
    """`blocks`: the criterion benchmarks/bench_depth.py measured best."""

    name = "blocks"


def _sampled(ctx: CompressionContext, pruner: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The training images a data-driven score reads (the example input when none were given)."""
    return ctx.samples(SAMPLES, pruner) if ctx.batches is not None else (ctx.example, None)


class _Seen(Exception):
    """Every block input wanted is in: the rest of the forward pass is not needed."""


def _block_inputs(model: nn.Module, members: list[str], images: torch.Tensor) -> dict[str, torch.Tensor]:
    seen: dict[str, torch.Tensor] = {}

    def keep(b: str, x: torch.Tensor) -> None:
        seen[b] = x.detach()
        if len(seen) == len(members):
            raise _Seen

    hooks = [model.get_submodule(b).register_forward_pre_hook(lambda mod, args, b=b: keep(b, args[0]))
             for b in members]
    try:
        with torch.no_grad():
            model.eval()(images)
    except _Seen:
        pass
    finally:
        for h in hooks:
            h.remove()
    return seen
