"""What one request may cost the server: a video's claims checked before any frame is decoded.

A header is the client's word: a 200 KB file can claim 8192×8192 frames or, with a stretched
time base, 0.00025 frames per second (a timeline of a million one-second steps). Such files are
refused (422, naming the reason); a long timeline gets coarser steps instead of more of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..data.decode import VideoError, VideoInfo
from ..inference import timeline_steps


@dataclass(frozen=True)
class Limits:
    """Largest frame side, frame-rate range, frames and timeline steps of one request."""

    max_side: int = 4096
    min_fps: float = 1.0
    max_fps: float = 1000.0
    max_frames: int = 1_000_000  # 11 hours at 25 fps
    max_steps: int = 600

    def check(self, name: str, info: VideoInfo) -> None:
        """Raise :class:`VideoError` (``refused``) naming the first claim beyond these limits."""
        problem = None
        if max(info.width, info.height) > self.max_side:
            problem = (f"{info.width}x{info.height} frames; the server takes at most "
                       f"{self.max_side} pixels a side")
        elif info.fps and not self.min_fps <= info.fps <= self.max_fps:
            problem = (f"a frame rate of {info.fps:.6g} fps (a stretched or broken time base); "
                       f"the server takes {self.min_fps:g}-{self.max_fps:g} fps")
        elif info.frames > self.max_frames:
            problem = (f"{info.frames} frames; the server takes at most {self.max_frames}")
        if problem:
            raise VideoError(name, problem, "refused")

    def step_seconds(self, info: VideoInfo, fps: float) -> float:
        """One second, or the fewest whole seconds that keep the timeline within
        ``max_steps`` steps."""
        steps = timeline_steps(info.frames, fps)
        return 1.0 if steps <= self.max_steps else float(math.ceil(steps / self.max_steps))


DEFAULT_LIMITS = Limits()
