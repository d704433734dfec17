"""``mict serve``: the web page and HTTP API of :mod:`mictnet.serve` on a local port."""

from __future__ import annotations

import argparse
import sys

from ..engine.arg_types import add_device_flags, positive_int
from ..inference import DEFAULT_CLIPS


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..serve import create_app
    except ModuleNotFoundError as err:
        raise RuntimeError(f"mict serve needs {err.name}: pip install 'mictnet[serve]'") from None
    from ..inference import load

    predictor = load(args.checkpoint, args.device, args.clips, args.amp)
    app = create_app(predictor, args.max_upload_mb, args.workers)
    print(f"serving {args.checkpoint} at http://{args.host}:{args.port}/ (Ctrl+C stops)",
          file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve")
    p.add_argument("--checkpoint", required=True, help="checkpoint file or run folder")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=positive_int, default=8000, help="port to listen on")
    p.add_argument("--max-upload-mb", type=positive_float, default=200.0,
                   help="larger uploads are refused with 413")
    p.add_argument("--workers", type=positive_int, default=1,
                   help="inference threads (more requests wait their turn; bounds memory)")
    p.add_argument("--clips", type=positive_int, default=DEFAULT_CLIPS,
                   help="clips averaged per video")
    add_device_flags(p)
    p.set_defaults(func=run)
