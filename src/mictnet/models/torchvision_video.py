"""torchvision's video ResNets (R3D, MC3, R(2+1)D; Tran et al., CVPR 2018) as registered peers.

The modules and parameter names are torchvision's own (``stem.*``, ``layerN.*``, ``fc``), so its
state dicts load unchanged; only the head is ours (dropout, per-step classifier averaged over
time: the same logits as torchvision's pool-then-classify, up to float rounding).
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models.video import resnet as tv

from .skeleton import VideoClassifier
from .specs import VideoResNetConfig

_CONVS: dict[str, tuple[list[type[nn.Module]], type[nn.Module]]] = {
    "3d": ([tv.Conv3DSimple] * 4, tv.BasicStem),
    "mixed": ([tv.Conv3DSimple] + [tv.Conv3DNoTemporal] * 3, tv.BasicStem),
    "2plus1d": ([tv.Conv2Plus1D] * 4, tv.R2Plus1dStem),
}
_BLOCKS = {"basic": tv.BasicBlock, "bottleneck": tv.Bottleneck}


class TorchvisionVideoResNet(VideoClassifier, tv.VideoResNet):
    """torchvision's ``VideoResNet``: input ``N×3×D×H×W``, output logits ``N×num_classes``."""

    def __init__(self, config: VideoResNetConfig) -> None:
        convs, stem = _CONVS[config.convs]
        super().__init__(_BLOCKS[config.block], convs, list(config.layers), stem,
                         config.num_classes)
        self.config = config
        self.dropout = nn.Dropout1d(config.dropout)
        if config.in_channels != 3:  # torchvision's stems take RGB: their first conv, rebuilt
            first = self.stem[0]
            self.stem[0] = nn.Conv3d(config.in_channels, first.out_channels, first.kernel_size,
                                     first.stride, first.padding, bias=False)
            nn.init.kaiming_normal_(self.stem[0].weight, mode="fan_out", nonlinearity="relu")

    def features(self, x: Tensor) -> Tensor:
        """Feature maps ``N×C×T×h×w`` before the head."""
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
