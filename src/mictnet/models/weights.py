"""Pretrained weights: ImageNet 2D weights copied or inflated, Kinetics-400 video weights.

The 2D and 3D layers of every model here carry the parameter names of the weight file they start
from (torchvision's ResNets and video ResNets, the public BN-Inception file), so the transfer is
a key-for-key map: a tensor of the same shape is copied; a 5D kernel whose 2D source has the same
``out×in×h×w`` is inflated (repeated ``t`` times along time and divided by ``t``, Carreira &
Zisserman); keys with no source (MiCT's 3D branches) stay fresh. The classifier is copied only
from a file of action classes with as many classes as the model (Kinetics-400 into a 400-class
model: torchvision's class order is the sorted labels, as ``data.Kinetics``), else fresh.

A registered model names the sources it accepts (``registry.Variant.weights``): ``"imagenet"``
(torchvision's ImageNet ResNets; the public BN-Inception file for ``mict_net``) and
``"kinetics400"`` (torchvision's Kinetics-400 video ResNets). Their files come from the torch hub
cache (``torch.hub.get_dir()/checkpoints/<the URL's file name>``) or are downloaded there; offline,
the error names the URL and that path. ``pretrained=PATH`` reads a file of the same layout.

The data pipeline feeds RGB in [0, 1] normalised with the ImageNet mean and std (those of
torchvision's ImageNet weights). A file trained on other input (BN-Inception: BGR in [0, 255]
minus a mean; the Kinetics models: Kinetics mean and std) gets that difference folded into its
first convolution: filters scaled per input channel, the constant shift added to its bias or
taken from the running mean of the batch norm after it. Exact except where the convolution's
zero padding reaches past the frame's border.

A model of other input (``in_channels=2``: optical flow) starts the TSN way (Wang et al., ECCV
2016, "cross-modality pre-training"): the first convolution's RGB filters averaged over their
three channels and replicated over the model's; no normalisation is folded.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn

log = logging.getLogger(__name__)

CLASSIFIER_PREFIX = "fc."


@dataclass(frozen=True)
class InputSpace:
    """The input a first convolution was trained on: RGB (or BGR) values in [0, ``scale``],
    minus ``mean``, divided by ``std`` (per channel, in that channel order and range)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    scale: float = 1.0
    bgr: bool = False


def _torchvision_space(weights: torchvision.models.WeightsEnum) -> InputSpace:
    preset = weights.transforms()
    return InputSpace(tuple(preset.mean), tuple(preset.std))


#: What the data pipeline feeds every model: torchvision's ImageNet normalisation.
PIPELINE_SPACE = _torchvision_space(torchvision.models.ResNet18_Weights.IMAGENET1K_V1)


@dataclass(frozen=True)
class WeightFile:
    """A public weight file: where it is, its classifier and its first convolution's input."""

    description: str
    url: str
    space: InputSpace
    first_conv: str  # key prefix of the first convolution
    first_bn: str  # key prefix of the batch norm after it
    classifier: str = CLASSIFIER_PREFIX  # key prefix of its classifier in the file
    action_classes: int | None = None  # None: image classes, its classifier never transfers

    @property
    def cache_path(self) -> Path:
        """Where the torch hub cache keeps it."""
        return Path(torch.hub.get_dir()) / "checkpoints" / self.url.rsplit("/", 1)[1]


#: The public Caffe-converted BN-Inception (Cadene's pretrainedmodels; TSN's layout): BGR in
#: [0, 255] minus the Caffe mean, its batch norms stored as 1×C.
BNINCEPTION = WeightFile(
    "BN-Inception ImageNet weights (pretrainedmodels bninception)",
    "http://data.lip6.fr/cadene/pretrainedmodels/bn_inception-52deb4733.pth",
    InputSpace((104.0, 117.0, 128.0), (1.0, 1.0, 1.0), scale=255.0, bgr=True),
    "conv1_7x7_s2", "conv1_7x7_s2_bn", classifier="last_linear.",
)
#: Weight files that torchvision does not hold, by the name a registry row gives.
PUBLIC_FILES = {"bninception": BNINCEPTION}
#: Source -> (torchvision weights entry, first convolution, its batch norm, classifier kept).
TORCHVISION_SOURCES = {
    "imagenet": ("IMAGENET1K_V1", "conv1", "bn1", False),
    "kinetics400": ("KINETICS400_V1", "stem.0", "stem.1", True),
}
#: The names ``pretrained=`` takes besides a path.
SOURCES = tuple(TORCHVISION_SOURCES)


