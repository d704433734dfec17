"""The skeleton every family shares: a ResNet entrance, four stages of residual blocks with one
kind of projection shortcut, and one classifier head.

Parameter names follow torchvision's ResNet (``conv1``, ``bn1``, ``layerN.i.*``,
``layerN.0.downsample.{0,1}``, ``fc``), so ImageNet weights map onto every family key for key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from .lookahead_conv import exporting
from .specs import ResNetConfig

Dims = Literal[2, 3]
STAGE_PLANES = (64, 128, 256, 512)
#: In inference on the CPU the entrance runs on chunks of clips (frames for 2D convolutions) whose
#: convolution output fits in this many bytes, a last-level cache's worth: the output, 4-8x the
#: pooled result, is then pooled while still in cache (benchmarks/bench_entrance.py).
CACHE_BYTES = 32 * 2**20


class VideoClassifier(nn.Module):
    """A clip classifier: ``forward(x) = head(features(x))`` for clips ``N×C×T×H×W`` (``C``:
    its config's ``in_channels``, 3 for RGB, 2 for optical flow).

    Subclasses define ``features`` and the ``dropout`` and ``fc`` modules that the head uses.
    """

    dropout: nn.Module
    fc: nn.Linear

    def features(self, x: Tensor) -> Tensor:
        """Feature maps ``N×C×T'×h×w`` before the head; their mean over ``(2, 3, 4)`` is the clip
        embedding the classifier sees."""
        raise NotImplementedError

    def head(self, maps: Tensor) -> Tensor:
        """Mean over space, dropout, the linear classifier at every time step, mean over time.

        The classifier is affine, so the mean of its per-step logits is the classifier applied to
        the time-averaged features (up to float rounding): any clip length works because of the
        average, not because of the per-step classifier. The per-step form is what is computed;
        it is kept because it is the paper's formulation and keeps MiCT's logits and exported
        graphs bit for bit, at ``(T'-1)×C×K`` extra multiply-adds per clip.
        """
        x = self.dropout(maps.mean(dim=(3, 4)))  # N×C×T'
        return self.fc(x.transpose(1, 2)).mean(dim=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class PlainResNet(VideoClassifier):
    """A ResNet of one kind of block: entrance, ``layer1``-``layer4``, dropout, classifier.

    Subclasses set ``dims`` and ``blocks`` (block name -> class) and define ``features``.
    """

    dims: Dims
    blocks: dict[str, type[nn.Module]]

    def __init__(self, config: ResNetConfig, dropout: nn.Module) -> None:
        super().__init__()
        self.config = config
        block = self.blocks[config.block]
        self.conv1, self.bn1, self.relu, self.maxpool = resnet_stem(self.dims, config.in_channels)
        for name, inplanes, planes, count, stride in stages(config.layers, block.expansion):
            layers = residual_blocks(block, inplanes, planes, count, stride, self.dims)
            self.add_module(name, nn.Sequential(*layers))
        self.dropout = dropout
        self.fc = nn.Linear(512 * block.expansion, config.num_classes)
        init_weights(self)


def resnet_stem(dims: Dims, in_channels: int = 3
                ) -> tuple[nn.Module, nn.Module, nn.Module, nn.Module]:
    """``conv1, bn1, relu, maxpool``: torchvision's 7×7 entrance, or its 3D form (Hara et al.:
    7×7×7 with stride (1, 2, 2), 3×3×3 max-pool with stride 2), on ``in_channels`` (3: RGB, 2:
    optical flow)."""
    c = in_channels
    if dims == 2:
        conv, bn, pool = nn.Conv2d(c, 64, 7, 2, 3, bias=False), nn.BatchNorm2d, nn.MaxPool2d
    else:
        conv, bn, pool = nn.Conv3d(c, 64, 7, (1, 2, 2), 3, bias=False), nn.BatchNorm3d, nn.MaxPool3d
    return conv, bn(64), nn.ReLU(inplace=True), pool(3, stride=2, padding=1)


def conv_bn_pool(conv: nn.Conv2d | nn.Conv3d, bn: nn.Module, pool: nn.Module, x: Tensor
                 ) -> Tensor:
    """``pool(bn(conv(x)))`` for a max-``pool``; with the batch norm in eval mode (or folded into
    ``conv``), the pool runs first and the batch norm on 4-8x fewer elements, and in inference on
    the CPU the convolution and pool run on chunks of ``x`` whose output fits in
    :data:`CACHE_BYTES`.

    Exact: an eval-mode batch norm is a per-channel affine map, which commutes with a max-pool
    where its scale is positive; where it is negative the convolution's filters are negated
    (``max(-y) = -min(y)``) and the batch norm gets ``|gamma|`` and ``-mean``.
    """
    if isinstance(bn, _BatchNorm) and bn.training:
        return pool(bn(conv(x)))
    chunk = _items_in_cache(conv, x)
    if chunk is None or chunk >= x.shape[0]:
        return _eval_conv_bn_pool(conv, bn, pool, x)
    return torch.cat([_eval_conv_bn_pool(conv, bn, pool, part) for part in x.split(chunk)])


def _eval_conv_bn_pool(conv: nn.Conv2d | nn.Conv3d, bn: nn.Module, pool: nn.Module, x: Tensor
                       ) -> Tensor:
    if not isinstance(bn, _BatchNorm) or bn.weight is None or conv.bias is not None:
        return pool(bn(conv(x)))  # batch norm folded into the convolution, or not affine
    sign = torch.where(bn.weight < 0, -1.0, 1.0).to(conv.weight.dtype)
    weight = conv.weight * sign.view(-1, *[1] * (conv.weight.dim() - 1))
    return F.batch_norm(pool(conv._conv_forward(x, weight, None)), bn.running_mean * sign,
                        bn.running_var, bn.weight.abs(), bn.bias, False, 0.0, bn.eps)


def _items_in_cache(conv: nn.Conv2d | nn.Conv3d, x: Tensor) -> int | None:
    """How many items of ``x`` to convolve at once in inference on the CPU: as many as keep the
    output within :data:`CACHE_BYTES` (at least one); ``None`` otherwise (all of them)."""
    if exporting() or x.device.type != "cpu" or torch.is_grad_enabled():
        return None
    out_bytes = x[0].numel() // conv.in_channels * conv.out_channels * x.element_size()
    for s in conv.stride:
        out_bytes //= s
    return max(1, CACHE_BYTES // out_bytes)


def stages(layers: tuple[int, ...], expansion: int) -> Iterator[tuple[str, int, int, int, int]]:
    """``(name, inplanes, planes, blocks, stride)`` of stages ``layer1``-``layer4``: 64-512
    planes, spatial stride 2 from ``layer2`` on."""
    inplanes = 64
    for i, (planes, blocks) in enumerate(zip(STAGE_PLANES, layers, strict=True)):
        yield f"layer{i + 1}", inplanes, planes, blocks, 1 if i == 0 else 2
        inplanes = planes * expansion


def downsample(inplanes: int, outplanes: int, stride: int, dims: Dims) -> nn.Sequential | None:
    """The projection shortcut (1×1 or 1×1×1 convolution + batch norm) where the shape changes."""
    if stride == 1 and inplanes == outplanes:
        return None
    conv, bn = (nn.Conv2d, nn.BatchNorm2d) if dims == 2 else (nn.Conv3d, nn.BatchNorm3d)
    return nn.Sequential(conv(inplanes, outplanes, 1, stride=stride, bias=False), bn(outplanes))


def residual_blocks(
    block: type[nn.Module], inplanes: int, planes: int, count: int, stride: int, dims: Dims
) -> list[nn.Module]:
    """A stage's ``count`` blocks; the first one strides and projects its shortcut."""
    outplanes = planes * block.expansion
    first = block(inplanes, planes, stride, downsample(inplanes, outplanes, stride, dims))
    return [first] + [block(outplanes, planes) for _ in range(1, count)]


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal convolutions (fan-out, ReLU), unit/zero batch norms (as torchvision)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
