"""The model table: every variant is one row, registered in a loop; ``build_model``,
``list_models`` and ``get_variant`` read it.

A row names its family (which skeleton), its architecture and option defaults (the family's
config: block, stage depths, ...), the pretrained sources it accepts and the weights each one
reads (:mod:`.weights`), and the clip it is made for (the fields of
:class:`mictnet.data.clip_spec.ClipSpec` that differ from the project's recipe, 16×160² crops of
256×192 frames). Adding a variant, its own preprocessing included, is adding a row.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from torch import nn

from .mict import MiCTResNet
from .mict_net import MiCTNet
from .resnet2d import ResNet2d
from .resnet3d import ResNet3d
from .specs import (
    ArchConfig,
    MiCTConfig,
    MiCTNetConfig,
    ModelSpec,
    ResNetConfig,
    VideoResNetConfig,
)
from .torchvision_video import TorchvisionVideoResNet
from .weights import PIPELINE_SPACE, SOURCES, InputSpace, load_pretrained

Pretrained = str | Path | None

#: Family (the tag ``list_models`` filters on) -> the class built from the row's config.
FAMILIES: dict[str, Callable[[Any], nn.Module]] = {
    "mict": MiCTResNet,
    "resnet3d": ResNet3d,
    "resnet2d": ResNet2d,
    "torchvision": TorchvisionVideoResNet,
    "mictnet": MiCTNet,
}
_FIXED = ("block", "layers", "convs", "num_classes")  # config fields that are not build options


@dataclass(frozen=True)
class Variant:
    """One registered model: its family, architecture, option defaults and clip."""

    name: str
    family: str
    config: ArchConfig | None  # block, layers, option defaults; None: built by ``builder``
    #: accepted ``pretrained`` source -> the weights it reads: a torchvision model name
    #: (``"resnet18"``: its ImageNet weights; ``"r3d_18"``: its Kinetics-400 weights) or a
    #: public file named in ``weights.PUBLIC_FILES``; a path is read in the first one's layout
    weights: dict[str, str] = field(default_factory=dict, hash=False)
    #: the clip the model is made for: ClipSpec fields (frames, stride, resize, crop, mean,
    #: std) where they differ from the recipe's; the data pipeline reads them (models never
    #: import data)
    clip: dict[str, Any] = field(default_factory=dict, hash=False)
    builder: Callable[..., nn.Module] | None = field(default=None, repr=False)
    #: where Grad-CAM looks (``mict explain --layer auto``): module names, the last
    #: spatio-temporal features first, then earlier, finer ones for inputs so small that the
    #: last is a handful of cells; ``"features"`` is the output of the model's ``features``.
    #: Empty (custom models): the last convolution.
    cam_layers: tuple[str, ...] = ("layer4", "layer3", "layer2")

    @property
    def defaults(self) -> dict[str, Any]:
        """Build options (``pretrained`` included) and their defaults."""
        if self.builder is not None:
            params = inspect.signature(self.builder).parameters.values()
            return {p.name: p.default for p in params if p.name != "num_classes"}
        options = {f.name: getattr(self.config, f.name) for f in fields(self.config)}
        return {k: v for k, v in options.items() if k not in _FIXED} | {"pretrained": None}


#: torchvision's video transforms of its Kinetics-400 weights: 16 frames of 128×171, crop 112
#: (their Kinetics mean and std are folded into the first convolution, see .weights)
_KINETICS = {"frames": 16, "resize": (171, 128), "crop": 112}

VARIANTS: tuple[Variant, ...] = (
    Variant("mict_resnet18", "mict", MiCTConfig("basic", (2, 2, 2, 2)), {"imagenet": "resnet18"}),
    Variant("mict_resnet34", "mict", MiCTConfig("basic", (3, 4, 6, 3)), {"imagenet": "resnet34"}),
    Variant("mict_resnet50", "mict", MiCTConfig("bottleneck", (3, 4, 6, 3)),
            {"imagenet": "resnet50"}),
    Variant("mict_resnet101", "mict", MiCTConfig("bottleneck", (3, 4, 23, 3)),
            {"imagenet": "resnet101"}),
    Variant("resnet3d_18", "resnet3d", ResNetConfig("basic", (2, 2, 2, 2)),
            {"imagenet": "resnet18"}),
    Variant("resnet3d_34", "resnet3d", ResNetConfig("basic", (3, 4, 6, 3)),
            {"imagenet": "resnet34"}),
    Variant("resnet3d_50", "resnet3d", ResNetConfig("bottleneck", (3, 4, 6, 3)),
            {"imagenet": "resnet50"}),
    Variant("resnet2d_18", "resnet2d", ResNetConfig("basic", (2, 2, 2, 2)),
            {"imagenet": "resnet18"}),
    Variant("resnet2d_50", "resnet2d", ResNetConfig("bottleneck", (3, 4, 6, 3)),
            {"imagenet": "resnet50"}),
    Variant("r3d_18", "torchvision", VideoResNetConfig("basic", (2, 2, 2, 2), "3d"),
            {"kinetics400": "r3d_18"}, _KINETICS),
    Variant("mc3_18", "torchvision", VideoResNetConfig("basic", (2, 2, 2, 2), "mixed"),
            {"kinetics400": "mc3_18"}, _KINETICS),
    Variant("r2plus1d_18", "torchvision", VideoResNetConfig("basic", (2, 2, 2, 2), "2plus1d"),
            {"kinetics400": "r2plus1d_18"}, _KINETICS),
    Variant("mict_net", "mictnet", MiCTNetConfig(), {"imagenet": "bninception"},
            cam_layers=("features", "mict3d.3", "mict3d.2")),
)

_REGISTRY: dict[str, Variant] = {}


def register(variant: Variant) -> Variant:
    """Add ``variant`` to the registry (a name registered again is replaced)."""
    _REGISTRY[variant.name] = variant
    return variant


for _variant in VARIANTS:
    register(_variant)


def register_model(fn: Callable[..., nn.Module] | None = None, *,
                   clip: dict[str, Any] | None = None) -> Any:
    """Register a builder function ``fn(num_classes, **options)`` under its name (family
    ``"custom"``); its keyword arguments are the model's options. ``@register_model(clip={...})``
    also declares the clip it is made for (ClipSpec fields, e.g. ``{"crop": 112}``)."""

    def add(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        register(Variant(builder.__name__, "custom", None, builder=builder, clip=dict(clip or {}),
                         cam_layers=()))
        return builder

    return add if fn is None else add(fn)


def list_models(tag: str | None = None) -> list[str]:
    """Names of the registered models, in table then registration order; with ``tag``, those of
    one family (``"mict"``, ``"resnet3d"``, ``"resnet2d"``, ``"torchvision"``, ``"mictnet"``,
    ``"custom"``)."""
    tags = [*FAMILIES, "custom"]
    if tag is not None and tag not in tags:
        raise ValueError(f"unknown model tag {tag!r}; choose one of {', '.join(tags)}")
    return [name for name, v in _REGISTRY.items() if tag is None or v.family == tag]


def get_variant(name: str) -> Variant:
    """The registry row of ``name``: family, config, defaults, weights and clip."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def build_model(name: str, num_classes: int = 101, pretrained: Pretrained = None,
                **options: Any) -> nn.Module:
    """Build a registered model; ``options`` override the variant's defaults.

    ``pretrained``: one of the sources the variant accepts (``"imagenet"``, ``"kinetics400"``)
    or a weights file in that source's layout (see :mod:`mictnet.models.weights`); None or
    ``"none"`` (as on the command line): random weights. The returned module carries ``spec``
    (a :class:`ModelSpec`) to rebuild it from a checkpoint.
    """
    variant = get_variant(name)
    if isinstance(pretrained, str) and pretrained.lower() == "none":
        pretrained = None
    given = options | ({"pretrained": pretrained} if pretrained else {})
    unknown = sorted(set(given) - set(variant.defaults))
    if unknown:
        raise TypeError(f"{name} has no option {unknown}; it takes {sorted(variant.defaults)}")
    if variant.builder is not None:
        model = variant.builder(num_classes=num_classes, **given)
    else:
        source = pretrained_source(variant, pretrained) if pretrained else None
        config = replace(variant.config, num_classes=num_classes, **options)
        model = FAMILIES[variant.family](config)
        if source:
            space = InputSpace(tuple(variant.clip.get("mean", PIPELINE_SPACE.mean)),
                               tuple(variant.clip.get("std", PIPELINE_SPACE.std)))
            load_pretrained(model, pretrained, source, variant.weights[source], space)
    model.spec = ModelSpec(name, num_classes, dict(options))
    return model


def pretrained_source(variant: Variant, pretrained: str | Path) -> str:
    """The source whose layout ``pretrained`` (a source name or a file) is read in; a source the
    variant does not accept is a ``ValueError`` that lists those it does."""
    accepted = ", ".join(f"{s!r} ({arch})" for s, arch in variant.weights.items())
    if str(pretrained) in SOURCES and str(pretrained) not in variant.weights:
        takes = f"takes pretrained={accepted} or a file of that layout" if accepted else \
            "has no pretrained weights"
        raise ValueError(f"{variant.name} {takes}, not {str(pretrained)!r}")
    if not variant.weights:
        raise ValueError(f"{variant.name} has no pretrained weights; train it from scratch: "
                         "--pretrained none (in Python: pretrained=None)")
    return str(pretrained) if str(pretrained) in SOURCES else next(iter(variant.weights))
