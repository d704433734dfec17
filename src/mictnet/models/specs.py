"""Typed specifications of the model families (architecture and build options) and ``ModelSpec``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

BlockName = Literal["basic", "bottleneck"]
ConvsName = Literal["3d", "mixed", "2plus1d"]
Layers = tuple[int, int, int, int]


@dataclass(frozen=True)
class MiCTConfig:
    """MiCT-ResNet: a 2D ResNet with five cross-domain residual 3D convolutions."""

    block: BlockName = "basic"
    layers: Layers = (2, 2, 2, 2)
    num_classes: int = 101
    temporal_stride: Literal[4, 16] = 16
    first_kernel_depth: Literal[3, 5, 7] = 7
    dropout: float = 0.5
    in_channels: int = 3

    def __post_init__(self) -> None:
        if self.temporal_stride not in (4, 16):
            raise ValueError(f"temporal_stride must be 4 or 16, got {self.temporal_stride}")
        if self.first_kernel_depth not in (3, 5, 7):
            raise ValueError(f"first_kernel_depth must be 3, 5 or 7, got {self.first_kernel_depth}")
        _check_common(self.num_classes, self.dropout, self.in_channels)

    @property
    def stage_temporal_strides(self) -> tuple[int, int, int, int]:
        """Temporal stride of the 2D path of stages 1-4 (the entrance adds a factor 2)."""
        return (1, 2, 2, 2) if self.temporal_stride == 16 else (1, 1, 2, 1)


@dataclass(frozen=True)
class ResNetConfig:
    """The baselines: a 3D-ResNet (Hara et al.) or a 2D ResNet applied to every frame."""

    block: BlockName = "basic"
    layers: Layers = (2, 2, 2, 2)
    num_classes: int = 101
    dropout: float = 0.5
    in_channels: int = 3

    def __post_init__(self) -> None:
        _check_common(self.num_classes, self.dropout, self.in_channels)


@dataclass(frozen=True)
class VideoResNetConfig:
    """torchvision's video ResNets (Tran et al., CVPR 2018); ``convs``: 3×3×3 everywhere (R3D),
    3D in stage 1 and 1×3×3 after (MC3), or 1×3×3 then 3×1×1 (R(2+1)D)."""

    block: BlockName = "basic"
    layers: Layers = (2, 2, 2, 2)
    convs: ConvsName = "3d"
    num_classes: int = 101
    dropout: float = 0.5
    in_channels: int = 3

    def __post_init__(self) -> None:
        _check_common(self.num_classes, self.dropout, self.in_channels)


@dataclass(frozen=True)
class MiCTNetConfig:
    """MiCT-Net, the paper's network: BN-Inception with four MiCTs (see :mod:`.mict_net`)."""

    num_classes: int = 101
    dropout: float = 0.5
    in_channels: int = 3

    def __post_init__(self) -> None:
        _check_common(self.num_classes, self.dropout, self.in_channels)


#: What ``build_model`` builds from: one of the family configurations above.
ArchConfig = MiCTConfig | ResNetConfig | VideoResNetConfig | MiCTNetConfig


@dataclass(frozen=True)
class ModelSpec:
    """What is needed to rebuild a model: its registered name, class count and options."""

    name: str
    num_classes: int
    options: dict = field(default_factory=dict)


def _check_common(num_classes: int, dropout: float, in_channels: int) -> None:
    if in_channels < 1:
        raise ValueError(f"in_channels must be positive (3: RGB, 2: optical flow), got "
                         f"{in_channels}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
