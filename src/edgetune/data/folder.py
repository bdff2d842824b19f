"""A generic image folder: root/{train,test}/<class>/<image>, resized to one size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from edgetune.data.splits import ImageSplit
from edgetune.errors import EdgetuneError, MissingExtraError

HOW_TO_GET = "Point data.root at a directory with train/<class>/*.png and test/<class>/*.png."
SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


def _load_split(root: Path, classes: list[str]) -> list[tuple[np.ndarray, int]]:
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise MissingExtraError("pillow", "images") from exc
    items = []
    for label, cls in enumerate(classes):
        for path in sorted((root / cls).iterdir()):
            if path.suffix.lower() in SUFFIXES:
                with Image.open(path) as img:
                    items.append((np.asarray(img.convert("RGB")), label))
    return items


def load_image_folder(root: Path) -> tuple[ImageSplit, ImageSplit, dict]:
    if not (root / "train").is_dir() or not (root / "test").is_dir():
        raise FileNotFoundError(root)
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    splits = []
    for part in ("train", "test"):
        items = _load_split(root / part, classes)
        if not items:
            raise EdgetuneError(f"{root / part} holds no images ({', '.join(sorted(SUFFIXES))})")
        shapes = {img.shape for img, _ in items}
        if len(shapes) != 1:
            raise EdgetuneError(f"{root / part}: images differ in size {sorted(shapes)[:3]}; resize them first")
        x = np.stack([img for img, _ in items]).transpose(0, 3, 1, 2)
        y = np.array([label for _, label in items], dtype=np.int64)
        splits.append(ImageSplit(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y)))
    x = splits[0].images.float() / 255
    mean = tuple(x.mean(dim=(0, 2, 3)).tolist())
    std = tuple(x.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist())
    return splits[0], splits[1], {"num_classes": len(classes), "mean": mean, "std": std, "classes": tuple(classes)}
