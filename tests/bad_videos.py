"""Test helpers: files that look like videos but are not whole ones."""

from __future__ import annotations

import importlib
import subprocess
from pathlib import Path

import cv2

from conftest import synthetic_frames


def png_as_video(path: str | Path, size: tuple[int, int] = (64, 48)) -> Path:
    """A PNG image written under a video name (e.g. ``photo.mp4``): FFmpeg decodes 1 frame."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = synthetic_frames(1, size)[0]
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    path.write_bytes(data.tobytes())
    return path


def truncated_faststart_mp4(path: str | Path, frames: int = 60,
                            size: tuple[int, int] = (64, 48)) -> Path:
    """An H.264 MP4 with its index at the front (``-movflags +faststart``), cut in half: the
    header still claims every frame, the first ones decode and the rest is gone."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ffmpeg = importlib.import_module("imageio_ffmpeg").get_ffmpeg_exe()
    cmd = [ffmpeg, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{size[0]}x{size[1]}", "-r", "25", "-i", "-", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", "-threads", "1", "-movflags", "+faststart", str(path)]
    subprocess.run(cmd, input=synthetic_frames(frames, size).tobytes(), check=True)
    data = path.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat"), "the index should come first"
    path.write_bytes(data[:len(data) // 2])
    return path


def decodable_frames(path: str | Path) -> int:
    """Frames a plain OpenCV read loop gets from ``path``."""
    cap = cv2.VideoCapture(str(path))
    count = 0
    while cap.grab():
        count += 1
    cap.release()
    return count



def _ffmpeg() -> str:
    return importlib.import_module("imageio_ffmpeg").get_ffmpeg_exe()


def flat_h264(path: str | Path, size: tuple[int, int], frames: int = 16,
              extra: tuple[str, ...] = ()) -> Path:
    """An H.264 MP4 of ``frames`` flat blue frames of ``size``: a tiny file whatever the size."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [_ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i",
           f"color=c=blue:s={size[0]}x{size[1]}:r=25", "-frames:v", str(frames), "-c:v",
           "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-threads", "1", *extra,
           str(path)]
    subprocess.run(cmd, check=True)
    return path


def stretched_time_base_mp4(path: str | Path, frames: int = 16) -> Path:
    """An H.264 MP4 whose frames are 4000 s apart (a stretched time base): its header claims
    0.00025 fps, a 'video' of 18 hours in 16 frames."""
    return flat_h264(path, (64, 48), frames, ("-bsf:v", "setts=ts=N*100000",
                                              "-video_track_timescale", "25"))
