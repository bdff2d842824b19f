"""The user's own data, named by the experiment as `data.factory: data.py:make`: four kinds of
faint, small coloured shape on strong noise, RGB, 32 x 32, drawn here (no download), as a torch Dataset whose
items are already-normalised float images and integer labels, the way a user's transforms
leave them."""

import torch
from torch.utils.data import Dataset

CLASSES = ("disc", "square", "cross", "ring")


class Shapes(Dataset):
    def __init__(self, n: int, size: int = 32, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, len(CLASSES), (n,), generator=g)
        ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        centre = torch.rand(n, 2, generator=g) * size * 0.5 + size * 0.25
        radius = (torch.rand(n, generator=g) * 0.12 + 0.10) * size
        dx = (xs[None] - centre[:, 0, None, None]).abs()
        dy = (ys[None] - centre[:, 1, None, None]).abs()
        r = radius[:, None, None]
        dist = (dx**2 + dy**2).sqrt()
        masks = torch.stack([dist < r, torch.maximum(dx, dy) < r,
                             ((dx < r / 3) & (dy < r)) | ((dy < r / 3) & (dx < r)), (dist < r) & (dist > r / 2)], 1)
        shape = masks[torch.arange(n), self.labels].float()
        colour = torch.rand(n, 3, 1, 1, generator=g) * 0.4 + 0.1
        noise = torch.rand(n, 3, size, size, generator=g) * 0.6
        self.images = ((shape[:, None] * colour + noise).clamp(0, 1) - 0.5) / 0.25

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], int(self.labels[i])


def make(n_train: int = 4000, n_val: int = 1000, n_test: int = 1000, size: int = 32):
    """(train, val, test): three draws with seeds of their own, so no image is in two splits."""
    return Shapes(n_train, size, seed=1), Shapes(n_val, size, seed=2), Shapes(n_test, size, seed=3)
