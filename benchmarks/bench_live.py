"""Live inference on the CPU: the incremental pass against re-running a window, in one run.

For mict_resnet18 (temporal stride 4: a step every 4 frames) at 112² and 160², fp32 and bf16
where :mod:`mictnet.engine.precision` says it is native:

- ``stream``: frames pushed ``--chunk`` at a time (default 4, a step's worth) into
  :class:`~mictnet.models.streaming.StreamingModel`
  (each frame computed once); sustained frames/s and the per-step compute latency (the
  ``push`` that completes a step, deferring the work for later steps to ``precompute``
  before the next push, as ``mict live`` does while no frame waits);
- ``window``: a 16-frame window re-run every 4 frames (what webcam demos do); the compute
  per second of video is 1/4 window per frame.

- ``timeline``: ``Predictor.timeline`` of a 12 s 320×240 file, the single incremental pass
  against one 16-frame window per second (seconds each, in the same run).

Both run the same weights with the batch norms folded (the stream folds its own copy). Prints
frames/s, latency and the compute ratio per second of video (window / stream, CPU time), beside
its ceiling in FLOPs (``torch.utils.flop_counter`` on the offline pass): a window computes each
frame four times, but its last frames' look-ahead falls past its end and is skipped, so a
window costs less per frame than the exact stream, which equals the offline pass over the whole
video; at equal kernel speed the time ratio is that FLOP ratio. Targets:
>= 25 frames/s at 160² fp32 on 2 cores with latency <= 1 s (look-ahead included, at 25 fps),
>= 4x less compute per second of video than the window re-runs.

    python benchmarks/bench_live.py [--threads 2] [--frames 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from mictnet.engine.checkpoint import CheckpointMeta
from mictnet.engine.precision import autocast, cpu_name, is_native
from mictnet.inference import Predictor
from mictnet.models import build_model, fuse_conv_bn
from mictnet.models.streaming import StreamingModel

WINDOW, EVERY = 16, 4


def stream_round(model, frames: torch.Tensor, chunk: int) -> tuple[float, list[float], int]:
    """Seconds for all frames, the step-emitting pushes' seconds, the look-ahead in frames
    (from a step's last frame to the frame whose arrival completes it). As in ``mict live``,
    each push computes only what its steps need and ``precompute`` the rest before the next."""
    stream = StreamingModel(model)
    latencies, lag = [], 0
    start = time.perf_counter()
    for t in range(0, frames.shape[2], chunk):
        t0 = time.perf_counter()
        steps = stream.push(frames[:, :, t:t + chunk], defer=True).shape[1]
        if steps:
            latencies.append(time.perf_counter() - t0)
            lag = min(t + chunk, frames.shape[2]) - stream.steps * stream.period
        stream.precompute()
    return time.perf_counter() - start, latencies, lag


def window_round(model, frames: torch.Tensor) -> float:
    """Seconds per window of WINDOW frames."""
    runs = max(1, (frames.shape[2] - WINDOW) // EVERY)
    start = time.perf_counter()
    for i in range(runs):
        model(frames[:, :, i * EVERY:i * EVERY + WINDOW])
    return (time.perf_counter() - start) / runs


def flop_ratio(model, size: int) -> float:
    """FLOPs of a 16-frame window over the stream's FLOPs for 4 frames (the offline pass's
    cost per added frame, which the exact stream pays)."""
    def flops(frames: int) -> int:
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, 3, frames, size, size))
        return counter.get_total_flops()

    per_frame = (flops(4 * WINDOW) - flops(2 * WINDOW)) / (2 * WINDOW)
    return flops(WINDOW) / (EVERY * per_frame)


def timeline_seconds(model, rounds: int) -> tuple[float, float]:
    """Median seconds of the streamed and the windowed timeline of a 12 s, 25 fps file."""
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "long.avi")
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 240))
        for t in range(300):
            frame = np.full((240, 320, 3), 40, np.uint8)
            cv2.circle(frame, (20 + t % 280, 120), 24, (int(rng.integers(100, 255)), 60, 60), -1)
            writer.write(frame)
        writer.release()
        meta = CheckpointMeta(model.spec, [f"c{i}" for i in range(101)], (16, 160, 160))
        predictor = Predictor(model, meta)
        times: dict[str, list[float]] = {"stream": [], "windows": []}
        for _ in range(rounds):
            for method in times:
                start = time.perf_counter()
                predictor.timeline(path, method=method)
                times[method].append(time.perf_counter() - start)
    return statistics.median(times["stream"]), statistics.median(times["windows"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=EVERY, help="frames per push")
    parser.add_argument("--fps", type=float, default=25.0, help="source rate for the latency")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = build_model("mict_resnet18", num_classes=101, temporal_stride=EVERY).eval()
    folded = fuse_conv_bn(copy.deepcopy(model))  # what the stream runs
    dtypes = [torch.float32] + ([torch.bfloat16] if is_native(torch.bfloat16,
                                                             torch.device("cpu")) else [])
    print(f"CPU: {cpu_name()}, {args.threads} threads; mict_resnet18, a step every {EVERY} "
          f"frames, {args.chunk} frame(s) per push")
    print(f"{'size':>5} {'dtype':>9} {'stream f/s':>10} {'step ms':>8} {'lookahead':>9} "
          f"{'latency s':>9} {'window ms':>9} {'window f/s':>10} {'compute ratio':>13} "
          f"{'FLOP ratio':>10}")
    for size in (112, 160):
        frames = torch.randn(1, 3, args.frames, size, size)
        ceiling = flop_ratio(model, size)
        for dtype in dtypes:
            fps, steps, windows, lag = [], [], [], 0
            with torch.inference_mode(), autocast(torch.device("cpu"),
                                                  None if dtype == torch.float32 else dtype):
                stream_round(model, frames[:, :, :24], args.chunk)  # warm-up
                window_round(folded, frames[:, :, :WINDOW + EVERY])
                for _ in range(args.rounds):  # interleaved rounds
                    seconds, latencies, lag = stream_round(model, frames, args.chunk)
                    fps.append(frames.shape[2] / seconds)
                    steps.append(statistics.median(latencies))
                    windows.append(window_round(folded, frames))
            f, step, window = statistics.median(fps), statistics.median(steps), \
                statistics.median(windows)
            latency = lag / args.fps + step  # look-ahead frames at the source rate + compute
            ratio = window / EVERY * f  # window seconds per frame / stream seconds per frame
            print(f"{size:>5} {str(dtype).split('.')[1]:>9} {f:>10.1f} {step * 1e3:>8.1f} "
                  f"{lag:>6d} fr {latency:>9.2f} {window * 1e3:>9.1f} {EVERY / window:>10.1f} "
                  f"{ratio:>12.2f}x {ceiling:>9.2f}x")
    streamed, windowed = timeline_seconds(model, args.rounds)
    print(f"timeline of a 12 s 25 fps video at 160² fp32: one pass over all 300 frames "
          f"{streamed:.2f} s, a 16-frame window per second (12 windows, 192 frames) "
          f"{windowed:.2f} s")


if __name__ == "__main__":
    main()
