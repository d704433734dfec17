"""``mict live SOURCE``: the top actions of a camera, a stream URL or a file as they happen, one
line per output step (the library side is :mod:`mictnet.serve.live`)."""

from __future__ import annotations

import argparse
import json
import sys

from ..engine.arg_types import positive_int
from ..engine.config_flags import add_section_flags, section_from_args
from ..engine.train_config import InferenceConfig
from ..inference import load
from ..serve.live import Annotator, Capture, LiveStep, live_steps


def format_step(step: LiveStep) -> str:
    tops = "  ".join(f"{lb} {p:5.1%}" for lb, p in zip(step.labels, step.probabilities,
                                                       strict=True))
    return f"{step.time:8.2f}s  {tops}"


def run(args: argparse.Namespace) -> int:
    run_as = section_from_args(args, InferenceConfig)
    predictor = load(args.checkpoint, run_as.device, amp=run_as.amp)
    capture = Capture(args.source, args.realtime, retries=args.retries, duration=args.duration)
    annotator = Annotator(args.out, capture.fps) if args.out else None
    shown, steps = None, 0
    capture.start()
    try:
        for step in live_steps(predictor, capture, args.top, args.average, args.chunk, annotator):
            steps += 1
            if annotator is not None:
                annotator.label(step)
            if args.threshold is not None and (step.probabilities[0] < args.threshold
                                               or step.labels[0] == shown):
                continue
            shown = step.labels[0]
            if args.json_lines:
                print(json.dumps({"time": round(step.time, 3), "labels": step.labels,
                                  "probabilities": [round(p, 4) for p in step.probabilities],
                                  "dropped": step.dropped, "latency": round(step.latency, 3)}),
                      flush=True)
            else:
                print(format_step(step), flush=True)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        capture.stop()
        if annotator is not None:
            annotator.close()
    print(f"{capture.read} frames read, {capture.dropped} dropped, {steps} steps"
          + (f"; annotated video: {args.out}" if args.out else ""), file=sys.stderr)
    if capture.error:
        raise OSError(capture.error)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("live")
    p.add_argument("source", metavar="SOURCE",
                   help="camera index (0), a URL FFmpeg opens (rtsp://, http://, udp://) or a file")
    p.add_argument("--checkpoint", required=True, help="checkpoint file or run folder")
    p.add_argument("--realtime", action="store_true",
                   help="play a file at its own frame rate (else as fast as it decodes)")
    p.add_argument("--top", type=positive_int, default=3, help="actions per line")
    p.add_argument("--average", type=positive_int, default=1, metavar="K",
                   help="smooth the probabilities over the last K steps")
    p.add_argument("--threshold", type=float, metavar="P",
                   help="print only changes of the top action with probability >= P")
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this long")
    p.add_argument("--retries", type=int, default=5,
                   help="reconnections (back-off 0.5, 1, 2... s) before a silent camera or "
                        "stream is an error")
    p.add_argument("--chunk", type=positive_int, default=1,
                   help="frames per forward call (more: higher throughput, more latency)")
    p.add_argument("--json-lines", action="store_true", help="one JSON object per step")
    p.add_argument("--out", metavar="VIDEO.mp4", help="write the frames with the labels drawn")
    add_section_flags(p, InferenceConfig, ("device", "amp"))
    p.set_defaults(func=run)
