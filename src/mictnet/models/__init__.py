"""Models: MiCT-ResNets, the paper's MiCT-Net (BN-Inception), 3D-ResNet and 2D-ResNet baselines,
torchvision's video ResNets as peers, ImageNet and Kinetics-400 weight transfer. Every variant is
one row of ``registry.VARIANTS``."""

from .fusion import fuse_conv_bn
from .lookahead_conv import CausalConv3d, LookaheadConv3d
from .memory_format import to_channels_last
from .mict import MiCTResNet
from .mict_net import MiCTNet
from .registry import (
    VARIANTS,
    Variant,
    build_model,
    get_variant,
    list_models,
    register,
    register_model,
)
from .resnet2d import ResNet2d
from .resnet3d import ResNet3d
from .skeleton import VideoClassifier
from .specs import MiCTConfig, MiCTNetConfig, ModelSpec, ResNetConfig, VideoResNetConfig
from .torchvision_video import TorchvisionVideoResNet
from .weights import TransferReport, load_pretrained, transfer_weights

__all__ = [
    "VARIANTS",
    "CausalConv3d",
    "LookaheadConv3d",
    "MiCTConfig",
    "MiCTNet",
    "MiCTNetConfig",
    "MiCTResNet",
    "ModelSpec",
    "ResNet2d",
    "ResNetConfig",
    "ResNet3d",
    "TorchvisionVideoResNet",
    "TransferReport",
    "Variant",
    "VideoClassifier",
    "VideoResNetConfig",
    "build_model",
    "fuse_conv_bn",
    "get_variant",
    "list_models",
    "load_pretrained",
    "register",
    "register_model",
    "to_channels_last",
    "transfer_weights",
]
