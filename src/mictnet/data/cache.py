"""Prepared frames (``mict prepare``): every frame resized once and stored as JPEG, one file per
video, so that a training clip decodes only its own frames (no key-frame seek, no skipped frames).

File format (``<cache>/<video path relative to the root>.jpgs``): the magic ``MICTJPG1``, a
uint32 length and a JSON header (frames, fps, size, source size and mtime, JPEG quality), then
``frames + 1`` uint64 offsets, then the JPEG data. JPEG is lossy: cached frames differ slightly
from the decoded video (quality 90 by default).
"""

from __future__ import annotations

import json
import logging
import os
import struct
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .decode import VideoError, VideoInfo, read_video, split_clips
from .transforms import RESIZE

log = logging.getLogger(__name__)
MAGIC = b"MICTJPG1"
SUFFIX = ".jpgs"


def cache_path(cache_dir: str | Path, relative: str) -> Path:
    """Where the prepared frames of the video at ``relative`` (to its root) live."""
    return Path(cache_dir) / (relative + SUFFIX)


def source_stamp(source: str | Path) -> dict:
    stat = os.stat(source)
    return {"source_size": stat.st_size, "source_mtime_ns": stat.st_mtime_ns}


def write_prepared(source: str | Path, target: str | Path, size: tuple[int, int] = RESIZE,
                   quality: int = 90) -> VideoInfo:
    """Decode ``source``, resize every frame to ``size`` (width, height), write ``target``.

    Returns the source's metadata (``frames``: the decoded count; ``truncated`` when its header
    claims more). Written to a temp file and renamed, so a crash leaves no
    partial file.
    """
    frames, info = read_video(source)
    encoded = []
    for frame in frames:
        small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise VideoError(source, "JPEG encoding failed", "unreadable")
        encoded.append(data.tobytes())
    write_container(target, MAGIC, {"frames": len(encoded), "fps": info.fps, "width": size[0],
                                    "height": size[1], "quality": quality,
                                    **source_stamp(source)}, encoded)
    return info


def write_container(target: str | Path, magic: bytes, header: dict, blobs: Sequence[bytes]
                    ) -> None:
    """``magic``, the JSON ``header``, ``len(blobs) + 1`` offsets and the ``blobs``, written to
    a temp file and renamed (a crash leaves no partial file). ``header["entries"]`` holds the
    blob count where it is not ``header["frames"]``."""
    data = json.dumps(header).encode()
    offsets = np.cumsum([0] + [len(b) for b in blobs], dtype=np.uint64)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(magic + struct.pack("<I", len(data)) + data + offsets.tobytes())
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, target)


def read_header(path: str | Path, magic: bytes = MAGIC) -> dict:
    """The JSON header of a prepared file (raises :class:`VideoError` when it is not one)."""
    with open(path, "rb") as f:
        return read_container(f, path, magic)[0]


def read_container(f, path: str | Path, magic: bytes = MAGIC) -> tuple[dict, np.ndarray]:
    """The header and blob offsets of a file :func:`write_container` wrote."""
    start = f.read(12)
    if len(start) < 12 or start[:8] != magic:
        raise VideoError(path, "not a prepared-frames file (run mict prepare again)",
                         "unreadable")
    (length,) = struct.unpack("<I", start[8:])
    try:
        header = json.loads(f.read(length))
        count = int(header.get("entries", header["frames"]))
    except (ValueError, KeyError) as err:
        raise VideoError(path, f"damaged header ({err})", "unreadable") from None
    offsets = np.frombuffer(f.read(8 * (count + 1)), np.uint64)
    if len(offsets) != count + 1:
        raise VideoError(path, "truncated prepared-frames file", "truncated")
    return header, offsets.astype(np.int64) + f.tell()


