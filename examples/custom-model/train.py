"""Train the example's network on the example's data the way a user would, in plain PyTorch,
and save a plain state_dict (no edgetune metadata):
`python examples/custom-model/train.py [--epochs 4]` (about a minute on two cores)."""

import argparse
from pathlib import Path

import torch
from data import make
from model import build
from torch.utils.data import DataLoader


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("weights.pt"))
    args = parser.parse_args()
    torch.manual_seed(0)
    train, val, _ = make()
    net = build(width=args.width)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    loader = DataLoader(train, batch_size=64, shuffle=True)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs * len(loader))
    for epoch in range(args.epochs):
        net.train()
        for images, labels in loader:
            loss = torch.nn.functional.cross_entropy(net(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        net.eval()
        with torch.no_grad():
            top1 = (net(val.images).argmax(1) == val.labels).float().mean()
        print(f"epoch {epoch + 1}: validation top-1 {100 * top1:.2f} %")
    torch.save(net.state_dict(), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
