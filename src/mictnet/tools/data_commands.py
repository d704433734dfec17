"""``mict check`` (check a dataset's lists and videos) and ``mict prepare`` (pre-decode frames,
optical flow)."""

from __future__ import annotations

import argparse
import errno
import json
import time
from pathlib import Path

from ..data.cache import prepare_videos
from ..data.checks import check_dataset, dataset_lists
from ..data.flow import BOUND, METHODS, flow_estimator, prepare_flow
from ..data.transforms import RESIZE
from ..engine.arg_types import frame_size, positive_int
from ..engine.config_flags import add_section_flags, field_choices
from ..engine.train_config import DataConfig


def require_root(args: argparse.Namespace) -> None:
    """A missing ``--root`` (or ``--list-root``), or a file where a folder belongs, is an error
    about it, not about the split files or videos that would be under it."""
    what = "list file" if args.dataset == "list" else "dataset root"
    for path, name in ((args.root, what), (args.list_root, "list root")):
        if path is not None and not Path(path).exists():
            raise FileNotFoundError(errno.ENOENT, f"no such {name}", path)
    if args.dataset != "list" and not Path(args.root).is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "the dataset root is not a folder", args.root)


def run_check(args: argparse.Namespace) -> int:
    require_root(args)
    report = check_dataset(args.dataset, args.root, args.split, args.splits_dir,
                           list_root=args.list_root, full=args.full, strict=args.strict,
                           progress=not args.json, cache=args.cache)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.format(per_class=args.per_class))
    return 0 if report.ok else 1


def run_prepare(args: argparse.Namespace) -> int:
    require_root(args)
    video_root, _, lists = dataset_lists(args.dataset, args.root, None, args.splits_dir,
                                         args.list_root)
    videos: dict[str, None] = {}
    for parsed in lists.values():
        parsed.raise_problems()
        for path, _ in parsed.samples:
            videos.setdefault(path)
    start = time.perf_counter()
    if args.flow:
        flow_estimator(args.flow)  # a missing TV-L1 is named before any work
    jobs = [(str(video_root / p), p) for p in videos]
    report = prepare_videos(jobs, args.out, args.size, args.quality, args.workers)
    print(f"{report.written} videos prepared ({report.frames} frames, "
          f"{time.perf_counter() - start:.0f} s), {report.up_to_date} already up to date, "
          f"{len(report.failed)} failed; train from it with --cache {args.out} "
          f"(resize {args.size[0]}x{args.size[1]})")
    failed = report.failed
    if args.flow:
        start = time.perf_counter()
        flow = prepare_flow(jobs, args.out, args.flow, args.size, args.bound, workers=args.workers)
        print(f"{flow.written} videos' optical flow ({args.flow}, bound ±{args.bound:g}) written "
              f"({flow.frames} frames, {time.perf_counter() - start:.0f} s), {flow.up_to_date} "
              f"already up to date, {len(flow.failed)} failed; train on it with --cache "
              f"{args.out} --modality flow")
        failed = failed + flow.failed
    for problem in failed:
        print(f"  {problem}")
    return 1 if failed else 0


def _jpeg_quality(text: str) -> int:
    quality = positive_int(text)
    if quality > 100:
        raise argparse.ArgumentTypeError(f"must be 1-100, got {quality}")
    return quality


def _bound(text: str) -> float:
    try:
        bound = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < bound < 1000:
        raise argparse.ArgumentTypeError(f"must be in (0, 1000) pixels, got {text}")
    return bound


def _dataset_arguments(p: argparse.ArgumentParser) -> None:
    add_section_flags(p, DataConfig, ("dataset", "root", "splits_dir", "list_root"),
                      required=("dataset", "root"),
                      default_text={"splits_dir": "ROOT/<name> or beside ROOT"})


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "check",
        description="Check that every listed video exists, opens and has frames; count videos "
                    "per split and class; report malformed, duplicate or mislabelled entries. "
                    "Exit code 1 when problems are found (Kinetics: missing and unreadable "
                    "videos are listed as skipped, and only a problem with --strict).")
    _dataset_arguments(p)
    p.add_argument("--split", type=int, choices=field_choices(DataConfig, "split"), default=None,
                   help="check one split (default: all three)")
    p.add_argument("--full", action="store_true",
                   help="decode every frame (slower; the default decodes the first and last "
                        "frames)")
    p.add_argument("--strict", action="store_true",
                   help="kinetics: missing or unreadable videos are problems (exit code 1), as "
                        "they are errors for mict train --strict")
    p.add_argument("--cache", metavar="DIR",
                   help="also check what mict prepare wrote there: every video's frames and, "
                        "where the cache holds optical flow, its flow (present, current, the "
                        "video's frame count)")
    p.add_argument("--per-class", action="store_true", help="print counts per class")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run_check)

    p = subparsers.add_parser(
        "prepare",
        description="Decode every video of a dataset (all splits) once, resize its frames and "
                    "store them as JPEG, one file per video, under --out; datasets read them "
                    "with --cache OUT (data.cache). Up-to-date files are kept.")
    _dataset_arguments(p)
    p.add_argument("--out", required=True, help="cache folder")
    p.add_argument("--size", type=frame_size, default=RESIZE, metavar="WIDTHxHEIGHT",
                   help="frame size, width first (default {}x{}, the training resize)"
                   .format(*RESIZE))
    p.add_argument("--quality", type=_jpeg_quality, default=90,
                   help="JPEG quality, 1-100 (default 90)")
    p.add_argument("--workers", type=positive_int, default=1, help="processes (default 1)")
    p.add_argument("--flow", choices=METHODS,
                   help="also compute optical flow, stored beside the frames (x, y as uint8 "
                        "JPEGs): dis, farneback (OpenCV) or tvl1 (needs "
                        "opencv-contrib-python-headless)")
    p.add_argument("--bound", type=_bound, default=BOUND,
                   help=f"--flow: clip the flow to ±BOUND pixels per frame before the uint8 "
                        f"mapping (default {BOUND:g}, as MMAction2 and TSN)")
    p.set_defaults(func=run_prepare)
