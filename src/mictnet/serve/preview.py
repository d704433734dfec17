"""A preview any browser shows: a few evenly spaced frames of a video as small JPEG data URLs
(the page plays them when its ``<video>`` cannot decode the file, e.g. MPEG-4 Part 2 AVIs)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import cv2

from ..data.decode import VideoReader

PREVIEW_FRAMES = 12
PREVIEW_SIDE = 320  # pixels of the longer side at most
JPEG_QUALITY = 80


def preview(path: str | Path, fps: float, count: int = PREVIEW_FRAMES,
            check: Callable[[], None] | None = None) -> dict:
    """``{"times": [s, ...], "frames": ["data:image/jpeg;base64,...", ...]}``: ``count`` frames
    spread over ``path`` (at ``fps``), their longer side at most :data:`PREVIEW_SIDE`."""
    with VideoReader(path, check=check) as probe:
        width, height = probe.info.width, probe.info.height
    scale = min(1.0, PREVIEW_SIDE / max(width, height))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    with VideoReader(path, shrink_to=size, check=check) as reader:
        frames_in = reader.check_end().frames  # the real count of a truncated file
        n = min(count, frames_in)
        indices = sorted({(2 * k + 1) * frames_in // (2 * n) for k in range(n)})
        frames = reader.read(indices)
    urls = []
    for frame in frames:
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise RuntimeError(f"{path}: cannot encode a preview frame as JPEG")
        urls.append("data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode())
    return {"times": [round(i / fps, 3) for i in indices], "frames": urls}
