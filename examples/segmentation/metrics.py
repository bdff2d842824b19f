"""Mean intersection over union, the segmentation metric no built-in computes."""

import torch


def miou(outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """outputs: N x classes x H x W scores; targets: N x H x W classes. In %, over the classes
    present in the targets or the predictions."""
    predicted = outputs.argmax(1)
    ious = []
    for c in range(outputs.shape[1]):
        p, t = predicted == c, targets == c
        union = int((p | t).sum())
        if union:
            ious.append(int((p & t).sum()) / union)
    return {"miou": 100 * sum(ious) / len(ious)}
