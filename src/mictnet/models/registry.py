"""The model registry: one builder per variant, ``build_model`` and ``list_models``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

from torch import nn

from .config import BlockName, MiCTConfig, ModelSpec, ResNetConfig
from .mict import MiCTResNet
from .resnet2d import ResNet2d
from .resnet3d import ResNet3d
from .weights import load_pretrained

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
Pretrained = str | Path | None


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a builder under its function name."""
    _REGISTRY[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    """Names of every registered model, in registration order."""
    return list(_REGISTRY)


def build_model(name: str, num_classes: int = 101, **options) -> nn.Module:
    """Build a registered model; ``options`` are the builder's keyword arguments.

    The returned module carries ``spec`` (a :class:`ModelSpec`) to rebuild it from a checkpoint.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(_REGISTRY)}")
    builder = _REGISTRY[name]
    accepted = set(inspect.signature(builder).parameters) - {"num_classes"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise TypeError(f"{name} has no option {unknown}; it takes {sorted(accepted)}")
    model = builder(num_classes=num_classes, **options)
    kept = {k: v for k, v in options.items() if k != "pretrained"}
    model.spec = ModelSpec(name, num_classes, kept)
    return model


def _mict(
    arch: str, block: BlockName, layers: tuple[int, int, int, int], num_classes: int,
    temporal_stride: int, first_kernel_depth: int, dropout: float, pretrained: Pretrained,
) -> MiCTResNet:
    config = MiCTConfig(block, layers, num_classes, temporal_stride, first_kernel_depth, dropout)
    return _maybe_pretrained(MiCTResNet(config), pretrained, arch)


def _baseline(
    model_class: type[ResNet3d] | type[ResNet2d], arch: str, block: BlockName,
    layers: tuple[int, int, int, int], num_classes: int, dropout: float, pretrained: Pretrained,
) -> ResNet3d | ResNet2d:
    model = model_class(ResNetConfig(block, layers, num_classes, dropout))
    return _maybe_pretrained(model, pretrained, arch)


def _maybe_pretrained(model: nn.Module, pretrained: Pretrained, arch: str) -> nn.Module:
    if pretrained:
        load_pretrained(model, pretrained, arch)
    return model


@register_model
def mict_resnet18(num_classes: int = 101, temporal_stride: int = 16, first_kernel_depth: int = 7,
                  dropout: float = 0.5, pretrained: Pretrained = None) -> MiCTResNet:
    """MiCT-ResNet-18 (BasicBlock, 2-2-2-2)."""
    return _mict("resnet18", "basic", (2, 2, 2, 2), num_classes, temporal_stride,
                 first_kernel_depth, dropout, pretrained)


@register_model
def mict_resnet34(num_classes: int = 101, temporal_stride: int = 16, first_kernel_depth: int = 7,
                  dropout: float = 0.5, pretrained: Pretrained = None) -> MiCTResNet:
    """MiCT-ResNet-34 (BasicBlock, 3-4-6-3)."""
    return _mict("resnet34", "basic", (3, 4, 6, 3), num_classes, temporal_stride,
                 first_kernel_depth, dropout, pretrained)


@register_model
def mict_resnet50(num_classes: int = 101, temporal_stride: int = 16, first_kernel_depth: int = 7,
                  dropout: float = 0.5, pretrained: Pretrained = None) -> MiCTResNet:
    """MiCT-ResNet-50 (Bottleneck, 3-4-6-3)."""
    return _mict("resnet50", "bottleneck", (3, 4, 6, 3), num_classes, temporal_stride,
                 first_kernel_depth, dropout, pretrained)


@register_model
def mict_resnet101(num_classes: int = 101, temporal_stride: int = 16, first_kernel_depth: int = 7,
                   dropout: float = 0.5, pretrained: Pretrained = None) -> MiCTResNet:
    """MiCT-ResNet-101 (Bottleneck, 3-4-23-3)."""
    return _mict("resnet101", "bottleneck", (3, 4, 23, 3), num_classes, temporal_stride,
                 first_kernel_depth, dropout, pretrained)


@register_model
def resnet3d_18(num_classes: int = 101, dropout: float = 0.5,
                pretrained: Pretrained = None) -> ResNet3d:
    """3D-ResNet-18 baseline (Hara et al.), ImageNet weights inflated."""
    return _baseline(ResNet3d, "resnet18", "basic", (2, 2, 2, 2), num_classes, dropout, pretrained)


@register_model
def resnet3d_34(num_classes: int = 101, dropout: float = 0.5,
                pretrained: Pretrained = None) -> ResNet3d:
    """3D-ResNet-34 baseline."""
    return _baseline(ResNet3d, "resnet34", "basic", (3, 4, 6, 3), num_classes, dropout, pretrained)


@register_model
def resnet3d_50(num_classes: int = 101, dropout: float = 0.5,
                pretrained: Pretrained = None) -> ResNet3d:
    """3D-ResNet-50 baseline."""
    return _baseline(ResNet3d, "resnet50", "bottleneck", (3, 4, 6, 3), num_classes, dropout,
                     pretrained)


@register_model
def resnet2d_18(num_classes: int = 101, dropout: float = 0.5,
                pretrained: Pretrained = None) -> ResNet2d:
    """2D ResNet-18 per frame, logits averaged over time."""
    return _baseline(ResNet2d, "resnet18", "basic", (2, 2, 2, 2), num_classes, dropout, pretrained)


@register_model
def resnet2d_50(num_classes: int = 101, dropout: float = 0.5,
                pretrained: Pretrained = None) -> ResNet2d:
    """2D ResNet-50 per frame, logits averaged over time."""
    return _baseline(ResNet2d, "resnet50", "bottleneck", (3, 4, 6, 3), num_classes, dropout,
                     pretrained)