@dataclass
class TransferReport:
    """Which parameters and buffers were copied, inflated or left at their fresh values, and
    which were adapted to the pipeline's input normalisation."""

    copied: list[str] = field(default_factory=list)
    inflated: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)
    cross_modality: list[str] = field(default_factory=list)  # RGB filters averaged (TSN)

    def summary(self) -> str:
        adapted = (f"; input normalisation folded into {', '.join(self.adapted)}"
                   if self.adapted else "")
        cross = (f"; RGB filters averaged over their 3 channels and replicated (TSN) in "
                 f"{', '.join(self.cross_modality)}" if self.cross_modality else "")
        return (
            f"{len(self.copied)} tensors copied, {len(self.inflated)} inflated to 3D, "
            f"{len(self.fresh)} left fresh{adapted}{cross}"
        )


def inflate_kernel(weight_2d: Tensor, depth: int) -> Tensor:
    """Repeat a ``O×I×H×W`` kernel ``depth`` times along a new time axis and divide by ``depth``."""
    return weight_2d.unsqueeze(2).repeat(1, 1, depth, 1, 1) / depth


def cross_modality_kernel(weight: Tensor, channels: int) -> Tensor:
    """TSN's cross-modality initialisation: an RGB kernel ``O×3×...`` averaged over its input
    channels and replicated ``channels`` times (``O×channels×...``, e.g. 2 for optical flow)."""
    return weight.mean(dim=1, keepdim=True).expand(-1, channels, *weight.shape[2:]).contiguous()


def refused_import(err: Exception) -> str | None:
    """The name a pickle asked to import when ``torch.load(weights_only=True)`` refused it
    (``None`` when that was not why it failed)."""
    found = re.search(r"GLOBAL ([\w.]+)", str(err))
    return found.group(1) if found else None


