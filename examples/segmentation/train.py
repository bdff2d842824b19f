"""Train the example's segmentation network in plain PyTorch and save a plain state_dict:
`python examples/segmentation/train.py` (under a minute on two cores)."""

import argparse
from pathlib import Path

import torch
from data import make
from metrics import miou
from model import build
from torch.utils.data import DataLoader


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("weights.pt"))
    args = parser.parse_args()
    torch.manual_seed(0)
    train, val, _ = make()
    net = build()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    loader = DataLoader(train, batch_size=32, shuffle=True)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs * len(loader))
    for epoch in range(args.epochs):
        net.train()
        for images, masks in loader:
            loss = torch.nn.functional.cross_entropy(net(images), masks)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        net.eval()
        with torch.no_grad():
            print(f"epoch {epoch + 1}: validation mIoU {miou(net(val.images), val.masks)['miou']:.2f} %")
    torch.save(net.state_dict(), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
