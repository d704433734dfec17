"""MiCT-Net, the paper's own network (Zhou, Sun, Zha, Zeng, "MiCT: Mixed 3D/2D Convolutional Tube
for Human Action Recognition", CVPR 2018): a BN-Inception backbone with four MiCTs.

A MiCT (mixed 3D/2D convolutional tube) runs a 3D convolution beside the first 2D unit of a
tube and sums the two (the cross-domain residual), then deepens the sum with more 2D units. The
2D layers are BN-Inception's, under its public checkpoint's names (:mod:`.inception`), so
``pretrained="imagenet"`` loads that file key for key; the 3D branches (``mict3d.*``) start
fresh. Clip ``N×3×16×160×160`` -> features ``N×1024×4×5×5`` -> logits.

Design points. The third column says where each comes from: "paper" where the paper fixes it,
"chosen" where it leaves it open. The paper's full text was not at hand when this table was
written: its "paper" rows rest on the abstract and on issue 11's summary of the paper (marked
"issue"); check them against the paper's MiCT-Net section and architecture figure.

=====================  ===============================================  =======================
point                  here                                             source
=====================  ===============================================  =======================
backbone               BN-Inception (Ioffe & Szegedy 2015, Fig. 5),     paper (issue): an
                       every 2D layer, Caffe-style conv biases          Inception-style
                                                                        (BN-Inception) backbone
number of MiCTs        four                                             paper (issue)
a MiCT                 3D conv + BN (+ pool) + ReLU beside the first    paper (abstract: 2D
                       2D unit, summed (cross-domain residual); the     CNNs on a 3D conv
                       tube's other 2D units after the sum              module; the residual)
where they sit         beside ``conv1``, ``conv2``, ``inception_3a``,   chosen: the start of
                       ``inception_4a``; 3b-3c, 4b-4e and 5a-5b are     each of the first four
                       the tubes' stacked 2D units                      resolutions
3D kernels             3 frames; 3×7×7 beside ``conv1`` (its 7×7),      chosen (3 frames: check
                       3×3×3 after                                      against the paper)
3D padding in time     look-ahead: output t sees frames t..t+2, so it   chosen (as MiCT-ResNet
                       stays aligned with the 2D unit's frame t         here)
3D channels            the 2D unit's outputs: 64, 192, 256, 576         forced by the sum
spatial strides        as the 2D unit: stride 2 + 1×3×3 max-pool (ceil  forced by the sum
                       mode) beside ``conv1``, stride 2 beside
                       ``conv2`` + pool, 1 beside 3a and 4a
temporal strides       1, 1, 2, 2: 16 frames -> 4 steps at the head;    chosen (how much and
                       a tube with stride 2 runs its 2D units on every  where time is reduced)
                       2nd frame and its 3D conv with stride 2
input                  16×160×160 RGB, ImageNet mean/std; any length;   16×160×160: paper
                       height and width multiples of 32                 (issue); 32: BN-Inception
head                   mean over space, dropout 0.5 (whole channels),   chosen (as every model
                       classifier at every step, mean over time         here)
ImageNet start         2D layers from the public BN-Inception file      chosen (the public
                       (BGR 0-255 input folded into ``conv1_7x7_s2``);  file); 3D fresh as in
                       3D branches and classifier fresh                 MiCT-ResNet
=====================  ===============================================  =======================
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .blocks import to_4d, to_5d
from .inception import (
    BY_NAME,
    INCEPTIONS,
    add_conv_bn,
    add_inception,
    conv_bn_relu,
    inception,
    max_pool_s2,
)
from .memory_format import to_channels_last
from .mict import LookaheadConv3dBranch, cross_domain_sum
from .skeleton import VideoClassifier, init_weights
from .specs import MiCTNetConfig

SIZE_MULTIPLE = 32  # BN-Inception's spatial stride: its ceil-mode pools fit its strided convs


@dataclass(frozen=True)
class Tube:
    """One MiCT: a 3D convolution beside the 2D unit ``beside``, summed, then the 2D ``after``.

    ``stride`` is the 3D convolution's (time, height, width); the 2D units see every
    ``stride[0]``-th frame. ``pool``: a 1×3×3 max-pool with stride 2 follows the 3D convolution,
    as one follows the 2D unit.
    """

    beside: str
    after: tuple[str, ...]
    inplanes: int
    planes: int
    kernel: tuple[int, int, int]
    stride: tuple[int, int, int]
    pool: bool = False


#: The four MiCTs (see the module docstring).
TUBES: tuple[Tube, ...] = (
    Tube("conv1", (), 3, 64, (3, 7, 7), (1, 2, 2), pool=True),
    Tube("conv2", (), 64, 192, (3, 3, 3), (1, 2, 2)),
    Tube("3a", ("3b", "3c"), 192, 256, (3, 3, 3), (2, 1, 1)),
    Tube("4a", ("4b", "4c", "4d", "4e", "5a", "5b"), 576, 576, (3, 3, 3), (2, 1, 1)),
)


class MiCTNet(VideoClassifier):
    """MiCT-Net: input ``N×3×D×H×W`` (``H``, ``W`` multiples of 32), logits ``N×num_classes``."""

    def __init__(self, config: MiCTNetConfig) -> None:
        super().__init__()
        self.config = config
        add_conv_bn(self, "conv1_7x7_s2", config.in_channels, 64, 7, 2, 3)
        add_conv_bn(self, "conv2_3x3_reduce", 64, 64, 1)
        add_conv_bn(self, "conv2_3x3", 64, 192, 3, 1, 1)
        for spec in INCEPTIONS:
            add_inception(self, spec)
        self.mict3d = nn.ModuleList(
            LookaheadConv3dBranch(config.in_channels if t.beside == "conv1" else t.inplanes,
                                  t.planes, t.kernel, t.stride,
                                  nn.MaxPool3d((1, 3, 3), (1, 2, 2), ceil_mode=True)
                                  if t.pool else None)
            for t in TUBES
        )
        self.dropout = nn.Dropout1d(config.dropout)  # whole channels, as a Dropout3d on the maps
        self.fc = nn.Linear(INCEPTIONS[-1].outplanes, config.num_classes)
        init_weights(self)
        to_channels_last(self)

    def unit(self, name: str, x: Tensor) -> Tensor:
        """The 2D unit ``name`` on frames ``(N·D)×C×H×W``: ``conv1`` (7×7 conv, pool), ``conv2``
        (1×1 and 3×3 convs, pool) or an inception module."""
        if name == "conv1":
            return max_pool_s2(conv_bn_relu(self, "conv1_7x7_s2", x))
        if name == "conv2":
            x = conv_bn_relu(self, "conv2_3x3", conv_bn_relu(self, "conv2_3x3_reduce", x))
            return max_pool_s2(x)
        return inception(self, BY_NAME[name], x)

    def features(self, x: Tensor) -> Tensor:
        """Feature maps ``N×1024×⌈D/4⌉×H/32×W/32`` before the head (channels-last inside, as
        MiCT-ResNet)."""
        height, width = x.shape[-2:]
        if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
            raise ValueError(f"mict_net needs a height and width that are multiples of "
                             f"{SIZE_MULTIPLE} (BN-Inception's pooling), got {height}x{width}")
        if not torch.onnx.is_in_onnx_export():  # layouts do not exist in ONNX
            x = x.contiguous(memory_format=torch.channels_last_3d)
        for tube, branch in zip(TUBES, self.mict3d, strict=True):
            frames, depth = to_4d(x, tube.stride[0])
            out3d, _ = to_4d(branch(x))
            out = cross_domain_sum(self.unit(tube.beside, frames), out3d)
            for name in tube.after:
                out = self.unit(name, out)
            x = to_5d(out, depth)
        return x
