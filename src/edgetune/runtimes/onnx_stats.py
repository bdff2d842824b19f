"""What `edgetune bench` reads from a bare ONNX file: its single image input (or an error saying
why the file is not one bench can feed), and its parameters and MACs (a trial counts them on the
PyTorch module with Torch-Pruning instead). Convolutions and matrix products carry the cost of a
CNN; other operators are left out, as profilers of MACs do."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import shape_inference

from edgetune.errors import ConfigError, EdgetuneError


def _dims(vi: onnx.ValueInfoProto) -> list[int] | None:
    dims = [d.dim_value if d.HasField("dim_value") else 0 for d in vi.type.tensor_type.shape.dim]
    return dims or None


def onnx_params_and_macs(path: Path, image_shape: tuple[int, ...] | None = None) -> tuple[int, int]:
    """Weights (tensors of two or more dimensions: biases and quantisation scales left out)
    and per-image MACs of the convolutions and matrix products. `image_shape` (one image, no
    batch): the size the file is run at, where it leaves its height and width free (counted at
    the file's own sizes, a free-size network read 40 MACs instead of 28,264)."""
    loaded = onnx.load(str(path))
    if image_shape is not None:
        _fix_input(loaded.graph, image_shape)
    model = shape_inference.infer_shapes(loaded)
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    params = sum(math.prod(t.dims) for t in graph.initializer
                 if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.INT8,
                                    onnx.TensorProto.UINT8) and len(t.dims) > 1)
    shapes = {vi.name: _dims(vi) for vi in [*graph.value_info, *graph.output, *graph.input]}
    for t in graph.initializer:
        shapes[t.name] = list(t.dims)
    # Quantised graphs route weights through DequantizeLinear: follow it back to the initializer.
    dequant = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    macs = 0
    for node in graph.node:
        if node.op_type == "Conv":
            w_name = dequant.get(node.input[1], node.input[1])
            w = shapes.get(w_name) or (list(inits[w_name].dims) if w_name in inits else None)
            out = shapes.get(node.output[0])
            if w and out and len(out) >= 3:
                macs += math.prod(out[1:]) * math.prod(w[1:])
        elif node.op_type in ("Gemm", "MatMul"):
            b_name = dequant.get(node.input[1], node.input[1])
            b = shapes.get(b_name)
            if b and len(b) == 2:
                macs += b[0] * b[1]
    return int(params), int(macs)


def _fix_input(graph: onnx.GraphProto, image_shape: tuple[int, ...]) -> None:
    """The single image input's free dims set to one image of `image_shape` (the batch to 1),
    so that shape inference reaches every layer; dims the file fixes are left as they are."""
    initialisers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initialisers]
    if len(inputs) != 1:
        return
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) != len(image_shape) + 1:
        return
    for dim, size in zip(dims, (1, *image_shape), strict=True):
        if not dim.HasField("dim_value") or dim.dim_value <= 0:
            dim.Clear()
            dim.dim_value = size
    del graph.value_info[:]  # inferred at the file's sizes: inferred again at these


@dataclass(frozen=True)
class OnnxInput:
    """The one image input `bench` feeds: its name and dims (None where the file leaves a dim free)."""

    name: str
    dims: tuple[int | None, ...]

    @property
    def fixed_batch(self) -> int | None:
        return self.dims[0]

    def describe(self) -> str:
        return f"input '{self.name}' is [{', '.join('?' if d is None else str(d) for d in self.dims)}]"


def onnx_input(path: Path) -> OnnxInput:
    """The model's single input, or an error naming the file and what is wrong with it: not an
    ONNX file (truncated, text, random bytes), several inputs, or not a batch of images."""
    try:
        graph = onnx.load(str(path), load_external_data=False).graph
        if not graph.node:  # protobuf reads an empty file (or some text) as an empty model
            raise ValueError("it holds no operators")
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends: a file that is not ONNX
        raise EdgetuneError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {str(exc)[:200]}); export "
                            "one with torch.onnx.export or give a .pt checkpoint") from None
    initialisers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initialisers]
    if len(inputs) != 1:
        raise EdgetuneError(f"{path}: bench feeds one batch of images, but the model has {len(inputs)} inputs "
                            f"({', '.join(i.name for i in inputs) or 'none'})")
    dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                 for d in inputs[0].type.tensor_type.shape.dim)
    found = OnnxInput(inputs[0].name, dims)
    if len(dims) < 2:
        raise EdgetuneError(f"{path}: bench feeds a batch of images (batch, channels, ...), but {found.describe()}")
    return found


def random_images(found: OnnxInput, path: Path, n: int = 64) -> np.ndarray:
    """A fixed random batch of the size the model takes (parity and timing need no real images),
    or an error when the file leaves the image size free."""
    if any(d is None for d in found.dims[1:]):
        raise ConfigError(f"{path}: {found.describe()}: its image size is left free, so bench cannot make an input; "
                          "give --data DATASET to time it on that dataset's images", key="--data")
    return np.random.default_rng(0).standard_normal((n, *found.dims[1:])).astype(np.float32)  # type: ignore[misc]