class ContainerReader:
    """A prepared container file (:func:`write_container`) read with the interface of
    :class:`~mictnet.data.decode.VideoReader`; subclasses decode their entries in ``read``."""

    magic: bytes = MAGIC
    missing: str = "no prepared frames (run mict prepare)"

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            self._file = open(self.path, "rb")  # noqa: SIM115 (closed by close())
        except FileNotFoundError:
            raise VideoError(path, self.missing, "missing") from None
        try:
            self.header, self._offsets = read_container(self._file, path, self.magic)
        except VideoError:
            self._file.close()
            raise
        self.info = VideoInfo(int(self.header["frames"]), float(self.header["fps"]),
                              int(self.header["width"]), int(self.header["height"]))

    def _entry(self, index: int) -> np.ndarray:
        """The bytes of entry ``index``."""
        self._file.seek(self._offsets[index])
        data = self._file.read(int(self._offsets[index + 1] - self._offsets[index]))
        return np.frombuffer(data, np.uint8)

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.info.frames:
            raise VideoError(self.path, f"frame {index} requested but the video has "
                             f"{self.info.frames} frames", "bad-request")

    def read(self, indices: Sequence[int]) -> np.ndarray:
        raise NotImplementedError

    def read_clips(self, plan: Callable[[int], Sequence[Sequence[int]]]) -> list[np.ndarray]:
        """The clips ``plan(frame count)`` lists, one array per clip (the count is exact)."""
        clips = plan(self.info.frames)
        return split_clips(self.read([i for clip in clips for i in clip]), clips)

    def read_all(self, max_frames: int | None = None) -> np.ndarray:
        count = self.info.frames if max_frames is None else min(max_frames, self.info.frames)
        return self.read(range(count))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ContainerReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PreparedReader(ContainerReader):
    """Reads a prepared-frames file: frames are uint8 ``T×H×W×3`` RGB."""

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Frames ``indices`` as uint8 ``T×H×W×3`` RGB."""
        out = np.empty((len(indices), self.info.height, self.info.width, 3), np.uint8)
        for k, index in enumerate(indices):
            self._check_index(index)
            frame = cv2.imdecode(self._entry(index), cv2.IMREAD_COLOR)
            if frame is None or frame.shape[:2] != out.shape[1:3]:
                raise VideoError(self.path, f"frame {index} is damaged", "unreadable")
            cv2.cvtColor(frame, cv2.COLOR_BGR2RGB, dst=out[k])
        return out


@dataclass
class PrepareReport:
    """What :func:`prepare_videos` did: files written, up to date already, failures, and
    ``warnings`` about videos written all the same (truncated, a single frame)."""

    written: int = 0
    up_to_date: int = 0
    frames: int = 0
    failed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _is_current(source: str, target: Path, size: tuple[int, int], quality: int) -> bool:
    try:
        header = read_header(target)
    except (OSError, VideoError):
        return False
    wanted = {"width": size[0], "height": size[1], "quality": quality, **source_stamp(source)}
    return all(header.get(k) == v for k, v in wanted.items())


def _prepare_one(job: tuple[str, str, tuple[int, int], int]
                 ) -> tuple[int, str | None, str | None]:
    """``(frames, failure, warning)`` of one video."""
    source, target, size, quality = job
    try:
        info = write_prepared(source, target, size, quality)
    except VideoError as err:
        return 0, str(err), None
    warning = info.warning()
    return info.frames, None, f"{source}: {warning}" if warning else None


def prepare_videos(videos: Sequence[tuple[str, str]], cache_dir: str | Path,
                   size: tuple[int, int] = RESIZE, quality: int = 90, workers: int = 1,
                   progress: bool = True) -> PrepareReport:
    """Prepare ``(source path, path relative to the root)`` videos under ``cache_dir``; files
    whose source, size and quality did not change are kept."""
    report = PrepareReport()
    jobs = []
    for source, relative in videos:
        target = cache_path(cache_dir, relative)
        if os.path.exists(source) and _is_current(source, target, size, quality):
            report.up_to_date += 1
        else:
            jobs.append((source, str(target), tuple(size), quality))
    bar = tqdm(total=len(jobs), desc="preparing frames", unit="video", disable=not progress)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = pool.map(_prepare_one, jobs, chunksize=4)
            collect_results(report, results, bar)
    else:
        collect_results(report, map(_prepare_one, jobs), bar)
    bar.close()
    return report


def collect_results(report: PrepareReport, results, bar: tqdm) -> None:
    """Count ``(frames, failure, warning)`` results into ``report``, one bar step each."""
    for frames, problem, warning in results:
        if problem:
            report.failed.append(problem)
        else:
            report.written += 1
            report.frames += frames
        if warning:
            report.warnings.append(warning)
            log.warning("warning: %s", warning)
        bar.update()
