"""What producers and device workers say to each other: pydantic models serialised as JSON,
never pickles, so a worker runs nothing it was sent but its own runtime on a checked model."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from pydantic import Field, field_validator, model_validator

from edgetune.config.base import Strict
from edgetune.config.benchmark import BenchmarkSpec

MAX_MODEL_BYTES = 512 * 2**20
MAX_SAMPLE_VALUES = 64 * 3 * 256 * 256
# Calibration and scoring images for int8/fp16: a few hundred to a few thousand images.
MAX_IMAGE_VALUES = 2**26


def encode_array(a: np.ndarray, dtype: type = np.float32) -> str:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a, dtype=dtype), allow_pickle=False)
    return base64.b64encode(buf.getvalue()).decode()


def decode_array(text: str) -> np.ndarray:
    return np.load(io.BytesIO(base64.b64decode(text, validate=True)), allow_pickle=False)


class BenchRequest(Strict):
    """One model to benchmark. `id` makes the answer idempotent: a redelivered request gets the
    recorded result, not a second benchmark."""

    id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    onnx: str = Field(description="the ONNX file, base64")
    reference_onnx: str | None = Field(None, description="the baseline to interleave with, base64")
    sample: str = Field(description="input images as a float32 .npy, base64")
    benchmark: BenchmarkSpec = Field(default_factory=BenchmarkSpec)
    # How the reference is opened when not as the model is (an INT8 format timed against FP32,
    # a trial at another precision than its study's baseline); None: as `benchmark` says.
    reference_benchmark: BenchmarkSpec | None = None
    # int8 needs images to calibrate on; a reduced precision is scored on held-out images, since
    # its accuracy is the deployed model's, not PyTorch's. Both float32 .npy, labels int64.
    calibration: str | None = None
    eval_images: str | None = None
    eval_labels: str | None = None

    @field_validator("onnx", "reference_onnx")
    @classmethod
    def _size(cls, v: str | None) -> str | None:
        if v is not None and len(v) * 3 // 4 > MAX_MODEL_BYTES:
            raise ValueError(f"model larger than {MAX_MODEL_BYTES // 2**20} MiB")
        if v is not None:
            try:
                base64.b64decode(v, validate=True)
            except ValueError:
                raise ValueError("not base64: an ONNX file encoded with base64 is expected") from None
        return v

    @field_validator("sample")
    @classmethod
    def _sample(cls, v: str) -> str:
        a = decode_array(v)
        if a.dtype != np.float32 or a.ndim < 2 or a.size > MAX_SAMPLE_VALUES:
            raise ValueError(f"sample must be a float32 batch of at most {MAX_SAMPLE_VALUES} values, "
                             f"got {a.dtype} {a.shape}")
        return v

    @field_validator("calibration", "eval_images")
    @classmethod
    def _images(cls, v: str | None) -> str | None:
        if v is not None:
            a = decode_array(v)
            if a.dtype != np.float32 or a.ndim < 2 or a.size > MAX_IMAGE_VALUES:
                raise ValueError(f"images must be a float32 batch of at most {MAX_IMAGE_VALUES} values, "
                                 f"got {a.dtype} {a.shape}")
        return v

    @model_validator(mode="after")
    def _labels(self) -> BenchRequest:
        if (self.eval_images is None) != (self.eval_labels is None):
            raise ValueError("eval_images and eval_labels come together")
        if self.eval_labels is not None:
            labels, images = decode_array(self.eval_labels), decode_array(self.eval_images)
            if labels.dtype != np.int64 or labels.shape != (len(images),):
                raise ValueError(f"eval_labels must be int64 of shape ({len(images)},), got {labels.dtype} "
                                 f"{labels.shape}")
        return self

    def model_bytes(self) -> bytes:
        return base64.b64decode(self.onnx, validate=True)


class BenchResult(Strict):
    id: str
    metrics: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    device: str = ""
