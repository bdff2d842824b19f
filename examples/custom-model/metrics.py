"""A metric of the user's own, named by the experiment as `evaluate: metrics.py:score`: called
once over the whole validation split with the network's outputs (batches concatenated) and the
targets as the data gives them; every name it returns can be the sweep's metric, an objective
or a constraint."""

import torch


def score(outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """Balanced accuracy (the mean of the per-class recalls) and the worst class's recall, in %:
    a pruned network that gives up one shape entirely shows it here long before top-1 does."""
    predicted = outputs.argmax(1)
    recalls = [float((predicted[targets == c] == c).float().mean()) for c in targets.unique()]
    return {"balanced_accuracy": 100 * sum(recalls) / len(recalls), "worst_class_recall": 100 * min(recalls)}
