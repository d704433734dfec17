"""``mict predict``: the top actions of video files (and a per-second timeline), printed, as
JSON and as PNG strips. The library side is :mod:`mictnet.inference`."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from ..engine.arg_types import positive_int
from ..engine.config_flags import add_section_flags, section_from_args
from ..engine.train_config import InferenceConfig
from ..inference import (
    DEFAULT_CLIPS,
    Prediction,
    Predictor,
    TimelineStep,
    load,
    prediction_record,
)

DEFAULT_TIMELINE_DIR = Path("predictions")

# ---------------------------------------------------------------- output


def format_prediction(p: Prediction) -> str:
    lines = [f"{p.video} ({p.width}x{p.height}, {p.fps:.4g} fps, {p.frames} frames; "
             f"{p.clips} clip{'s' if p.clips > 1 else ''} of {p.clip_frames} frames)"]
    width = max(len(label) for label in p.labels)
    for rank, (label, prob) in enumerate(zip(p.labels, p.probabilities, strict=True), 1):
        lines.append(f"  {rank}. {label:<{width}}  {prob:6.1%}")
    if p.warning:
        lines.append(f"  warning: {p.warning}")
    return "\n".join(lines)


def format_timeline(steps: list[TimelineStep]) -> str:
    width = max(len(s.label) for s in steps)
    lines = [f"  {'time (s)':<13}  {'action':<{width}}  prob"]
    lines += [f"  {s.start:>6.1f}-{s.end:<6.1f}  {s.label:<{width}}  {s.probability:5.1%}"
              for s in steps]
    return "\n".join(lines)


def plot_timeline(steps: list[TimelineStep], title: str, path: str | Path) -> Path:
    """A PNG strip: one coloured segment per step (colour = action) over the top probability."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    labels = list(dict.fromkeys(s.label for s in steps))
    cmap = plt.get_cmap("tab20" if len(labels) > 10 else "tab10")
    colour = {label: cmap(i % cmap.N) for i, label in enumerate(labels)}
    duration = steps[-1].end
    fig, (strip, curve) = plt.subplots(2, 1, figsize=(max(6.0, min(24.0, duration / 4)), 2.6),
                                       sharex=True, height_ratios=(1, 1.4))
    for s in steps:
        strip.broken_barh([(s.start, s.end - s.start)], (0, 1), color=colour[s.label])
    strip.set_yticks([])
    strip.set_title(title, fontsize=9)
    strip.legend(handles=[Patch(color=colour[lb], label=lb) for lb in labels], fontsize=7,
                 loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    curve.step([s.start for s in steps] + [duration],
               [s.probability for s in steps] + [steps[-1].probability], where="post")
    curve.set_ylim(0, 1)
    curve.set_xlim(0, duration)
    curve.set_ylabel("top prob.", fontsize=8)
    curve.set_xlabel("time (s)", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def timeline_stem(video: str | Path) -> str:
    """``<stem>-<8 hex digits of the absolute path>``: files of two videos never collide."""
    digest = hashlib.sha1(str(Path(video).resolve()).encode()).hexdigest()[:8]
    return f"{Path(video).stem}-{digest}"


def _write_text(path: Path, text: str) -> str:
    """Write ``path``; returns ``" (replaced)"`` when it existed."""
    replaced = path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return " (replaced)" if replaced else ""


def _predict_one(predictor: Predictor, video: str, args: argparse.Namespace,
                 out_dir: Path | None) -> dict:
    """Predict (and maybe the timeline of) one video; print tables unless ``--json``."""
    if args.timeline:
        pred, steps = predictor.predict_with_timeline(video, top=args.top, progress=True)
    else:
        pred = predictor.predict(video, top=args.top)
    if pred.warning:
        print(f"warning: {video}: {pred.warning}", file=sys.stderr)
    if not args.json:
        print(format_prediction(pred))
    if not args.timeline:
        return prediction_record(pred)
    record = prediction_record(pred, steps)
    base = (out_dir or DEFAULT_TIMELINE_DIR) / timeline_stem(video)
    png = base.with_name(f"{base.name}.timeline.png")
    replaced = " (replaced)" if png.exists() else ""
    plot_timeline(steps, f"{Path(video).name}: top action per second", png)
    table = base.with_name(f"{base.name}.timeline.json")
    replaced = _write_text(table, json.dumps(record["timeline"], indent=2) + "\n") or replaced
    record["timeline_files"] = [str(png), str(table)]
    if replaced:
        print(f"{video}: replaced the earlier timeline files {png}, {table}", file=sys.stderr)
    if not args.json:
        print(format_timeline(steps))
        print(f"  timeline: {png}, {table}{replaced}")
    return record


def run(args: argparse.Namespace) -> int:
    run_as = section_from_args(args, InferenceConfig)
    predictor = load(args.checkpoint, run_as.device, run_as.clips, run_as.amp)
    out_dir = Path(args.out) if args.out else None
    records = []
    for video in args.videos:
        try:
            records.append(_predict_one(predictor, video, args, out_dir))
        except (ValueError, OSError) as err:  # VideoError is a ValueError and names the file
            message = str(err) if str(video) in str(err) else f"{video}: {err}"
            print(f"error: {message}", file=sys.stderr)
            records.append({"video": video, "error": message})
    if out_dir is not None:
        table = out_dir / "predictions.json"
        if _write_text(table, json.dumps(records, indent=2) + "\n"):
            print(f"replaced the earlier {table}", file=sys.stderr)
    if args.json:
        print(json.dumps(records, indent=2))
    failed = sum("error" in r for r in records)
    if failed:
        print(f"{failed} of {len(records)} videos could not be read", file=sys.stderr)
    warned = sum(bool(r.get("warning")) for r in records)
    if warned:
        print(f"{warned} of {len(records)} videos are suspect (see the warnings)",
              file=sys.stderr)
    return 1 if failed else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("predict")
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files (any FFmpeg format)")
    p.add_argument("--checkpoint", required=True, help="checkpoint file or run folder")
    p.add_argument("--top", type=positive_int, default=5,
                   help="actions listed per video (default 5)")
    add_section_flags(p, InferenceConfig, ("clips", "device", "amp"),
                      defaults={"clips": DEFAULT_CLIPS})
    p.add_argument("--timeline", action="store_true",
                   help="also the top action per second: table, JSON and PNG strip")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--out", metavar="DIR",
                   help="write predictions.json and the timelines here (timelines default to "
                        f"./{DEFAULT_TIMELINE_DIR}); files are named VIDEO-<hash of its path>")
    p.set_defaults(func=run)
