"""torchvision's ImageNet architectures (the second seed's ResNet-18, ResNet-50, MobileNetV2)
through the `torchvision` extra. Imported only when one is built: the core never needs
torchvision, whose PyPI wheel does not import beside the CPU torch wheel on every machine."""

from __future__ import annotations

from torch import nn

from edgetune.errors import MissingExtraError


def _torchvision_builder(arch: str):
    def build(num_classes: int = 1000, in_channels: int = 3) -> nn.Module:
        try:
            import torchvision
        except Exception:  # noqa: BLE001 - ImportError, or a torchvision built for another torch failing to load
            raise MissingExtraError("torchvision", "torchvision") from None
        model = getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)
        if in_channels != 3:
            stem = model.conv1 if hasattr(model, "conv1") else model.features[0][0]
            new = nn.Conv2d(in_channels, stem.out_channels, stem.kernel_size, stem.stride, stem.padding, bias=False)
            if hasattr(model, "conv1"):
                model.conv1 = new
            else:
                model.features[0][0] = new
        return model

    return build


# The builders edgetune.catalog.ARCHITECTURES names (tv-resnet18, tv-resnet50, tv-mobilenetv2).
tv_resnet18, tv_resnet50, tv_mobilenetv2 = (_torchvision_builder(a) for a in ("resnet18", "resnet50", "mobilenet_v2"))
