"""Which frames of a video make a clip: the published training and testing recipes.

- ``clip``, training: a temporal down-sampling factor drawn from 1..``max_stride``, then
  ``frames`` consecutive frames of the down-sampled video from a random start, looped when the
  down-sampled video is shorter.
- ``clip``, testing: the first ``frames`` frames (looped when the video is shorter).
- ``video``: the first ``frames`` frames (looped when shorter), or the whole video when
  ``frames`` is ``None``.
- ``multiclip``: up to ``num_clips`` clips of ``frames`` consecutive frames, evenly spaced (no
  more than the video holds end to end, ``ceil(length / frames)``, and at least one).

Testing reads every ``stride``-th frame (a model's clip spec; 1: consecutive frames): the modes
above then apply to the video down-sampled by ``stride``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MODES = ("clip", "video", "multiclip")
MAX_CLIPS = 64  # multiclip: clips per video at most (all of them are decoded and kept at once)


def _randint(low: int, high: int, generator: torch.Generator | None) -> int:
    """Uniform integer in ``[low, high]``."""
    return int(torch.randint(low, high + 1, (1,), generator=generator))


def looped_indices(start: int, count: int, period: int, step: int = 1) -> list[int]:
    """``count`` consecutive frame indices from ``start``, wrapping around ``period`` frames and
    scaled by the temporal ``step``."""
    return [((start + i) % period) * step for i in range(count)]


@dataclass(frozen=True)
class ClipSampler:
    """Frame indices of the clip(s) to read from a video of ``num_frames`` frames."""

    frames: int | None = 16
    mode: str = "clip"
    train: bool = False
    num_clips: int = 1
    max_stride: int = 4
    stride: int = 1

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown clip mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.frames is None and self.mode != "video":
            raise ValueError(f"frames=None (whole videos) needs mode='video', not {self.mode!r}")
        if self.frames is not None and self.frames < 1:
            raise ValueError(f"frames must be >= 1, got {self.frames}")
        if self.num_clips < 1 or self.max_stride < 1 or self.stride < 1:
            raise ValueError("num_clips, max_stride and stride must be >= 1")
        if self.num_clips > MAX_CLIPS:
            raise ValueError(f"num_clips is at most {MAX_CLIPS}, got {self.num_clips}")

    @property
    def whole_video(self) -> bool:
        return self.frames is None

    def clips(self, num_frames: int, generator: torch.Generator | None = None) -> list[list[int]]:
        """One list of frame indices per clip (one clip except in ``multiclip`` mode)."""
        if num_frames < 1:
            raise ValueError("a video needs at least one frame")
        if self.mode == "clip" and self.train:
            return [self._training_clip(num_frames, generator)]
        s = self.stride
        length = -(-num_frames // s)  # frames of the down-sampled video
        if self.frames is None:
            return [list(range(0, num_frames, s))]
        t = self.frames
        if self.mode == "multiclip":
            count = max(1, min(self.num_clips, -(-length // t)))
            last = max(length - t, 0)
            starts = [round(k * last / (count - 1)) if count > 1 else last // 2
                      for k in range(count)]
            return [looped_indices(start, t, length, s) if length < t else
                    [(start + i) * s for i in range(t)] for start in starts]
        return [looped_indices(0, t, length, s)]

    def _training_clip(self, num_frames: int, generator: torch.Generator | None) -> list[int]:
        """A random down-sampling factor, then ``frames`` consecutive frames from a random
        start (looped when the down-sampled video is shorter)."""
        t = self.frames
        stride = _randint(1, self.max_stride, generator)
        length = -(-num_frames // stride)
        if length >= t:
            start = _randint(0, length - t, generator)
            return [(start + i) * stride for i in range(t)]
        return looped_indices(_randint(0, length - 1, generator), t, length, stride)
