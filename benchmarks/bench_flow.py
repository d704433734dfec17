"""Optical-flow frames/s per core of each ``mict prepare --flow`` method at 320×240 (UCF-101's
size), OpenCV on one thread, as one ``--workers`` process runs it.

The frames are a textured background panning under a few moving discs (UCF-like motion); each
method computes the flow of ``--frames`` consecutive pairs, ``--rounds`` times, and the median
frames/s is printed, with the flow's quantised storage cost (x, y JPEGs, quality 95). ``tvl1``
needs opencv-contrib-python-headless; without it the row says so. The ratio column is against
``farneback`` measured in the same run.

    python benchmarks/bench_flow.py [--frames 24] [--rounds 3]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import cv2
import numpy as np
import torch

from mictnet.data.flow import CONTRIB, METHODS, flow_estimator, quantise

SIZE = (320, 240)


def moving_frames(count: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` gray 240×320 frames: a panning texture and three moving discs."""
    rng = np.random.default_rng(seed)
    width, height = SIZE
    texture = cv2.resize(rng.integers(0, 256, (height // 8, (width + 3 * count) // 8), np.uint8),
                         (width + 3 * count, height), interpolation=cv2.INTER_CUBIC)
    frames = []
    for t in range(count):
        frame = np.ascontiguousarray(texture[:, 2 * t:2 * t + width])
        for k in range(3):
            centre = (40 + 90 * k + 4 * t, 60 + 50 * k - 3 * t * (k - 1))
            cv2.circle(frame, centre, 22, 60 * k + 40, -1)
        frames.append(frame)
    return frames


def frames_per_s(method: str, frames: list[np.ndarray], rounds: int) -> tuple[float, float]:
    """Median frames/s over ``rounds`` and the stored kilobytes per frame (x and y JPEGs)."""
    estimate = flow_estimator(method)
    speeds, flow = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        for a, b in zip(frames[:-1], frames[1:], strict=True):
            flow = estimate(a, b)
        speeds.append((len(frames) - 1) / (time.perf_counter() - start))
    q = quantise(flow)
    size = sum(len(cv2.imencode(".jpg", q[..., i], [cv2.IMWRITE_JPEG_QUALITY, 95])[1])
               for i in range(2))
    return statistics.median(speeds), size / 1024


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=24, help="frames per round (default 24)")
    p.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    args = p.parse_args(argv)
    cv2.setNumThreads(1)
    frames = moving_frames(args.frames)
    print(f"cpu: {cpu_name()} "
          f"({torch.backends.cpu.get_cpu_capability()}), OpenCV {cv2.__version__}, 1 thread, "
          f"{SIZE[0]}x{SIZE[1]}")
    results = {}
    for method in METHODS:
        try:
            results[method] = frames_per_s(method, frames, args.rounds)
        except RuntimeError:
            results[method] = None
    base = results["farneback"][0] if results.get("farneback") else None
    print(f"{'method':<10} {'frames/s/core':>14} {'vs farneback':>13} {'KB/frame':>9}")
    for method, got in results.items():
        if got is None:
            print(f"{method:<10} {'-':>14} {'-':>13} {'-':>9}  not installed (pip install "
                  f"{CONTRIB})")
            continue
        ratio = f"{got[0] / base:.2f}x" if base else "-"
        print(f"{method:<10} {got[0]:>14.1f} {ratio:>13} {got[1]:>9.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
