"""Parameters and MACs of an ONNX file, for `edgetune bench` on a bare file (a trial counts them
on the PyTorch module with Torch-Pruning instead). Convolutions and matrix products carry the
cost of a CNN; other operators are left out, as profilers of MACs do."""

from __future__ import annotations

import math
from pathlib import Path

import onnx
from onnx import shape_inference


def _dims(vi: onnx.ValueInfoProto) -> list[int] | None:
    dims = [d.dim_value if d.HasField("dim_value") else 0 for d in vi.type.tensor_type.shape.dim]
    return dims or None


def onnx_params_and_macs(path: Path) -> tuple[int, int]:
    """Weights (tensors of two or more dimensions: biases and quantisation scales left out)
    and per-image MACs of the convolutions and matrix products."""
    model = shape_inference.infer_shapes(onnx.load(str(path)))
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
