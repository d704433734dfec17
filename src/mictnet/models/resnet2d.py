"""2D ResNet on every frame, logits averaged over time: the no-motion baseline."""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models.resnet import ResNet

from .blocks import BasicBlock, Bottleneck, to_4d
from .config import ResNetConfig
from .init import init_weights


class ResNet2d(ResNet):
    """torchvision's ResNet applied frame by frame: input ``N×3×D×H×W``, logits ``N×K``."""

    def __init__(self, config: ResNetConfig) -> None:
        block = BasicBlock if config.block == "basic" else Bottleneck
        super().__init__(block, list(config.layers), num_classes=config.num_classes)
        self.config = config
        self.dropout = nn.Dropout(config.dropout)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        frames, depth = to_4d(x)
        f = self.maxpool(self.relu(self.bn1(self.conv1(frames))))
        f = self.layer4(self.layer3(self.layer2(self.layer1(f))))
        f = f.mean(dim=(2, 3)).view(n, depth, -1)
        return self.fc(self.dropout(f)).mean(dim=1)