def load_state_dict_file(path: str | Path) -> dict[str, Tensor]:
    """Read a state dict from ``.pth``/``.pt`` (``weights_only``) or ``.safetensors``; a
    ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper is unwrapped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            unsafe = refused_import(err)
            why = (f"it asks to import {unsafe}; mictnet loads only tensors and plain values "
                   "and will not unpickle arbitrary objects" if unsafe else
                   f"{type(err).__name__}: {str(err).split('. ')[0]}")
            raise ValueError(f"{path}: not a safe, readable PyTorch state dict ({why})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def weight_file(source: str, arch: str) -> WeightFile:
    """The public file of ``source`` (``"imagenet"``, ``"kinetics400"``) for ``arch``: a
    torchvision model name, or a name in :data:`PUBLIC_FILES`."""
    if arch in PUBLIC_FILES:
        return PUBLIC_FILES[arch]
    entry, first_conv, first_bn, keeps_classifier = TORCHVISION_SOURCES[source]
    weights = torchvision.models.get_model_weights(arch)[entry]
    classes = len(weights.meta["categories"]) if keeps_classifier else None
    return WeightFile(f"torchvision {arch} {entry} weights", weights.url,
                      _torchvision_space(weights), first_conv, first_bn,
                      action_classes=classes)


def fetch(file: WeightFile) -> dict[str, Tensor]:
    """The state dict of ``file`` from the torch hub cache, downloaded there first if missing;
    offline, a ``RuntimeError`` that names the URL and where to place the file."""
    cache = file.cache_path
    if not cache.is_file():
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(file.url, str(cache))
        except OSError as err:  # URLError and socket errors are OSErrors
            raise RuntimeError(
                f"could not download the {file.description} ({err}). Offline, download "
                f"{file.url} on another machine and place it at {cache}, or give that file "
                f"(.pth, .pt or .safetensors) as --pretrained PATH (in Python: "
                f"pretrained=PATH)"
            ) from err
    return load_state_dict_file(cache)


def adapt_first_conv(state: dict[str, Tensor], file: WeightFile,
                     target: InputSpace = PIPELINE_SPACE) -> list[str]:
    """Fold the difference between ``file``'s input space and ``target`` (the model's clip
    normalisation; default :data:`PIPELINE_SPACE`) into its first convolution (in ``state``, in
    place); returns the keys changed (none if they agree).

    With ``x_file = a·x_pipeline + b`` per input channel, ``W·x_file = (W·a)·x_pipeline + Σ W·b``:
    the filters take ``a`` and the constant goes to the bias, or (no bias) is subtracted from
    the running mean of the batch norm that follows.
    """
    space = file.space
    weight_key = f"{file.first_conv}.weight"
    if space == target or weight_key not in state:  # a file of another layout fails later
        return []
    order = [2, 1, 0] if space.bgr else [0, 1, 2]  # the file's channel of each RGB channel
    weight = state[weight_key].double()[:, order]
    mean, std = (torch.tensor(v, dtype=torch.float64)[order] for v in (space.mean, space.std))
    ratio = space.scale / target.scale
    a = ratio * torch.tensor(target.std, dtype=torch.float64) / std
    b = (ratio * torch.tensor(target.mean, dtype=torch.float64) - mean) / std
    shape = (1, 3) + (1,) * (weight.dim() - 2)
    shift = (weight * b.view(shape)).sum(dim=tuple(range(1, weight.dim())))
    dtype = state[weight_key].dtype
    state[weight_key] = (weight * a.view(shape)).to(dtype)
    bias_key = f"{file.first_conv}.bias"
    if bias_key in state:
        state[bias_key] = (state[bias_key].double().flatten() + shift).to(dtype)
        return [weight_key, bias_key]
    mean_key = f"{file.first_bn}.running_mean"
    state[mean_key] = (state[mean_key].double().flatten() - shift).to(dtype)
    return [weight_key, mean_key]


def transfer_weights(model: nn.Module, source: dict[str, Tensor],
                     file: WeightFile | None = None, target: InputSpace = PIPELINE_SPACE
                     ) -> TransferReport:
    """Copy or inflate ``source`` (a state dict in ``file``'s layout; default: a torchvision
    ImageNet ResNet's) into ``model`` in place; see the module docstring.

    Raises ``ValueError`` when the source does not fit the model's backbone (missing keys,
    unexpected keys or shapes that neither match nor inflate).
    """
    file = file or weight_file("imagenet", "resnet18")
    source = dict(source)
    state = model.state_dict()
    first = state.get(f"{file.first_conv}.weight")
    rgb_input = first is None or first.shape[1] == 3  # else flow: TSN's cross-modality init
    report = TransferReport(adapted=adapt_first_conv(source, file, target) if rgb_input else [])
    keep_classifier = (file.action_classes is not None
                       and file.action_classes == model.fc.out_features)
    target = state
    problems: list[str] = []
    unexpected = [k for k in source if k not in target and not k.startswith(file.classifier)]
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys, e.g. {unexpected[:3]}")
    new_state: dict[str, Tensor] = {}
    for key, dst in target.items():
        src = source.get(key)
        if src is not None and src.dim() == dst.dim() + 1 and src.shape[0] == 1:
            src = src[0]  # Caffe conversions store batch norms as 1×C
        if (src is not None and src.dim() in (dst.dim(), dst.dim() - 1) and src.dim() >= 4
                and src.shape[1] == 3 and dst.shape[1] != 3):
            src = cross_modality_kernel(src, dst.shape[1])
            report.cross_modality.append(key)
        if src is None or (key.startswith(CLASSIFIER_PREFIX) and not keep_classifier):
            report.fresh.append(key)
        elif src.shape == dst.shape:
            new_state[key] = src.to(dst.dtype)
            report.copied.append(key)
        elif src.dim() == 4 and dst.dim() == 5 and src.shape == dst.shape[:2] + dst.shape[3:]:
            new_state[key] = inflate_kernel(src, dst.shape[2]).to(dst.dtype)
            report.inflated.append(key)
        else:
            problems.append(f"{key}: source {tuple(src.shape)} vs model {tuple(dst.shape)}")
    missing = [k for k in report.fresh if _is_backbone_key(k) and k not in source]
    if missing:
        problems.append(f"{len(missing)} backbone keys missing, e.g. {missing[:3]}")
    if problems:
        raise ValueError(
            f"the state dict does not fit {type(model).__name__} "
            f"({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters): "
            + "; ".join(problems[:5])
        )
    model.load_state_dict(new_state, strict=False)
    return report


def _is_backbone_key(key: str) -> bool:
    """Keys a weight file must provide (not MiCT branches, the classifier or batch-norm step
    counters, which older files lack)."""
    return ("mict3d" not in key and not key.startswith(CLASSIFIER_PREFIX)
            and not key.endswith("num_batches_tracked"))


def load_pretrained(model: nn.Module, pretrained: str | Path, source: str, arch: str,
                    target: InputSpace = PIPELINE_SPACE) -> TransferReport:
    """Load ``source``'s public ``arch`` weights (``pretrained == source``) or the file
    ``pretrained`` in their layout into ``model``, for input normalised as ``target``; log and
    return the report."""
    file = weight_file(source, arch)
    state = fetch(file) if str(pretrained) == source else load_state_dict_file(pretrained)
    try:
        report = transfer_weights(model, state, file, target)
    except ValueError as err:
        raise ValueError(f"{pretrained}: {err} (expected the {file.description})") from None
    log.info("pretrained %s -> %s: %s", pretrained, type(model).__name__, report.summary())
    return report
