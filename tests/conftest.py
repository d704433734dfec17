"""Shared test fixtures: real video files written with OpenCV, the seed and the recorded value of
a training-outcome test."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

# The CPU precision reading is cached per machine: the suite keeps its own, apart from the user's.
os.environ["MICTNET_PRECISION_CACHE"] = str(
    Path(tempfile.mkdtemp(prefix="mict-test-precision-")) / "precision.json")
SEED_ENV = "MICTNET_TEST_SEED"

# Under pytest-xdist (``make test`` runs ``-n auto``) the workers share the cores: each worker and
# the processes it starts get their share of threads, not every core each (oversubscribed OpenMP
# threads spin against each other).
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    _threads = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ["OMP_NUM_THREADS"] = str(_threads)
    torch.set_num_threads(_threads)


@pytest.fixture(scope="session")
def outcome_seed() -> int:
    """The seed of a training-outcome test: 0, or ``$MICTNET_TEST_SEED`` (the margin grid,
    ``benchmarks/test_margins.py``, runs 0, 1 and 2)."""
    return int(os.environ.get(SEED_ENV, "0"))


@pytest.fixture
def outcome(record_property) -> Callable[..., None]:
    """``outcome(name, value, at_least=None, at_most=None)``: record a measured training
    outcome with its threshold (as a JUnit XML property, which the margin grid reads) and
    assert it."""

    def check(name: str, value: float, at_least: float | None = None,
              at_most: float | None = None) -> None:
        assert (at_least is None) != (at_most is None), "one threshold"
        bound = at_least if at_most is None else at_most
        record_property(f"outcome:{name}", f"{value:.6g} {'>=' if at_most is None else '<='} "
                                           f"{bound:.6g}")
        if at_least is not None:
            assert value >= at_least, f"{name} {value:.4g} < {at_least:.4g}"
        else:
            assert value <= at_most, f"{name} {value:.4g} > {at_most:.4g}"

    return check


def synthetic_frames(count: int, size: tuple[int, int] = (64, 48), seed: int = 0) -> np.ndarray:
    """``count`` smooth, distinct RGB frames (a drifting textured background and a moving disc)."""
    width, height = size
    rng = np.random.default_rng(seed)
    texture = (rng.random((height // 4 + 2, (width + 2 * count) // 4 + 2, 3)) * 255)
    background = cv2.resize(texture.astype(np.uint8), ((width + 2 * count), height),
                            interpolation=cv2.INTER_CUBIC)
    frames = []
    for t in range(count):
        frame = np.ascontiguousarray(background[:, 2 * t:2 * t + width])
        centre = (int(width * (0.2 + 0.6 * t / max(count - 1, 1))), height // 2)
        cv2.circle(frame, centre, max(2, height // 6), (255, 40, 40), -1)
        frames.append(frame)
    return np.stack(frames)


def decode_all_frames(path: str | Path) -> np.ndarray:
    """Every frame by a plain OpenCV read loop, RGB: the ground truth for decoding tests."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    return np.stack(frames)


@pytest.fixture
def make_video() -> Callable[..., Path]:
    """``make_video(path, frames, size=(w, h), fourcc="XVID", fps=25, color=True)``.

    ``frames`` is a frame count (content from :func:`synthetic_frames`) or a uint8 ``T×H×W×3``
    RGB array. Returns the path; fails the test if OpenCV cannot write the format.
    """

    def write(path: str | Path, frames: int | np.ndarray, size: tuple[int, int] = (64, 48),
              fourcc: str = "XVID", fps: float = 25, color: bool = True) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(frames, int):
            frames = synthetic_frames(frames, size)
        height, width = frames.shape[1:3]
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps,
                                 (width, height), color)
        if not writer.isOpened():
            pytest.fail(f"OpenCV cannot write {fourcc} to {path.suffix}")
        for frame in frames:
            bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
            writer.write(bgr if color else cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
        writer.release()
        return path

    return write
