"""Optical flow (``mict prepare --flow``): every pair of consecutive frames of a video, resized as
the frame cache is, gives one flow field, stored beside the prepared frames.

As MMAction2's ``tools/misc/flow_extraction.py``: the flow (pixels per frame at the stored size)
is clipped to ±``bound`` (20), mapped to uint8 (``round((f + bound) · 255 / (2 · bound))``) and
its x and y stored as grayscale JPEGs. Methods: ``dis`` and ``farneback`` (OpenCV's main module)
and ``tvl1`` (OpenCV's contrib modules, ``opencv-contrib-python-headless``).

File format (``<cache>/<video path relative to the root>.flow``): the magic ``MICTFLO1``, a JSON
header (``frames``: the video's decoded frame count; ``entries``: ``2 · (frames - 1)`` JPEGs,
x then y of each field; method, bound, size, JPEG quality, the source's size and mtime), the
offsets, the JPEGs. Frame ``i`` of a flow clip is the field from frame ``i`` to ``i + 1`` (the
last frame repeats the last field), so flow clips are indexed as RGB clips are.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .cache import (
    ContainerReader,
    PrepareReport,
    collect_results,
    read_header,
    source_stamp,
    write_container,
)
from .decode import VideoError, VideoInfo, read_video
from .transforms import RESIZE

MAGIC = b"MICTFLO1"
SUFFIX = ".flow"
METHODS = ("dis", "farneback", "tvl1")
BOUND = 20.0  # pixels per frame, MMAction2's and TSN's clip bound
CONTRIB = "opencv-contrib-python-headless"


def flow_path(cache_dir: str | Path, relative: str) -> Path:
    """Where the flow of the video at ``relative`` (to its root) lives."""
    return Path(cache_dir) / (relative + SUFFIX)


def flow_estimator(method: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``estimate(previous, next)``: the ``H×W×2`` float32 flow between two uint8 gray frames.

    ``tvl1`` without OpenCV's contrib modules is a ``RuntimeError`` naming the package (no
    silent fallback to another method)."""
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return lambda prev, nxt: dis.calc(prev, nxt, None)
    if method == "farneback":
        return lambda prev, nxt: cv2.calcOpticalFlowFarneback(prev, nxt, None, 0.5, 3, 15, 3, 5,
                                                              1.2, 0)
    if method == "tvl1":
        if not hasattr(cv2, "optflow"):
            raise RuntimeError(f"--flow tvl1 needs OpenCV's contrib modules (cv2.optflow), "
                               f"which OpenCV {cv2.__version__} here lacks: pip install "
                               f"{CONTRIB} (it replaces opencv-python-headless), or use "
                               "--flow dis or farneback")
        tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
        return lambda prev, nxt: tvl1.calc(prev, nxt, None)
    raise ValueError(f"unknown flow method {method!r}; choose one of {', '.join(METHODS)}")


def quantise(flow: np.ndarray, bound: float = BOUND) -> np.ndarray:
    """Flow in pixels -> uint8, ±``bound`` mapped to 0..255 (values beyond it clipped)."""
    scaled = (np.clip(flow, -bound, bound) + bound) * (255 / (2 * bound))
    return np.rint(scaled).astype(np.uint8)


def dequantise(data: np.ndarray, bound: float = BOUND) -> np.ndarray:
    """uint8 flow -> pixels (float32): the inverse of :func:`quantise` up to its rounding."""
    return data.astype(np.float32) * (2 * bound / 255) - bound


