"""ImageNet weight transfer: copy 2D tensors, inflate 3D kernels, leave new layers fresh.

The 2D and 3D layers of every model here carry torchvision's ResNet parameter names, so the
transfer is a key-for-key map: a tensor of the same shape is copied; a 5D kernel whose 2D source
has the same ``out×in×h×w`` is inflated (repeated ``t`` times along time and divided by ``t``,
Carreira & Zisserman); keys with no source (MiCT's 3D branches, the classifier) stay fresh.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn

log = logging.getLogger(__name__)

CLASSIFIER_PREFIX = "fc."


@dataclass
class TransferReport:
    """Which parameters and buffers were copied, inflated or left at their fresh values."""

    copied: list[str] = field(default_factory=list)
    inflated: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.copied)} tensors copied, {len(self.inflated)} inflated to 3D, "
            f"{len(self.fresh)} left fresh"
        )


def inflate_kernel(weight_2d: Tensor, depth: int) -> Tensor:
    """Repeat a ``O×I×H×W`` kernel ``depth`` times along a new time axis and divide by ``depth``."""
    return weight_2d.unsqueeze(2).repeat(1, 1, depth, 1, 1) / depth


def load_state_dict_file(path: str | Path) -> dict[str, Tensor]:
    """Read a torchvision-format state dict from ``.pth``/``.pt`` (``weights_only``) or
    ``.safetensors``; a ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper is unwrapped."""
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
            raise ValueError(f"{path}: not a readable PyTorch state dict ({err})") from err
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def imagenet_url(arch: str) -> str:
    """Where torchvision keeps the ImageNet weights of ResNet ``arch`` (its ``IMAGENET1K_V1``)."""
    return torchvision.models.get_model_weights(arch)["IMAGENET1K_V1"].url


def imagenet_state_dict(arch: str) -> dict[str, Tensor]:
    """torchvision's ImageNet weights for ``arch``, from the torch hub cache or downloaded."""
    url = imagenet_url(arch)
    cache = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[1]
    if cache.is_file():
        return load_state_dict_file(cache)
    try:
        return torch.hub.load_state_dict_from_url(url, map_location="cpu", weights_only=True)
    except OSError as err:  # URLError and socket errors are OSErrors
        raise RuntimeError(
            f"could not download the ImageNet {arch} weights ({err}). Offline, download {url} "
            f"on another machine and place it at {cache}, or pass pretrained=PATH to a "
            f"torchvision-format {arch} state dict (.pth, .pt or .safetensors)"
        ) from err


def transfer_imagenet_weights(model: nn.Module, source: dict[str, Tensor]) -> TransferReport:
    """Copy or inflate the 2D ResNet ``source`` into ``model`` in place; see module docstring.

    Raises ``ValueError`` when the source does not fit the model's backbone (missing keys,
    unexpected keys or shapes that neither match nor inflate).
    """
    target = model.state_dict()
    report = TransferReport()
    problems: list[str] = []
    unexpected = [k for k in source if k not in target and not k.startswith(CLASSIFIER_PREFIX)]
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys, e.g. {unexpected[:3]}")
    new_state: dict[str, Tensor] = {}
    for key, dst in target.items():
        src = source.get(key)
        if src is None or key.startswith(CLASSIFIER_PREFIX):
            report.fresh.append(key)
        elif src.shape == dst.shape:
            new_state[key] = src.to(dst.dtype)
            report.copied.append(key)
        elif src.dim() == 4 and dst.dim() == 5 and src.shape == dst.shape[:2] + dst.shape[3:]:
            new_state[key] = inflate_kernel(src, dst.shape[2]).to(dst.dtype)
            report.inflated.append(key)
        else:
            problems.append(f"{key}: source {tuple(src.shape)} vs model {tuple(dst.shape)}")
    missing_2d = [k for k in report.fresh if _is_backbone_key(k) and k not in source]
    if missing_2d:
        problems.append(f"{len(missing_2d)} backbone keys missing, e.g. {missing_2d[:3]}")
    if problems:
        raise ValueError(
            f"the state dict does not fit {type(model).__name__} "
            f"({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters): "
            + "; ".join(problems[:5])
        )
    model.load_state_dict(new_state, strict=False)
    return report


def _is_backbone_key(key: str) -> bool:
    """Keys that a torchvision ResNet must provide (not MiCT branches, not the classifier)."""
    return "mict3d" not in key and not key.startswith(CLASSIFIER_PREFIX)


def load_pretrained(model: nn.Module, pretrained: str | Path, arch: str) -> TransferReport:
    """Load ``"imagenet"`` (torchvision's ``arch`` weights) or a state-dict file into ``model``."""
    if str(pretrained) == "imagenet":
        source = imagenet_state_dict(arch)
    else:
        source = load_state_dict_file(pretrained)
    try:
        report = transfer_imagenet_weights(model, source)
    except ValueError as err:
        raise ValueError(f"{pretrained}: {err} (expected torchvision {arch} weights)") from None
    log.info("pretrained %s -> %s: %s", pretrained, type(model).__name__, report.summary())
    return report
