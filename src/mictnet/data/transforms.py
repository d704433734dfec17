"""Clip augmentation on uint8 tensors, the whole clip at once, the same parameters for all frames.

Training (the published recipe): resize to ``resize`` (width, height; 256×192), crop a width and
a height drawn independently from {128, 144, 160, 176, 192} (scaled with the resize height,
aspect ratio kept within 2/3..3/2) at a corner or the centre, resize the crop to
``crop_size``², flip horizontally, jitter brightness, contrast and saturation by factors in
[1 - jitter, 1 + jitter] (composed into one colour map, clipped once). Testing: resize and
centre crop ``crop_size``. Both normalise with ``mean`` and ``std`` (default ImageNet's; a model's
own are in its :class:`~mictnet.data.clip_spec.ClipSpec`) and return float32 ``3×T×crop×crop``.

Optical flow (``T×H×W×2`` uint8 x, y from :mod:`.flow`, two ``mean``/``std`` values, default
:data:`FLOW_MEAN`, :data:`FLOW_STD`: uint8 127.5 is zero motion) takes the same crop and flip
draws as RGB, so a flow clip and an RGB clip of one seed are aligned; a flip negates x (``255 -
x``, exact around 127.5); no colour jitter.

The crop is taken from the original frames at the matching place and resized once (the same
result as resizing twice, up to rounding), so full frames are never resized or converted to
float.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FLOW_MEAN = (0.5, 0.5)  # of uint8 flow / 255: zero motion is 0
FLOW_STD = (0.5, 0.5)  # ±bound maps to ±1
RESIZE = (256, 192)  # the published recipe: width, height of the frames before cropping
CROP_SCALES = (128 / 192, 144 / 192, 160 / 192, 176 / 192, 1.0)  # of the resized height
MAX_ASPECT = 1.5
_GRAY = (0.299, 0.587, 0.114)


def _rand(generator: torch.Generator | None) -> float:
    return float(torch.rand((), generator=generator))


def _choice(n: int, generator: torch.Generator | None) -> int:
    return int(torch.randint(n, (1,), generator=generator))


@dataclass(frozen=True)
class ClipTransform:
    """uint8 ``T×H×W×C`` clip -> normalised float32 ``C×T×crop×crop`` (``C = len(mean)``: 3 for
    RGB, 2 for optical flow).

    Call with ``flip=False`` to forbid the flip for one clip (classes that mirroring changes) and
    ``generator`` for reproducible draws.
    """

    train: bool
    crop_size: int = 160
    resize: tuple[int, int] = RESIZE  # width, height
    flip: bool = True
    jitter: float = 0.5
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    @property
    def channels(self) -> int:
        """3 (RGB) or 2 (optical flow x, y)."""
        return len(self.mean)

    def __post_init__(self) -> None:
        if self.channels not in (2, 3) or len(self.std) != self.channels:
            raise ValueError(f"mean and std need 3 values (RGB) or 2 (optical flow); got "
                             f"{self.mean}, {self.std}")
        width, height = self.resize
        if min(width, height, self.crop_size) < 1:
            raise ValueError(f"sizes must be positive: resize={self.resize}, "
                             f"crop_size={self.crop_size}")
        if not self.train and self.crop_size > min(width, height):
            raise ValueError(f"crop_size {self.crop_size} is larger than the resized frame "
                             f"{width}x{height}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter}")

    def crop_box(self, generator: torch.Generator | None = None) -> tuple[int, int, int, int]:
        """``(x, y, w, h)`` of the crop in the resized frame (random when training)."""
        width, height = self.resize
        if not self.train:
            w = h = self.crop_size
            return (width - w) // 2, (height - h) // 2, w, h
        sizes = [max(1, round(s * height)) for s in CROP_SCALES]
        while True:
            w = min(sizes[_choice(len(sizes), generator)], width)
            h = sizes[_choice(len(sizes), generator)]
            if 1 / MAX_ASPECT <= w / h <= MAX_ASPECT:
                break
        corner = _choice(5, generator)  # top-left, top-right, bottom-left, bottom-right, centre
        if corner == 4:
            return (width - w) // 2, (height - h) // 2, w, h
        return (width - w) * (corner % 2), (height - h) * (corner // 2), w, h

    def __call__(self, clip: torch.Tensor, *, flip: bool | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        c = self.channels
        if clip.dtype != torch.uint8 or clip.ndim != 4 or clip.shape[-1] != c:
            raise ValueError(f"expected a uint8 T×H×W×{c} clip, got {clip.dtype} "
                             f"{tuple(clip.shape)}")
        frames = clip.permute(0, 3, 1, 2)  # T×3×H×W view, channels-last memory
        src_h, src_w = frames.shape[-2:]
        x, y, w, h = self.crop_box(generator)
        sx, sy = src_w / self.resize[0], src_h / self.resize[1]
        x0, x1 = round(x * sx), max(round((x + w) * sx), round(x * sx) + 1)
        y0, y1 = round(y * sy), max(round((y + h) * sy), round(y * sy) + 1)
        size = (self.crop_size, self.crop_size)
        out = nn.functional.interpolate(frames[..., y0:y1, x0:x1], size=size, mode="bilinear",
                                        antialias=True)  # uint8, channels-last fast path
        flip_draw = _rand(generator) if self.train else 1.0
        if flip_draw < 0.5 and (self.flip if flip is None else flip):
            out = out.flip(-1)
            if c == 2:  # mirrored motion: x flow negated
                out = torch.cat([255 - out[:, :1], out[:, 1:]], dim=1)
        x = torch.empty((c, *out.shape[:1], *size), dtype=torch.float32)
        x.copy_(out.permute(1, 0, 2, 3))  # to planar float in one pass
        if self.train and self.jitter > 0 and c == 3:
            self._jitter(x, generator)
        scale = 1 / (255 * torch.tensor(self.std))
        shift = -torch.tensor(self.mean) / torch.tensor(self.std)
        return x.mul_(scale.view(c, 1, 1, 1)).add_(shift.view(c, 1, 1, 1))

    def _jitter(self, x: torch.Tensor, generator: torch.Generator | None) -> None:
        """Brightness, contrast and saturation, in place on a float ``3×T×H×W`` clip in [0, 255].

        The three are composed into one colour map (contrast around the clip's mean gray level,
        so every frame gets the same map) and clipped to [0, 255] once.
        """
        lo = 1 - self.jitter
        b, c, s = (lo + 2 * self.jitter * _rand(generator) for _ in range(3))
        gray = (x[0] * _GRAY[0]).add_(x[1], alpha=_GRAY[1]).add_(x[2], alpha=_GRAY[2])
        mean = float(gray.mean()) * b
        gray.mul_(c * b * (1 - s)).add_((1 - c) * mean)
        x.mul_(c * b * s).add_(gray).clamp_(0, 255)


def train_transform(crop_size: int = 160, resize: tuple[int, int] = RESIZE, flip: bool = True,
                    jitter: float = 0.5) -> ClipTransform:
    """The published training augmentation (see the module docstring)."""
    return ClipTransform(True, crop_size, tuple(resize), flip, jitter)


def eval_transform(crop_size: int = 160, resize: tuple[int, int] = RESIZE) -> ClipTransform:
    """Resize and centre crop, then normalise."""
    return ClipTransform(False, crop_size, tuple(resize), False, 0.0)


def denormalise(clip: torch.Tensor) -> torch.Tensor:
    """Normalised float ``3×T×H×W`` -> uint8 ``T×H×W×3`` (for previews)."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1, 1)
    x = (clip * std + mean).mul(255).round().clamp(0, 255).to(torch.uint8)
    return x.permute(1, 2, 3, 0).contiguous()
