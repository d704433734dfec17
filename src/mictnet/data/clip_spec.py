"""The clip a model is made for: frames, test-time sampling stride, resize, crop, mean and std.

One frozen :class:`ClipSpec` per model: its registry row gives the default (the Kinetics video
ResNets: torchvision's 16 frames, 128×171 frames cropped to 112; the others: this project's
recipe, 256×192 cropped to 160), a training config overrides it field by field
(``data.frames``, ``data.crop_size``, ``data.resize``), and a checkpoint stores the resolved
spec, from which evaluation, ``predict``, ``export`` and ``serve`` build their transform.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from .transforms import FLOW_MEAN, FLOW_STD, IMAGENET_MEAN, IMAGENET_STD, RESIZE, ClipTransform

MODALITIES = ("rgb", "flow")
CHANNELS = {"rgb": 3, "flow": 2}

#: The spec fields a training config may override, with the config key of each.
CONFIG_KEYS = {"frames": "data.frames", "crop": "data.crop_size", "resize": "data.resize"}


@dataclass(frozen=True)
class ClipSpec:
    """How a clip is read and normalised for one model.

    ``stride``: frames between two sampled frames at test time (1: consecutive). ``resize`` is
    width, height before the crop; ``crop`` the square crop's side; ``mean``/``std`` normalise
    RGB in [0, 1] (pretrained weights trained on other statistics are folded into these, see
    :mod:`mictnet.models.weights`). ``modality``: ``rgb`` frames or ``flow`` (optical flow x, y
    from ``mict prepare --flow``; two mean/std values).
    """

    frames: int = 16
    stride: int = 1
    resize: tuple[int, int] = RESIZE
    crop: int = 160
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    modality: Literal["rgb", "flow"] = "rgb"

    def __post_init__(self) -> None:
        for name in ("frames", "stride", "crop"):
            if getattr(self, name) < 1:
                raise ValueError(f"clip {name} must be positive, got {getattr(self, name)}")
        if len(self.resize) != 2 or min(self.resize) < 1:
            raise ValueError(f"clip resize must be a positive width, height; got {self.resize}")
        if self.modality not in MODALITIES:
            raise ValueError(f"clip modality must be one of {MODALITIES}, got {self.modality!r}")
        c = self.in_channels
        if len(self.mean) != c or len(self.std) != c or min(self.std) <= 0:
            raise ValueError(f"clip mean and std need {c} values for {self.modality} (std > 0); "
                             f"got {self.mean}, {self.std}")

    @property
    def in_channels(self) -> int:
        """Input channels of the model: 3 (RGB) or 2 (optical flow)."""
        return CHANNELS[self.modality]

    def for_modality(self, modality: str) -> ClipSpec:
        """This spec reading ``modality``: flow takes :data:`FLOW_MEAN`/:data:`FLOW_STD`; the
        same spec when it already reads it."""
        if modality == self.modality:
            return self
        if modality == "flow":
            return replace(self, modality="flow", mean=FLOW_MEAN, std=FLOW_STD)
        return replace(self, modality="rgb", mean=IMAGENET_MEAN, std=IMAGENET_STD)

    @property
    def input_size(self) -> tuple[int, int, int]:
        """Frames, height, width of the model's input clip."""
        return self.frames, self.crop, self.crop

    def overridden(self, **changes: Any) -> ClipSpec:
        """This spec with every change that is not ``None`` applied."""
        given = {k: tuple(v) if isinstance(v, list) else v
                 for k, v in changes.items() if v is not None}
        return replace(self, **given)

    def with_data(self, data: Any) -> ClipSpec:
        """This spec with the clip fields a training config's data section sets
        (:data:`CONFIG_KEYS`; unset ones, ``None``, keep this spec's) and its modality
        (``data.modality`` ``flow``: optical flow)."""
        spec = self.overridden(**{field: getattr(data, key.split(".")[1])
                                  for field, key in CONFIG_KEYS.items()})
        return spec.for_modality("flow" if getattr(data, "modality", "rgb") == "flow" else "rgb")

    def train_transform(self, flip: bool = True, jitter: float = 0.5) -> ClipTransform:
        """The published training augmentation at this spec's size and statistics."""
        return ClipTransform(True, self.crop, self.resize, flip, jitter, self.mean, self.std)

    def eval_transform(self) -> ClipTransform:
        """Resize, centre crop and normalise, as this spec says."""
        return ClipTransform(False, self.crop, self.resize, False, 0.0, self.mean, self.std)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (lists, no tuples) for checkpoints and JSON."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClipSpec:
        """The spec :meth:`to_dict` wrote; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown clip spec field(s) {unknown}; known: {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def describe(self) -> str:
        """One line: ``16×160² of 256×192, stride 1, mean/std ImageNet``."""
        stats = "ImageNet" if (self.mean, self.std) == (IMAGENET_MEAN, IMAGENET_STD) else \
            f"{self.mean}/{self.std}"
        flow = "optical flow, " if self.modality == "flow" else ""
        return (f"{flow}{self.frames}×{self.crop}² of {self.resize[0]}×{self.resize[1]}, stride "
                f"{self.stride}, mean/std {stats}")
