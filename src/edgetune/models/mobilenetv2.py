"""MobileNetV2 (Sandler et al. 2018) adapted to small images, as the CIFAR ports do: the stem and
the second stage keep stride 1, so 28x28 or 32x32 inputs end at 4x4 rather than vanishing.
Layer names follow torchvision's (`features.N.conv.M`), so its recipes and habits carry over.

Inverted residual blocks are the hard case for pruning (depthwise layers tie input to output
channels, residual adds tie blocks together) and for Tucker (depthwise layers have nothing to
factorise): the second seed's results on this network show both."""

from __future__ import annotations

from torch import nn

# expansion t, output channels c, repeats n, first stride s (stage 2's stride 2 -> 1 for small images)
SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int, groups: int = 1, relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(c_out)]
    return layers + [nn.ReLU6(inplace=True)] if relu else layers


class InvertedResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        self.use_residual = stride == 1 and c_in == c_out
        layers: list[nn.Module] = [] if expand == 1 else _conv_bn(c_in, hidden, 1, 1)
        layers += _conv_bn(hidden, hidden, 3, stride, groups=hidden) + _conv_bn(hidden, c_out, 1, 1, relu=False)
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: float = 1.0) -> None:
        super().__init__()
        c = int(32 * width)
        features: list[nn.Module] = [nn.Sequential(*_conv_bn(in_channels, c, 3, 1))]
        for t, out, n, s in SETTINGS:
            out = int(out * width)
            for i in range(n):
                features.append(InvertedResidual(c, out, s if i == 0 else 1, t))
                c = out
        last = max(1280, int(1280 * width))
        features.append(nn.Sequential(*_conv_bn(c, last, 1, 1)))
        self.features = nn.Sequential(*features)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


def mobilenetv2(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    return MobileNetV2(num_classes, in_channels)
