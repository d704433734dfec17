"""Frame-exact video decoding with OpenCV (FFmpeg inside the wheel).

Frames are decoded forward: ``grab()`` skips short gaps (it decodes without colour conversion)
and OpenCV's frame seek (to the preceding key frame, then decoding forward to the exact frame)
jumps over long ones. ``seek=False`` decodes strictly sequentially from the first frame. Both are
frame-exact against a full decode, also on AVI files with B-frames (see ``tests/test_decode.py``).
Frames come back as uint8 RGB ``T×H×W×3`` arrays, also from grayscale videos.

The frame count in a file's header can be wrong (truncated files): a wanted frame past the real
end is looked for again by sequential decoding, and then :class:`VideoError` is raised with
``decoded_frames`` set to the real count.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

DECODE_THREADS = 1  # FFmpeg decoder threads per open file: one per DataLoader worker core
SEEK_MIN_GAP = 8  # seek instead of grabbing when the next wanted frame is further ahead


class VideoError(ValueError):
    """A video that cannot be used: the message names the file and the problem.

    ``reason`` is a short code (``missing``, ``empty``, ``unreadable``, ``no-frames``,
    ``truncated``, ``bad-request``); ``decoded_frames`` is the real frame count when the decoder
    stopped early (``truncated``), else ``None``.
    """

    def __init__(self, path: str | Path, problem: str, reason: str = "unreadable",
                 decoded_frames: int | None = None) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem
        self.reason = reason
        self.decoded_frames = decoded_frames


@dataclass(frozen=True)
class VideoInfo:
    """Video metadata: frame count (from the header unless a decode proved it), fps, size."""

    frames: int
    fps: float
    width: int
    height: int


def _to_rgb(frame: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """An OpenCV frame (BGR, BGRA or gray) as RGB, written into ``out`` when given."""
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim == 2:
        code = cv2.COLOR_GRAY2RGB
    else:
        code = cv2.COLOR_BGRA2RGB if frame.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(frame, code, dst=out)


class VideoReader:
    """One open video file, read forward; reopens itself when asked for an earlier frame."""

    def __init__(self, path: str | Path, threads: int = DECODE_THREADS, seek: bool = True) -> None:
        self.path = str(path)
        self.threads = threads
        self.seek = seek
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            raise VideoError(path, "no such file", "missing") from None
        except OSError as err:
            raise VideoError(path, f"cannot access the file ({err.strerror})", "missing") from None
        if size == 0:
            raise VideoError(path, "the file is empty (0 bytes)", "empty")
        self._cap = self._open()
        header_frames = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(self._cap.get(cv2.CAP_PROP_FPS))
        if width <= 0 or height <= 0:
            self.close()
            raise VideoError(path, "not a readable video (no frame size)", "unreadable")
        self._pos = 0
        self.info = VideoInfo(header_frames, fps, width, height)
        if header_frames <= 0:  # no usable count in the header: count by decoding
            self.info = VideoInfo(self._count_frames(), fps, width, height)

    def _open(self) -> cv2.VideoCapture:
        log = cv2.utils.logging
        level = log.getLogLevel()
        log.setLogLevel(log.LOG_LEVEL_ERROR)  # unreadable files become a VideoError instead
        try:
            cap = cv2.VideoCapture(self.path, cv2.CAP_FFMPEG,
                                   [cv2.CAP_PROP_N_THREADS, self.threads])
        finally:
            log.setLogLevel(level)
        if not cap.isOpened():
            cap.release()
            raise VideoError(self.path, "cannot open it as a video (corrupt or unknown format)",
                             "unreadable")
        return cap

    def _rewind(self) -> None:
        self._cap.release()
        self._cap = self._open()
        self._pos = 0

    def _count_frames(self) -> int:
        self._rewind()
        n = 0
        while self._cap.grab():
            n += 1
        self._rewind()
        if n == 0:
            self.close()
            raise VideoError(self.path, "the video has no decodable frames", "no-frames")
        return n

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Frames ``indices`` (any order, repeats allowed) as uint8 ``T×H×W×3`` RGB."""
        if len(indices) == 0:
            raise VideoError(self.path, "no frames requested", "bad-request")
        if min(indices) < 0:
            raise VideoError(self.path, f"negative frame index {min(indices)}", "bad-request")
        wanted = sorted(set(indices))
        try:
            decoded = self._decode(wanted, self.seek)
        except VideoError as err:
            if not (self.seek and err.reason == "truncated"):
                raise
            self._rewind()
            decoded = self._decode(wanted, False)  # find the real end by decoding from 0
        if list(indices) == wanted:
            return decoded
        row = {index: k for k, index in enumerate(wanted)}
        return decoded[[row[i] for i in indices]]

    def _decode(self, wanted: list[int], seek: bool) -> np.ndarray:
        """Frames ``wanted`` (sorted, unique) into one preallocated array."""
        if wanted[0] < self._pos:
            self._rewind()
        out = np.empty((len(wanted), self.info.height, self.info.width, 3), np.uint8)
        for k, index in enumerate(wanted):
            if seek and index - self._pos > SEEK_MIN_GAP and index < self.info.frames:
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, index)
                self._pos = index
            while self._pos < index:
                if not self._cap.grab():
                    self._fail_short(index)
                self._pos += 1
            ok, frame = self._cap.read()
            if not ok or frame is None:
                self._fail_short(index)
            self._pos += 1
            if frame.shape[:2] != out.shape[1:3]:
                raise VideoError(self.path, f"frame {index} is {frame.shape[1]}x"
                                 f"{frame.shape[0]}, the header says {self.info.width}x"
                                 f"{self.info.height}", "unreadable")
            _to_rgb(frame, out[k])
        return out

    def read_all(self, max_frames: int | None = None) -> np.ndarray:
        """Every frame from the start (at most ``max_frames``) as uint8 ``T×H×W×3`` RGB."""
        if self._pos:
            self._rewind()
        frames = []
        while max_frames is None or len(frames) < max_frames:
            ok, frame = self._cap.read()
            if not ok or frame is None:
                break
            frames.append(_to_rgb(frame))
            self._pos += 1
        if not frames:
            raise VideoError(self.path, "the video has no decodable frames", "no-frames")
        if max_frames is None or len(frames) < max_frames:  # reached the real end
            self.info = VideoInfo(len(frames), self.info.fps, self.info.width, self.info.height)
        return np.stack(frames)

    def _fail_short(self, index: int) -> None:
        real = self._pos
        if real == 0:
            raise VideoError(self.path, "the video has no decodable frames", "no-frames")
        raise VideoError(
            self.path,
            f"frame {index} requested but decoding stops after {real} frames (header says "
            f"{self.info.frames}); the file is truncated or its frame count is wrong",
            "truncated", decoded_frames=real,
        )

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def video_info(path: str | Path) -> VideoInfo:
    """Header metadata of ``path`` (frame count decoded when the header has none)."""
    with VideoReader(path) as reader:
        return reader.info


