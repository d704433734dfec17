"""3D-ResNet baseline (Hara et al., CVPR 2018): every 2D filter of a ResNet made 3D.

7×7×7 entrance convolution with stride (1, 2, 2), 3×3×3 max-pool with stride 2, 3×3×3 residual
blocks (stride 2 in time and space from stage 2 on), 1×1×1 projection shortcuts, symmetric
padding, global average pool, dropout and a linear classifier.
"""

from __future__ import annotations

from torch import Tensor, nn

from .blocks import BasicBlock3d, Bottleneck3d, conv1x1x1
from .config import ResNetConfig
from .init import init_weights

_BLOCKS: dict[str, type[BasicBlock3d] | type[Bottleneck3d]] = {
    "basic": BasicBlock3d,
    "bottleneck": Bottleneck3d,
}


class ResNet3d(nn.Module):
    """3D-ResNet: input ``N×3×D×H×W``, output logits ``N×num_classes``."""

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__()
        self.config = config
        block = _BLOCKS[config.block]
        self.conv1 = nn.Conv3d(3, 64, 7, stride=(1, 2, 2), padding=3, bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(3, stride=2, padding=1)
        inplanes = 64
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), config.layers, strict=True)):
            stride = 1 if i == 0 else 2
            outplanes = planes * block.expansion
            downsample = None
            if stride != 1 or inplanes != outplanes:
                downsample = nn.Sequential(
                    conv1x1x1(inplanes, outplanes, stride), nn.BatchNorm3d(outplanes)
                )
            layers = [block(inplanes, planes, stride, downsample)]
            layers += [block(outplanes, planes) for _ in range(1, blocks)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*layers))
            inplanes = outplanes
        self.dropout = nn.Dropout(config.dropout)
        self.fc = nn.Linear(inplanes, config.num_classes)
        init_weights(self)

    def features(self, x: Tensor) -> Tensor:
        """Feature maps ``N×C×T×h×w`` before the head."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x).mean(dim=(2, 3, 4))
        return self.fc(self.dropout(x))
