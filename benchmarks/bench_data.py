"""Training-mode clips/s of one DataLoader worker (one process, one thread) on UCF-like files.

Writes UCF-101-like AVI files (320×240, 25 fps, MPEG-4 Part 2, ~150 frames) into a temporary
folder, then alternates, round after round, between:

- ``decode 16``: bare decode of a random 16-frame clip (stride 1), opening the file each time;
- ``decode train``: bare decode of the frames the training sampler picks (stride 1-4);
- ``transform``: the training augmentation alone on an already decoded clip (160×160);
- ``train item``: ``dataset[i]`` in training mode (decode + full augmentation at 160×160);
- ``test item``: ``dataset[i]`` in test mode (first 16 frames, resize, centre crop);
- ``train prepared``: ``dataset[i]`` in training mode from frames prepared by ``mict prepare``
  (256×192 JPEG, quality 90).

Prints the median clips/s over the rounds. Target: ``train item`` >= 120 clips/s per core.

    python benchmarks/bench_data.py [--videos 12] [--rounds 5] [--clips 40]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from mictnet.data import ClipSampler, VideoFolder, read_clip, read_frames, train_transform
from mictnet.data.cache import prepare_videos


def write_ucf_like(path: Path, frames: int, seed: int) -> None:
    """A textured background panning, a few moving discs and camera noise, like a UCF clip."""
    rng = np.random.default_rng(seed)
    width, height = 320, 240
    texture = rng.integers(0, 256, (height // 12, (width + 2 * frames) // 12, 3), np.uint8)
    background = cv2.resize(texture, (width + 2 * frames, height), interpolation=cv2.INTER_CUBIC)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"XVID"), 25, (width, height))
    movers = rng.uniform(0, 1, (3, 4))
    for t in range(frames):
        frame = np.ascontiguousarray(background[:, 2 * t:2 * t + width])
        for x, y, vx, vy in movers:
            centre = (int((x + 0.004 * t * vx) * width) % width,
                      int((y + 0.004 * t * vy) * height) % height)
            cv2.circle(frame, centre, 25, tuple(int(c) for c in rng.integers(0, 256, 3)), -1)
        noise = rng.integers(-2, 3, frame.shape, dtype=np.int16)
        writer.write(np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8))
    writer.release()


def rate(fn: Callable[[int], object], clips: int, offset: int) -> float:
    start = time.perf_counter()
    for i in range(clips):
        fn(offset + i)
    return clips / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clips", type=int, default=40, help="clips per method and round")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i in range(args.videos):
            (root / f"class{i % 3}").mkdir(exist_ok=True)
            write_ucf_like(root / f"class{i % 3}" / f"v{i:03d}.avi", args.frames, i)
        size_kb = np.mean([p.stat().st_size for p in root.rglob("*.avi")]) / 1024
        train = VideoFolder(root, train=True, seed=0)
        test = VideoFolder(root, train=False)
        cache = root / "prepared"
        prepare_videos([(p, str(Path(p).relative_to(root))) for p, _ in train.samples], cache,
                       progress=False)
        prepared = VideoFolder(root, train=True, seed=0, cache=cache)
        cache_kb = np.mean([p.stat().st_size for p in cache.rglob("*.jpgs")]) / 1024
        paths = [p for p, _ in train.samples]
        sampler = ClipSampler(16, "clip", train=True)
        rng = np.random.default_rng(0)
        transform = train_transform()
        decoded = torch.from_numpy(read_clip(paths[0], 0, 16)[0])
        g = torch.Generator().manual_seed(0)

        def decode16(i: int) -> object:
            start = int(rng.integers(0, args.frames - 16 + 1))
            return read_clip(paths[i % len(paths)], start, 16)

        def decode_train(i: int) -> object:
            (indices,) = sampler.clips(args.frames, g)
            return read_frames(paths[i % len(paths)], indices)

        methods = {
            "decode 16": decode16,
            "decode train": decode_train,
            "transform": lambda i: transform(decoded, generator=g),
            "train item": lambda i: train[i % len(train)],
            "test item": lambda i: test[i % len(test)],
            "train prepared": lambda i: prepared[i % len(prepared)],
        }
        results: dict[str, list[float]] = {name: [] for name in methods}
        for r in range(args.rounds):
            for name, fn in methods.items():
                results[name].append(rate(fn, args.clips, r * args.clips))

    print(f"{args.videos} UCF-like videos: 320x240, 25 fps, MPEG-4 (XVID) in AVI, "
          f"{args.frames} frames, {size_kb:.0f} KiB each; 1 process, 1 thread, "
          f"{args.rounds} interleaved rounds x {args.clips} clips; prepared frames "
          f"{cache_kb:.0f} KiB per video")
    print(f"{'method':<14} {'clips/s (median)':>17} {'min':>7} {'max':>7} {'ms/clip':>8}")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"{name:<14} {median:>17.1f} {min(values):>7.1f} {max(values):>7.1f} "
              f"{1000 / median:>8.2f}")


if __name__ == "__main__":
    main()