def read_frames(path: str | Path, indices: Sequence[int],
                seek: bool = True) -> tuple[np.ndarray, VideoInfo]:
    """Frames ``indices`` of ``path`` (uint8 ``T×H×W×3`` RGB) and the video's metadata."""
    with VideoReader(path, seek=seek) as reader:
        return reader.read(indices), reader.info


def read_clip(path: str | Path, start: int, num_frames: int, stride: int = 1,
              seek: bool = True) -> tuple[np.ndarray, VideoInfo]:
    """Frames ``start, start + stride, ...`` (``num_frames`` of them), exactly.

    A frame past the real end of the video raises :class:`VideoError` (loop policies belong to
    the clip sampler).
    """
    if num_frames < 1 or stride < 1:
        raise VideoError(path, f"need num_frames >= 1 and stride >= 1, got {num_frames}, "
                         f"{stride}", "bad-request")
    return read_frames(path, range(start, start + num_frames * stride, stride), seek)


def read_video(path: str | Path, max_frames: int | None = None) -> tuple[np.ndarray, VideoInfo]:
    """The whole video (or its first ``max_frames`` frames) and its metadata.

    When the whole video is decoded, ``info.frames`` is the real decoded count.
    """
    with VideoReader(path) as reader:
        return reader.read_all(max_frames), reader.info