def video_flow(frames: np.ndarray, method: str, size: tuple[int, int] = RESIZE,
               bound: float = BOUND) -> np.ndarray:
    """uint8 ``(T-1)×H×W×2`` flow of ``T×h×w×3`` RGB ``frames`` resized to ``size`` (width,
    height)."""
    if len(frames) < 2:
        raise ValueError(f"optical flow needs at least 2 frames, got {len(frames)}")
    estimate = flow_estimator(method)
    gray = [cv2.cvtColor(cv2.resize(f, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
            for f in frames]
    pairs = zip(gray[:-1], gray[1:], strict=True)
    return np.stack([quantise(estimate(a, b), bound) for a, b in pairs])


def write_flow(source: str | Path, target: str | Path, method: str = "dis",
               size: tuple[int, int] = RESIZE, bound: float = BOUND, quality: int = 95
               ) -> VideoInfo:
    """Decode ``source``, compute its flow, write ``target`` (temp file and rename); returns the
    source's metadata."""
    frames, info = read_video(source)
    if len(frames) < 2:
        raise VideoError(source, f"{len(frames)} frame(s): optical flow needs 2 or more",
                         "no-frames")
    blobs = []
    for field in video_flow(frames, method, size, bound):
        for axis in range(2):
            ok, data = cv2.imencode(".jpg", field[..., axis], [cv2.IMWRITE_JPEG_QUALITY, quality])
            if not ok:
                raise VideoError(source, "JPEG encoding of its flow failed", "unreadable")
            blobs.append(data.tobytes())
    write_container(target, MAGIC, {"frames": len(frames), "entries": len(blobs),
                                    "method": method, "bound": bound, "width": size[0],
                                    "height": size[1], "quality": quality, "fps": info.fps,
                                    **source_stamp(source)}, blobs)
    return info


def read_flow_header(path: str | Path) -> dict:
    """The JSON header of a flow file (a :class:`VideoError` when it is not one)."""
    return read_header(path, MAGIC)


class FlowReader(ContainerReader):
    """Reads a flow file: frames are uint8 ``T×H×W×2`` (x, y), frame ``i`` the flow from frame
    ``i`` to ``i + 1``."""

    magic = MAGIC
    missing = "no optical flow (run mict prepare --flow)"

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self.bound = float(self.header["bound"])
        self.method = str(self.header["method"])

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Flow frames ``indices`` as uint8 ``T×H×W×2``."""
        out = np.empty((len(indices), self.info.height, self.info.width, 2), np.uint8)
        for k, index in enumerate(indices):
            self._check_index(index)
            field = min(index, self.info.frames - 2)
            for axis in range(2):
                plane = cv2.imdecode(self._entry(2 * field + axis), cv2.IMREAD_GRAYSCALE)
                if plane is None or plane.shape != out.shape[1:3]:
                    raise VideoError(self.path, f"flow of frame {index} is damaged",
                                     "unreadable")
                out[k, ..., axis] = plane
        return out


def flow_problem(source: str, target: str | Path, frames: int | None = None) -> str | None:
    """Why the flow file ``target`` does not fit the video ``source`` (missing, not a flow
    file, written from an older version of it, another frame count than its ``frames``), or
    ``None``."""
    try:
        header = read_flow_header(target)
    except FileNotFoundError:
        return f"{target}: no optical flow for {source} (run mict prepare --flow)"
    except VideoError as err:
        return str(err)
    if any(header.get(k) != v for k, v in source_stamp(source).items()):
        return f"{target}: written from an older version of {source} (run mict prepare again)"
    if header.get("entries") != 2 * (header["frames"] - 1):
        return f"{target}: damaged header (run mict prepare again)"
    if frames is not None and header["frames"] != frames:
        return (f"{target}: flow of {header['frames']} frames but {source} has {frames} "
                "(run mict prepare again)")
    return None


def _is_current(source: str, target: Path, wanted: dict) -> bool:
    try:
        header = read_flow_header(target)
    except (OSError, VideoError):
        return False
    whole = header.get("entries") == 2 * (header.get("frames", 0) - 1)
    return whole and all(header.get(k) == v for k, v in (wanted | source_stamp(source)).items())


def _flow_one(job: tuple[str, str, str, tuple[int, int], float, int]
              ) -> tuple[int, str | None, str | None]:
    """``(frames, failure, warning)`` of one video, single-threaded OpenCV (one per worker)."""
    source, target, method, size, bound, quality = job
    cv2.setNumThreads(1)
    try:
        info = write_flow(source, target, method, size, bound, quality)
    except VideoError as err:
        return 0, str(err), None
    warning = info.warning()
    return info.frames, None, f"{source}: {warning}" if warning else None


def prepare_flow(videos: Sequence[tuple[str, str]], cache_dir: str | Path, method: str = "dis",
                 size: tuple[int, int] = RESIZE, bound: float = BOUND, quality: int = 95,
                 workers: int = 1, progress: bool = True) -> PrepareReport:
    """Write the flow of ``(source path, path relative to the root)`` videos under
    ``cache_dir``; files of the same source, method, bound, size and quality are kept, so an
    interrupted run resumes where it stopped."""
    flow_estimator(method)  # a missing TV-L1 is an error before any work
    report = PrepareReport()
    wanted = {"method": method, "bound": bound, "width": size[0], "height": size[1],
              "quality": quality}
    jobs = []
    for source, relative in videos:
        target = flow_path(cache_dir, relative)
        if os.path.exists(source) and _is_current(source, target, wanted):
            report.up_to_date += 1
        else:
            jobs.append((source, str(target), method, tuple(size), bound, quality))
    bar = tqdm(total=len(jobs), desc=f"optical flow ({method})", unit="video",
               disable=not progress)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            collect_results(report, pool.map(_flow_one, jobs), bar)
    else:
        threads = cv2.getNumThreads()
        try:
            collect_results(report, map(_flow_one, jobs), bar)
        finally:
            cv2.setNumThreads(threads)
    bar.close()
    return report

