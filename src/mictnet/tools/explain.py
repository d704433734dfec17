"""``mict explain``: Grad-CAM over space and time of video files: overlay MP4 and GIF, a PNG
sheet, the importance of each frame, and ``explain.json``. The library side is
:mod:`mictnet.serve.explain`."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from ..engine.arg_types import positive_int
from ..engine.config_flags import add_section_flags, section_from_args
from ..engine.train_config import InferenceConfig
from ..inference import DEFAULT_CLIPS, load
from ..serve.explain import METHODS, Explanation, explain, resolve_layer
from ..serve.explain_render import plot_importance, plot_sheet, write_videos

DEFAULT_OUT = Path("explanations")


def video_folder(out: Path, video: str | Path) -> Path:
    """``OUT/<stem>-<8 hex digits of the absolute path>``: two videos never share one."""
    digest = hashlib.sha1(str(Path(video).resolve()).encode()).hexdigest()[:8]
    return out / f"{Path(video).stem}-{digest}"


def write_files(e: Explanation, folder: Path) -> list[Path]:
    """The overlay MP4 and GIF, the sheet and the importance curve of one explanation."""
    base = folder / e.label.replace("/", "_")
    files = write_videos(e, base.with_suffix(".mp4"), base.with_suffix(".gif"))
    files.append(plot_sheet(e, base.with_name(f"{base.name}.sheet.png")))
    files.append(plot_importance(e, base.with_name(f"{base.name}.importance.png")))
    return files


def describe(e: Explanation) -> str:
    fps = e.fps if e.fps > 0 else 25.0
    peak = int(e.importance.argmax())
    h, w = e.maps.shape[1:]
    return (f"  {e.label} ({e.probability:.1%}; predicted {e.predicted}): {e.method} at "
            f"{e.layer} ({h}x{w} cells, {len(e.windows)} window"
            f"{'s' if len(e.windows) > 1 else ''}); most important frame {peak} "
            f"({peak / fps:.2f} s)")


def run(args: argparse.Namespace) -> int:
    run_as = section_from_args(args, InferenceConfig)
    predictor = load(args.checkpoint, run_as.device, run_as.clips, run_as.amp)
    if args.target and args.target not in predictor.classes:
        raise ValueError(f"unknown class {args.target!r}; the model knows "
                         f"{', '.join(predictor.classes)}")
    layer = resolve_layer(predictor.model, predictor.clip.input_size, args.layer,
                          predictor.device)
    out = Path(args.out)
    failed = 0
    for video in args.videos:
        try:
            found = explain(predictor, video, [args.target] if args.target else None,
                            top=args.top, layer=layer, method=args.method, progress=True)
            folder = video_folder(out, video)
            print(f"{video} ({found[0].width}x{found[0].height}, {found[0].frames} frames)")
            records = []
            for e in found:
                files = write_files(e, folder)
                print(describe(e))
                print(f"    {', '.join(map(str, files))}")
                records.append(e.to_dict() | {"files": [str(f) for f in files]})
            table = folder / "explain.json"
            table.write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")
            print(f"  {table}")
        except (ValueError, OSError) as err:  # VideoError is a ValueError and names the file
            message = str(err) if str(video) in str(err) else f"{video}: {err}"
            print(f"error: {message}", file=sys.stderr)
            failed += 1
    if failed:
        print(f"{failed} of {len(args.videos)} videos could not be read", file=sys.stderr)
    return 1 if failed else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("explain")
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files (any FFmpeg format)")
    p.add_argument("--checkpoint", required=True, help="checkpoint file or run folder")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--class", dest="target", metavar="NAME",
                       help="the class to explain (default: the predicted one)")
    which.add_argument("--top", type=positive_int, default=1,
                       help="explain the K most likely classes")
    p.add_argument("--layer", default="auto",
                   help="auto (the model's last spatio-temporal features, or an earlier stage "
                        "for small inputs) or a module name, e.g. layer4")
    p.add_argument("--method", choices=METHODS, default="gradcam",
                   help="how the gradient weighs the maps: per channel (gradcam, gradcam++) or "
                        "per cell (layercam)")
    p.add_argument("--out", default=str(DEFAULT_OUT), metavar="DIR",
                   help="one folder per video here, named VIDEO-<hash of its path>")
    add_section_flags(p, InferenceConfig, ("clips", "device", "amp"),
                      defaults={"clips": DEFAULT_CLIPS})
    p.set_defaults(func=run)
