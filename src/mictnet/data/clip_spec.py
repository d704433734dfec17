"""The clip a model is made for: frames, test-time sampling stride, resize, crop, mean and std.

One frozen :class:`ClipSpec` per model: its registry row gives the default (the Kinetics video
ResNets: torchvision's 16 frames, 128×171 frames cropped to 112; the others: this project's
recipe, 256×192 cropped to 160), a training config overrides it field by field
(``data.frames``, ``data.crop_size``, ``data.resize``), and a checkpoint stores the resolved
spec, from which evaluation, ``predict``, ``export`` and ``serve`` build their transform.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from .transforms import IMAGENET_MEAN, IMAGENET_STD, RESIZE, ClipTransform

#: The spec fields a training config may override, with the config key of each.
CONFIG_KEYS = {"frames": "data.frames", "crop": "data.crop_size", "resize": "data.resize"}


@dataclass(frozen=True)
class ClipSpec:
    """How a clip is read and normalised for one model.

    ``stride``: frames between two sampled frames at test time (1: consecutive). ``resize`` is
    width, height before the crop; ``crop`` the square crop's side; ``mean``/``std`` normalise
    RGB in [0, 1] (pretrained weights trained on other statistics are folded into these, see
    :mod:`mictnet.models.weights`).
    """

    frames: int = 16
    stride: int = 1
    resize: tuple[int, int] = RESIZE
    crop: int = 160
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        for name in ("frames", "stride", "crop"):
            if getattr(self, name) < 1:
                raise ValueError(f"clip {name} must be positive, got {getattr(self, name)}")
        if len(self.resize) != 2 or min(self.resize) < 1:
            raise ValueError(f"clip resize must be a positive width, height; got {self.resize}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"clip mean and std need 3 values (std > 0); got {self.mean}, "
                             f"{self.std}")

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
        (:data:`CONFIG_KEYS`; unset ones, ``None``, keep this spec's)."""
        return self.overridden(**{field: getattr(data, key.split(".")[1])
                                  for field, key in CONFIG_KEYS.items()})

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
        return (f"{self.frames}×{self.crop}² of {self.resize[0]}×{self.resize[1]}, stride "
                f"{self.stride}, mean/std {stats}")
