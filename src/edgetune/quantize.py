"""Precision as a compression step: the artefact a runtime deploys at fp16 or int8.

INT8 is post-training static quantisation calibrated on training images: ONNX Runtime's
QDQ quantiser for ONNX Runtime, NNCF for OpenVINO (each engine's own tool, since each fuses
and schedules quantised graphs its own way). FP16 is a converted graph for ONNX Runtime and
a precision hint for OpenVINO. Accuracy is then measured on the converted artefact itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgetune.errors import EdgetuneError, MissingExtraError

PRECISIONS = ("fp32", "fp16", "bf16", "int8")


def convert(onnx_path: Path, precision: str, runtime: str, out_dir: Path,
            calibration: np.ndarray | None = None) -> Path:
    """The file to open for `precision` on `runtime` (the input itself when only a hint is needed)."""
    if precision not in PRECISIONS:
        raise EdgetuneError(f"precision '{precision}' unknown; choose from {', '.join(PRECISIONS)}")
    if precision == "fp32" or runtime == "torch":
        return onnx_path
    out_dir.mkdir(parents=True, exist_ok=True)
    if runtime == "openvino":
        if precision in ("fp16", "bf16"):
            return onnx_path  # OpenVINO's INFERENCE_PRECISION_HINT does it at compile time
        return _openvino_int8(onnx_path, out_dir, _need(calibration))
    if runtime == "onnxruntime":
        if precision == "bf16":
            raise EdgetuneError("onnxruntime on the CPU has no bf16 path; use fp16, int8, or the openvino runtime")
        if precision == "fp16":
            return _ort_fp16(onnx_path, out_dir)
        return _ort_int8(onnx_path, out_dir, _need(calibration))
    raise EdgetuneError(f"no {precision} conversion for runtime '{runtime}'")


def _need(calibration: np.ndarray | None) -> np.ndarray:
    if calibration is None or len(calibration) == 0:
        raise EdgetuneError("int8 needs calibration images: give --calibration DATASET (or data in the experiment)")
    return calibration


def _ort_fp16(onnx_path: Path, out_dir: Path) -> Path:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    out = out_dir / f"{onnx_path.stem}.fp16.onnx"
    # fp32 inputs and outputs: the application's interface does not change with the precision.
    model = convert_float_to_float16(onnx.load(str(onnx_path)), keep_io_types=True)
    onnx.save(model, str(out))
    return out


def _ort_int8(onnx_path: Path, out_dir: Path, calibration: np.ndarray) -> Path:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    input_name = onnx.load(str(onnx_path), load_external_data=False).graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(np.array_split(calibration, max(1, len(calibration) // 32)))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {input_name: np.ascontiguousarray(batch, dtype=np.float32)}

    out = out_dir / f"{onnx_path.stem}.int8.onnx"
    quantize_static(str(onnx_path), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return out


def _openvino_int8(onnx_path: Path, out_dir: Path, calibration: np.ndarray) -> Path:
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
