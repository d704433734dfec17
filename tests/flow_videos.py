"""Test videos with known motion: a smooth texture panning ``dx`` pixels per frame, written as
H.264 MP4 (libx264 of imageio-ffmpeg, a test dependency) or by OpenCV (``make_video``)."""

from __future__ import annotations

import importlib
import subprocess
from pathlib import Path

import cv2
import numpy as np

SIZE = (64, 48)


def panning(count: int, dx: int = 2, size: tuple[int, int] = SIZE) -> np.ndarray:
    """RGB frames of a smooth texture whose content moves ``dx`` pixels right per frame."""
    rng = np.random.default_rng(0)
    width, height = size
    wide = width + abs(dx) * count
    texture = cv2.resize(rng.integers(0, 256, (height // 4, wide // 4, 3), np.uint8),
                         (wide, height), interpolation=cv2.INTER_CUBIC)
    start = abs(dx) * count if dx > 0 else 0
    return np.stack([np.ascontiguousarray(texture[:, start - dx * t:start - dx * t + width])
                     for t in range(count)])


def write_h264(path: Path, frames: np.ndarray) -> Path:
    imageio_ffmpeg = importlib.import_module("imageio_ffmpeg")
    height, width = frames.shape[1:3]
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{width}x{height}", "-r", "25", "-i", "-", "-c:v", "libx264", "-crf", "12",
           "-pix_fmt", "yuv420p", "-threads", "1", str(path)]
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(cmd, input=frames.tobytes(), check=True)
    return path
