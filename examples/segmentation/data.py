"""Synthetic segmentation data, drawn here (no download): faint discs and squares on noise, RGB
32 x 32, with a mask giving each pixel's class (0 background, 1 disc, 2 square)."""

import torch
from torch.utils.data import Dataset


class ShapeMasks(Dataset):
    def __init__(self, n: int, size: int = 32, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        masks = torch.zeros(n, size, size, dtype=torch.long)
        images = torch.rand(n, 3, size, size, generator=g) * 0.6
        for _ in range(2):  # two shapes per image, the second drawn over the first
            kind = torch.randint(1, 3, (n,), generator=g)
            centre = torch.rand(n, 2, generator=g) * size * 0.6 + size * 0.2
            radius = (torch.rand(n, generator=g) * 0.1 + 0.1) * size
            dx = (xs[None] - centre[:, 0, None, None]).abs()
            dy = (ys[None] - centre[:, 1, None, None]).abs()
            r = radius[:, None, None]
            inside = torch.where(kind[:, None, None] == 1, (dx**2 + dy**2).sqrt() < r, torch.maximum(dx, dy) < r)
            masks = torch.where(inside, kind[:, None, None], masks)
            colour = torch.rand(n, 3, 1, 1, generator=g) * 0.4 + 0.3
            images = torch.where(inside[:, None], colour + images * 0.3, images)
        self.images, self.masks = (images.clamp(0, 1) - 0.5) / 0.25, masks

    def __len__(self) -> int:
        return len(self.masks)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.masks[i]


def make(n_train: int = 2000, n_val: int = 500, n_test: int = 500, size: int = 32):
    return ShapeMasks(n_train, size, seed=1), ShapeMasks(n_val, size, seed=2), ShapeMasks(n_test, size, seed=3)
