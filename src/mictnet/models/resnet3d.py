"""3D-ResNet baseline (Hara et al., CVPR 2018): every 2D filter of a ResNet made 3D.

7×7×7 entrance convolution with stride (1, 2, 2), 3×3×3 max-pool with stride 2, 3×3×3 residual
blocks (stride 2 in time and space from stage 2 on), 1×1×1 projection shortcuts, symmetric
padding, global average pool, dropout and a linear classifier.
"""

from __future__ import annotations

from torch import Tensor, nn

from .blocks import BasicBlock3d, Bottleneck3d
from .skeleton import PlainResNet, conv_bn_pool
from .specs import ResNetConfig


class ResNet3d(PlainResNet):
    """3D-ResNet: input ``N×3×D×H×W``, output logits ``N×num_classes``."""

    dims = 3
    blocks = {"basic": BasicBlock3d, "bottleneck": Bottleneck3d}

    def __init__(self, config: ResNetConfig) -> None:
        # Whole channels: the same as dropout on the features averaged over time.
        super().__init__(config, nn.Dropout1d(config.dropout))

    def features(self, x: Tensor) -> Tensor:
        """Feature maps ``N×C×T×h×w`` before the head."""
        x = self.relu(conv_bn_pool(self.conv1, self.bn1, self.maxpool, x))  # ReLU, pool commute
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))
