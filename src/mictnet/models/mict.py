"""MiCT-ResNet (Zhou et al., CVPR 2018): 2D ResNet stages with cross-domain residual 3D convs.

Each of the five MiCT blocks runs a 3D convolution beside a 2D part and sums the two outputs,
so the 3D branch only learns the residual motion the 2D part cannot see. 3D convolutions see the
current frame and the next ``k-1`` (zero padding after the clip's end only), which keeps the 3D
branch aligned with the 2D part that runs on every ``s``-th frame.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .blocks import BasicBlock, Bottleneck, to_4d, to_5d
from .lookahead_conv import LookaheadConv3d
from .memory_format import to_channels_last
from .skeleton import (
    VideoClassifier,
    conv_bn_pool,
    init_weights,
    residual_blocks,
    resnet_stem,
    stages,
)
from .specs import MiCTConfig

_BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
}


def cross_domain_sum(out2d: Tensor, out3d: Tensor) -> Tensor:
    """Element-wise sum of the 2D and 3D outputs; in place when no gradient is recorded."""
    if torch.is_grad_enabled():
        return out2d + out3d
    return out2d.add_(out3d)


class LookaheadConv3dBranch(nn.Module):
    """Look-ahead 3D convolution + BN (+ max-pool) + ReLU.

    The optional pool runs before the ReLU (both are monotone, so the result is the same and the
    ReLU touches 8× fewer elements), and in eval mode before the BN too (:func:`conv_bn_pool`).
    """

    def __init__(
        self,
        inplanes: int,
        planes: int,
        kernel: tuple[int, int, int],
        stride: tuple[int, int, int],
        pool: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.conv = LookaheadConv3d(inplanes, planes, kernel, stride)
        self.bn = nn.BatchNorm3d(planes)
        self.pool = pool if pool is not None else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(conv_bn_pool(self.conv, self.bn, self.pool, x))


class MiCTStage(nn.Module):
    """A ResNet stage whose first 2D block has a 3×3×3 3D convolution beside it.

    The 2D blocks are registered as ``0, 1, ...`` so their parameter names match torchvision's
    ``layerN.i.*`` and ImageNet weights load by name.
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        inplanes: int,
        planes: int,
        num_blocks: int,
        spatial_stride: int,
        temporal_stride: int,
    ) -> None:
        super().__init__()
        self.temporal_stride = temporal_stride
        self.mict3d = LookaheadConv3dBranch(inplanes, planes * block.expansion, (3, 3, 3),
                                            (temporal_stride, spatial_stride, spatial_stride))
        blocks = residual_blocks(block, inplanes, planes, num_blocks, spatial_stride, dims=2)
        for i, b in enumerate(blocks):
            self.add_module(str(i), b)
        self.num_blocks = num_blocks

    def forward(self, x: Tensor) -> Tensor:
        frames, depth = to_4d(x, self.temporal_stride)
        out3d, _ = to_4d(self.mict3d(x))
        out = cross_domain_sum(getattr(self, "0")(frames), out3d)
        for i in range(1, self.num_blocks):
            out = getattr(self, str(i))(out)
        return to_5d(out, depth)


class MiCTResNet(VideoClassifier):
    """MiCT-ResNet: input ``N×C×D×H×W`` (``C``: ``in_channels``), output logits ``N×num_classes``,
    for any ``D``."""

    def __init__(self, config: MiCTConfig) -> None:
        super().__init__()
        self.config = config
        block = _BLOCKS[config.block]
        # Entrance MiCT block; the 2D part keeps torchvision's names (conv1, bn1).
        self.conv1, self.bn1, self.relu, self.maxpool = resnet_stem(2, config.in_channels)
        self.mict3d = LookaheadConv3dBranch(  # the 3D max-pool is fast on channels-last input
            config.in_channels, 64, (config.first_kernel_depth, 7, 7), (1, 2, 2),
            nn.MaxPool3d(3, 2, padding=1)
        )
        plan = zip(stages(config.layers, block.expansion), config.stage_temporal_strides,
                   strict=True)
        for (name, inplanes, planes, blocks, stride), t_stride in plan:
            self.add_module(name, MiCTStage(block, inplanes, planes, blocks, stride, t_stride))
        self.dropout = nn.Dropout1d(config.dropout)  # whole channels, as a Dropout3d on the maps
        self.fc = nn.Linear(512 * block.expansion, config.num_classes)
        init_weights(self)
        to_channels_last(self)

    def stem(self, x: Tensor) -> Tensor:
        """Entrance: 7×7 2D conv + max-pool on every 2nd frame beside a k×7×7 3D conv + 3D
        max-pool, summed."""
        frames, depth = to_4d(x, 2)
        out2d = self.relu(conv_bn_pool(self.conv1, self.bn1, self.maxpool, frames))
        out3d, _ = to_4d(self.mict3d(x))
        return to_5d(cross_domain_sum(out2d, out3d), depth)

    def features(self, x: Tensor) -> Tensor:
        """Feature maps ``N×C×⌈D/s⌉×h×w`` before the head.

        The clip is laid out channels-last (``N×D×H×W×C`` in memory), where every 5D<->4D
        conversion is a view and oneDNN/cuDNN run both 2D and 3D convolutions without reorders.
        """
        if not torch.onnx.is_in_onnx_export():  # layouts do not exist in ONNX
            x = x.contiguous(memory_format=torch.channels_last_3d)
        x = self.stem(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))
