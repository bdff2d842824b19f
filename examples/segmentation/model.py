"""A tiny fully convolutional segmentation network: per-pixel class scores at full resolution."""

from torch import nn


def block(cin: int, cout: int, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def build(width: int = 24, classes: int = 3) -> nn.Module:
    return nn.Sequential(block(3, width), block(width, 2 * width, 2), block(2 * width, 2 * width, 4),
                         nn.Conv2d(2 * width, classes, 1))
