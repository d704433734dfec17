"""Shared building blocks: 5D<->4D reshapes and 3D residual blocks.

The 2D residual blocks are torchvision's own (``BasicBlock``, ``Bottleneck``) so that ImageNet
state dicts map onto them key for key. The 3D blocks below use the same attribute names
(``conv1``, ``bn1``, ..., ``downsample``), which is what makes weight inflation a 1:1 key map.
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck

__all__ = [
    "BasicBlock",
    "BasicBlock3d",
    "Bottleneck",
    "Bottleneck3d",
    "to_4d",
    "to_5d",
]


def to_4d(x: Tensor, temporal_stride: int = 1) -> tuple[Tensor, int]:
    """``N×C×D×H×W`` -> ``(N·D')×C×H×W`` keeping every ``temporal_stride``-th frame.

    A view whenever the memory layout allows it (always for ``channels_last_3d`` input).
    """
    if temporal_stride > 1:
        x = x[:, :, ::temporal_stride]
    n, c, d, h, w = x.shape
    return x.transpose(1, 2).reshape(n * d, c, h, w), d


def to_5d(x: Tensor, depth: int) -> Tensor:
    """``(N·D)×C×H×W`` -> ``N×C×D×H×W`` (a view)."""
    nd, c, h, w = x.shape
    return x.view(nd // depth, depth, c, h, w).transpose(1, 2)


def conv3x3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv3d:
    """3×3×3 convolution, padded symmetrically (Hara et al.)."""
    return nn.Conv3d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)


def conv1x1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv3d:
    return nn.Conv3d(in_planes, out_planes, 1, stride=stride, bias=False)


class BasicBlock3d(nn.Module):
    """3D counterpart of torchvision's ``BasicBlock`` (same parameter names)."""

    expansion = 1

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm3d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3x3(planes, planes)
        self.bn2 = nn.BatchNorm3d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck3d(nn.Module):
    """3D counterpart of torchvision's ``Bottleneck`` (stride on the 3×3×3 convolution)."""

    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = conv1x1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = conv3x3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = conv1x1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm3d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)
