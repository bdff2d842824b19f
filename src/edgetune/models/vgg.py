"""VGG-style plain CNNs (Simonyan and Zisserman 2015) with BatchNorm, for small images: a stack of
3x3 convolutions and ceil-mode max pools (28x28 and 32x32 both end at 1x1), then a classifier
with one hidden layer. No shortcuts: every filter's removal touches only the next layer, the
easy case for pruning and the one the first seed's figures were drawn for."""

from __future__ import annotations

from torch import nn

CONFIGS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


class VGG(nn.Module):
    def __init__(self, config: list, num_classes: int = 10, in_channels: int = 3, hidden: int = 256) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            else:
                layers += [nn.Conv2d(channels, item, 3, padding=1, bias=False), nn.BatchNorm2d(item), nn.ReLU(inplace=True)]
                channels = item
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


def vgg11(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    return VGG(CONFIGS["vgg11"], num_classes, in_channels)


def vgg16(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    return VGG(CONFIGS["vgg16"], num_classes, in_channels)
