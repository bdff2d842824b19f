"""A network edgetune's registry does not know: defined here, in the user's own file, and named
by the experiment as `model.factory: model.py:build`."""

from torch import nn


class SmallConvNet(nn.Module):
    """Three conv-BN-ReLU stages and a linear classifier: enough structure for filter pruning
    (each stage's convolution feeds only the next one) to remove channels for real."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 32) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1, bias=False), nn.BatchNorm2d(2 * w), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 4 * w, 3, padding=1, bias=False), nn.BatchNorm2d(4 * w), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Linear(4 * w, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def build(width: int = 32, num_classes: int = 4, in_channels: int = 3) -> nn.Module:
    return SmallConvNet(in_channels=in_channels, num_classes=num_classes, width=width)
