"""Precision as a compression step: the artefact a runtime deploys at fp16 or int8.

INT8 is post-training static quantisation calibrated on training images: ONNX Runtime's
QDQ quantiser for ONNX Runtime, NNCF for OpenVINO (each engine's own tool, since each fuses
and schedules quantised graphs its own way). FP16 is a converted graph for ONNX Runtime and
a precision hint for OpenVINO. Accuracy is then measured on the converted artefact itself.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edgetune.config.benchmark import DEFAULT_INT8, INT8_FORMATS
from edgetune.errors import EdgetuneError, MissingExtraError


def need_calibration(calibration: np.ndarray | None) -> np.ndarray:
    if calibration is None or len(calibration) == 0:
        raise EdgetuneError("int8 needs calibration images: give --calibration DATASET (or data in the experiment)")
    return calibration


def format_args(name: str) -> tuple[str, str, bool]:
    """`qdq-u8-channel` -> ONNX Runtime's (quant format, activation type, per channel)."""
    name = DEFAULT_INT8 if name == "auto" else name
    if name not in INT8_FORMATS:
        raise EdgetuneError(f"int8 format '{name}' unknown; choose auto or one of {', '.join(INT8_FORMATS)}")
    graph, act, weights = name.split("-")
    return ("QDQ" if graph == "qdq" else "QOperator", "QUInt8" if act == "u8" else "QInt8", weights == "channel")


def ort_fp16(onnx_path: Path, out_dir: Path) -> Path:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    out = out_dir / f"{onnx_path.stem}.fp16.onnx"
    # fp32 inputs and outputs: the application's interface does not change with the precision.
    model = convert_float_to_float16(onnx.load(str(onnx_path)), keep_io_types=True)
    onnx.save(model, str(out))
    return out


def ort_int8(onnx_path: Path, out_dir: Path, calibration: np.ndarray, quant_format: str = "QDQ",
             activations: str = "QUInt8", per_channel: bool = True) -> Path:
    """ONNX Runtime static INT8. The defaults are the fastest of the six formats
    benchmarks/bench_int8_formats.py measured on our CPU; int8 activations ran slower than FP32
    there, which is why a study measures them on its own target (hardware/formats.py)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    input_name = onnx.load(str(onnx_path), load_external_data=False).graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(np.array_split(calibration, max(1, len(calibration) // 32)))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {input_name: np.ascontiguousarray(batch, dtype=np.float32)}

    default = (quant_format, activations, per_channel) == ("QDQ", "QUInt8", True)
    out = out_dir / f"{onnx_path.stem}.int8{'' if default else f'-{quant_format}-{activations}-{per_channel}'}.onnx"
    # The quantiser advises "pre-processing" on the root logger for every call; the graphs
    # edgetune exports are already shape-inferred and constant-folded, so the advice is noise.
    logging.disable(logging.WARNING)
    try:
        quantize_static(str(onnx_path), str(out), Reader(), quant_format=getattr(QuantFormat, quant_format),
                        per_channel=per_channel, activation_type=getattr(QuantType, activations),
                        weight_type=QuantType.QInt8)
    finally:
        logging.disable(logging.NOTSET)
    return out


def openvino_int8(onnx_path: Path, out_dir: Path, calibration: np.ndarray) -> Path:
    try:
        import nncf
        import openvino as ov
    except ImportError as exc:
        raise MissingExtraError(exc.name or "nncf", "openvino") from None
    model = ov.Core().read_model(str(onnx_path))
    data = nncf.Dataset([calibration[i:i + 1] for i in range(len(calibration))])
    quantized = nncf.quantize(model, data, subset_size=len(calibration))
    out = out_dir / f"{onnx_path.stem}.int8.xml"
    ov.save_model(quantized, str(out))
    return out
