"""Frame-exact video decoding with OpenCV (FFmpeg inside the wheel).

Frames are decoded forward: ``grab()`` skips short gaps (it decodes without colour conversion)
and OpenCV's frame seek (to the preceding key frame, then decoding forward to the exact frame)
jumps over long ones. ``seek=False`` decodes strictly sequentially from the first frame. Both are
frame-exact against a full decode, also on AVI files with B-frames (see ``tests/test_decode.py``).
Frames come back as uint8 RGB ``T×H×W×3`` arrays, also from grayscale videos.

The frame count in a file's header can be wrong (truncated files). The reader handles it in one
place: a wanted frame past the real end is looked for again by sequential decoding, which finds
the real end; ``info.frames`` becomes the real count (``info.header_frames`` keeps the header's)
and :class:`VideoError` (``truncated``) is raised. :meth:`VideoReader.read_clips` then plans its
clips again on the real count; :meth:`VideoReader.check_end` decodes the last frames the header
claims, so a truncated file is known before any clip is chosen (``mict check``, prediction).

``VideoReader(path, shrink_to=(W, H))`` resizes frames larger than ``W×H`` to it as each is
decoded (prediction: the model's resize), so memory follows the model's input, not the file's
frame size; ``check`` is called once per decoded frame (a time budget raises there).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

DECODE_THREADS = 1  # FFmpeg decoder threads per open file: one per DataLoader worker core
SEEK_MIN_GAP = 8  # seek instead of grabbing when the next wanted frame is further ahead
END_FRAMES = 2  # frames decoded at the end by VideoReader.check_end


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
    """Video metadata: fps, size and frame counts.

    ``frames`` is the usable count: the header's until a decode proves fewer (or counted by
    decoding when the header has none); ``header_frames`` is what the header claims (``None``:
    no count in the header).
    """

    frames: int
    fps: float
    width: int
    height: int
    header_frames: int | None = None

    @property
    def truncated(self) -> bool:
        """Fewer frames decode than the header claims (known once the end was decoded)."""
        return self.header_frames is not None and self.frames < self.header_frames

    def warning(self, clip_frames: int | None = None) -> str | None:
        """Why these frames are suspect: fewer decode than the header claims, a single frame (a
        still image), or fewer than one clip of ``clip_frames``; ``None`` when nothing is."""
        found = []
        if self.truncated:
            found.append(f"header says {self.header_frames} frames but only {self.frames} "
                         "decode (truncated file or wrong frame count)")
        if self.frames == 1:
            found.append("a single frame (a still image, not a video)")
        if clip_frames is not None and self.frames < clip_frames:
            found.append(f"{self.frames} frame{'s' if self.frames > 1 else ''}, fewer than one "
                         f"clip of {clip_frames} (looped)")
        return "; ".join(found) or None


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
    """One open video file, read forward; reopens itself when asked for an earlier frame.

    Frames come back at the file's size, or at ``shrink_to`` (width, height) when the file's
    are larger on either side; ``check()``, when given, runs before each decoded frame.
    """

    def __init__(self, path: str | Path, threads: int = DECODE_THREADS, seek: bool = True,
                 shrink_to: tuple[int, int] | None = None,
                 check: Callable[[], None] | None = None) -> None:
        self.path = str(path)
        self.threads = threads
        self.seek = seek
        self._check = check or (lambda: None)
        _check_file(self.path)
        self._cap = self._open()
        header_frames = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(self._cap.get(cv2.CAP_PROP_FPS))
        if width <= 0 or height <= 0:
            self.close()
            raise VideoError(path, "not a readable video (no frame size)", "unreadable")
        self._pos = 0
        self._sought = False  # a seek since the last rewind: the position is not a count
        self.info = VideoInfo(header_frames, fps, width, height, header_frames)
        large = shrink_to is not None and (width > shrink_to[0] or height > shrink_to[1])
        self.size = tuple(shrink_to) if large else (width, height)  # of the frames returned
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
        self._sought = False

    def _count_frames(self) -> int:
        self._rewind()
        n = 0
        while True:
            self._check()
            if not self._cap.grab():
                break
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
        except _SeekMissed:
            self._rewind()
            decoded = self._decode(wanted, False)  # find the real end by decoding from 0
        if list(indices) == wanted:
            return decoded
        row = {index: k for k, index in enumerate(wanted)}
        return decoded[[row[i] for i in indices]]

    def read_clips(self, plan: Callable[[int], Sequence[Sequence[int]]]) -> list[np.ndarray]:
        """The clips ``plan(frame count)`` lists, decoded together, one array per clip.

        When decoding proves the file shorter than its header says, ``info.frames`` becomes the
        real count and the clips are planned again on it (the truncated-file retry).
        """
        clips = plan(self.info.frames)
        try:
            frames = self.read([i for clip in clips for i in clip])
        except VideoError as err:
            if err.reason != "truncated":
                raise
            clips = plan(self.info.frames)
            frames = self.read([i for clip in clips for i in clip])
        return split_clips(frames, clips)

    def check_end(self, frames: int = END_FRAMES) -> VideoInfo:
        """Decode the last ``frames`` frames the header claims, so that ``info.frames`` is the
        real count (``info.truncated`` tells a truncated file); returns ``info``."""
        end = self.info.frames
        if self.info.header_frames is not None:
            try:
                self.read(range(max(end - frames, 0), end))
            except VideoError as err:
                if err.reason != "truncated":
                    raise
        return self.info

    def _decode(self, wanted: list[int], seek: bool) -> np.ndarray:
        """Frames ``wanted`` (sorted, unique) into one preallocated array."""
        if wanted[0] < self._pos:
            self._rewind()
        out = np.empty((len(wanted), self.size[1], self.size[0], 3), np.uint8)
        for k, index in enumerate(wanted):
            self._check()
            if seek and index - self._pos > SEEK_MIN_GAP and index < self.info.frames:
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, index)
                self._sought = True
                if int(self._cap.get(cv2.CAP_PROP_POS_FRAMES)) != index:
                    raise _SeekMissed  # landed elsewhere (past a truncated file's end)
                self._pos = index
            while self._pos < index:
                self._check()
                if not self._cap.grab():
                    self._fail_short(index)
                self._pos += 1
            ok, frame = self._cap.read()
            if not ok or frame is None:
                self._fail_short(index)
            self._pos += 1
            if frame.shape[:2] != (self.info.height, self.info.width):
                raise VideoError(self.path, f"frame {index} is {frame.shape[1]}x"
                                 f"{frame.shape[0]}, the header says {self.info.width}x"
                                 f"{self.info.height}", "unreadable")
            _to_rgb(self._shrunk(frame), out[k])
        return out

    def read_all(self, max_frames: int | None = None) -> np.ndarray:
        """Every frame from the start (at most ``max_frames``) as uint8 ``T×H×W×3`` RGB."""
        if self._pos:
            self._rewind()
        frames = []
        while max_frames is None or len(frames) < max_frames:
            self._check()
            ok, frame = self._cap.read()
            if not ok or frame is None:
                break
            frames.append(_to_rgb(self._shrunk(frame)))
            self._pos += 1
        if not frames:
            raise VideoError(self.path, "the video has no decodable frames", "no-frames")
        if max_frames is None or len(frames) < max_frames:  # reached the real end
            self.info = replace(self.info, frames=len(frames))
        return np.stack(frames)

    def _shrunk(self, frame: np.ndarray) -> np.ndarray:
        """``frame`` at :attr:`size` (area interpolation: each output pixel averages its
        source pixels)."""
        if frame.shape[1::-1] == self.size:
            return frame
        return cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)

    def _fail_short(self, index: int) -> None:
        """Decoding stopped before frame ``index``: the real end, found by sequential decoding."""
        if self._sought:
            raise _SeekMissed
        real = self._pos
        if real == 0:
            raise VideoError(self.path, "the video has no decodable frames", "no-frames")
        self.info = replace(self.info, frames=real)
        problem = f"frame {index} requested but decoding stops after {real} frames"
        if self.info.truncated:
            problem += (f" (header says {self.info.header_frames}); the file is truncated or its "
                        "frame count is wrong")
        raise VideoError(self.path, problem, "truncated", decoded_frames=real)

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _SeekMissed(Exception):
    """Decoding stopped after a seek: the real end is looked for by sequential decoding."""


def _check_file(path: str) -> None:
    """Raise :class:`VideoError` unless ``path`` is a non-empty file."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise VideoError(path, "no such file", "missing") from None
    except OSError as err:
        raise VideoError(path, f"cannot access the file ({err.strerror})", "missing") from None
    if stat.S_ISDIR(info.st_mode):
        raise VideoError(path, "is a directory, not a video file", "unreadable")
    if info.st_size == 0:
        raise VideoError(path, "the file is empty (0 bytes)", "empty")


def split_clips(frames: np.ndarray, clips: Sequence[Sequence[int]]) -> list[np.ndarray]:
    """``frames`` read for the concatenated ``clips``, one array per clip."""
    bounds = np.cumsum([0] + [len(clip) for clip in clips])
    return [frames[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def video_info(path: str | Path, check_end: bool = False) -> VideoInfo:
    """Metadata of ``path`` (frame count decoded when the header has none); ``check_end``
    decodes its last frames too, so that a truncated file shows (``info.truncated``)."""
    with VideoReader(path) as reader:
        return reader.check_end() if check_end else reader.info


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
