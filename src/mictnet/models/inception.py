"""BN-Inception's 2D layers (Ioffe & Szegedy, ICML 2015, Fig. 5) under the parameter names of its
public Caffe-converted checkpoint (``conv1_7x7_s2``, ``conv1_7x7_s2_bn``, ``inception_3a_1x1``,
..., ``last_linear``: Cadene's ``pretrainedmodels`` ``bninception`` and TSN's ``BNInception``),
so that file loads key for key.

That layout is flat, so the layers are registered on the network that owns them:
:func:`add_inception` adds the convolutions one :class:`InceptionSpec` row names and
:func:`inception` runs them. Convolutions have biases, as in the Caffe original.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class InceptionSpec:
    """One inception module: its input channels and each branch's output channels.

    ``c1x1 == 0``: no 1×1 branch; ``pool_proj == 0``: the pooled input passes through (the two
    modules with stride 2, which also stride their 3×3 branches).
    """

    name: str
    inplanes: int
    c1x1: int
    c3x3_reduce: int
    c3x3: int
    double_reduce: int
    double: int
    pool: Literal["avg", "max"]
    pool_proj: int
    stride: int = 1

    @property
    def outplanes(self) -> int:
        return self.c1x1 + self.c3x3 + self.double + (self.pool_proj or self.inplanes)


#: BN-Inception's ten inception modules (Ioffe & Szegedy 2015, Fig. 5).
INCEPTIONS: tuple[InceptionSpec, ...] = (
    InceptionSpec("3a", 192, 64, 64, 64, 64, 96, "avg", 32),
    InceptionSpec("3b", 256, 64, 64, 96, 64, 96, "avg", 64),
    InceptionSpec("3c", 320, 0, 128, 160, 64, 96, "max", 0, stride=2),
    InceptionSpec("4a", 576, 224, 64, 96, 96, 128, "avg", 128),
    InceptionSpec("4b", 576, 192, 96, 128, 96, 128, "avg", 128),
    InceptionSpec("4c", 576, 160, 128, 160, 128, 160, "avg", 128),
    InceptionSpec("4d", 608, 96, 128, 192, 160, 192, "avg", 128),
    InceptionSpec("4e", 608, 0, 128, 192, 192, 256, "max", 0, stride=2),
    InceptionSpec("5a", 1056, 352, 192, 320, 160, 224, "avg", 128),
    InceptionSpec("5b", 1024, 352, 192, 320, 192, 224, "max", 128),
)
BY_NAME = {spec.name: spec for spec in INCEPTIONS}


def add_conv_bn(owner: nn.Module, name: str, inplanes: int, planes: int, kernel: int,
                stride: int = 1, padding: int = 0) -> None:
    """Register the convolution ``name`` and its batch norm ``name_bn`` on ``owner``."""
    owner.add_module(name, nn.Conv2d(inplanes, planes, kernel, stride, padding))
    owner.add_module(f"{name}_bn", nn.BatchNorm2d(planes))


def conv_bn_relu(owner: nn.Module, name: str, x: Tensor) -> Tensor:
    """``relu(name_bn(name(x)))`` with the layers of ``owner``."""
    return F.relu(getattr(owner, f"{name}_bn")(getattr(owner, name)(x)), inplace=True)


def max_pool_s2(x: Tensor) -> Tensor:
    """BN-Inception's 3×3 max-pool with stride 2 (Caffe's ceil mode, no padding)."""
    return F.max_pool2d(x, 3, 2, ceil_mode=True)


def add_inception(owner: nn.Module, spec: InceptionSpec) -> None:
    """Register the convolutions of inception module ``spec`` on ``owner``."""
    p = f"inception_{spec.name}_"
    if spec.c1x1:
        add_conv_bn(owner, p + "1x1", spec.inplanes, spec.c1x1, 1)
    add_conv_bn(owner, p + "3x3_reduce", spec.inplanes, spec.c3x3_reduce, 1)
    add_conv_bn(owner, p + "3x3", spec.c3x3_reduce, spec.c3x3, 3, spec.stride, 1)
    add_conv_bn(owner, p + "double_3x3_reduce", spec.inplanes, spec.double_reduce, 1)
    add_conv_bn(owner, p + "double_3x3_1", spec.double_reduce, spec.double, 3, 1, 1)
    add_conv_bn(owner, p + "double_3x3_2", spec.double, spec.double, 3, spec.stride, 1)
    if spec.pool_proj:
        add_conv_bn(owner, p + "pool_proj", spec.inplanes, spec.pool_proj, 1)


def inception(owner: nn.Module, spec: InceptionSpec, x: Tensor) -> Tensor:
    """Inception module ``spec`` on ``x`` (``N×C×H×W``): its branches concatenated."""
    p = f"inception_{spec.name}_"
    branches = [conv_bn_relu(owner, p + "1x1", x)] if spec.c1x1 else []
    branches.append(conv_bn_relu(owner, p + "3x3", conv_bn_relu(owner, p + "3x3_reduce", x)))
    double = conv_bn_relu(owner, p + "double_3x3_reduce", x)
    double = conv_bn_relu(owner, p + "double_3x3_1", double)
    branches.append(conv_bn_relu(owner, p + "double_3x3_2", double))
    if spec.stride == 2:
        pooled = max_pool_s2(x)
    elif spec.pool == "max":
        pooled = F.max_pool2d(x, 3, 1, 1)
    else:
        pooled = F.avg_pool2d(x, 3, 1, 1)  # zero padding counted, as in Caffe
    branches.append(conv_bn_relu(owner, p + "pool_proj", pooled) if spec.pool_proj else pooled)
    return torch.cat(branches, dim=1)
