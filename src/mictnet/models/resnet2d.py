"""2D ResNet on every frame, logits averaged over time: the no-motion baseline."""

from __future__ import annotations

from torch import Tensor, nn

from .blocks import BasicBlock, Bottleneck, to_4d, to_5d
from .skeleton import PlainResNet, conv_bn_pool
from .specs import ResNetConfig


class ResNet2d(PlainResNet):
    """torchvision's ResNet applied frame by frame: input ``N×3×D×H×W``, logits ``N×K``."""

    dims = 2
    blocks = {"basic": BasicBlock, "bottleneck": Bottleneck}

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__(config, nn.Dropout(config.dropout))  # every frame's features on its own

    def features(self, x: Tensor) -> Tensor:
        """Feature maps ``N×C×D×h×w`` before the head, every frame on its own."""
        frames, depth = to_4d(x)
        f = self.relu(conv_bn_pool(self.conv1, self.bn1, self.maxpool, frames))
        return to_5d(self.layer4(self.layer3(self.layer2(self.layer1(f)))), depth)
