"""Models: MiCT-ResNets, 3D-ResNet and 2D-ResNet baselines, ImageNet weight transfer."""

from .causal_conv import CausalConv3d
from .config import MiCTConfig, ModelSpec, ResNetConfig
from .fusion import fuse_conv_bn
from .memory_format import to_channels_last
from .mict import MiCTResNet
from .registry import build_model, list_models, register_model
from .resnet2d import ResNet2d
from .resnet3d import ResNet3d
from .weights import TransferReport, load_pretrained, transfer_imagenet_weights

__all__ = [
    "CausalConv3d",
    "MiCTConfig",
    "MiCTResNet",
    "ModelSpec",
    "ResNet2d",
    "ResNetConfig",
    "ResNet3d",
    "TransferReport",
    "build_model",
    "fuse_conv_bn",
    "list_models",
    "load_pretrained",
    "register_model",
    "to_channels_last",
    "transfer_imagenet_weights",
]
