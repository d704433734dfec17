"""``mict serve``: the web page and HTTP API of :mod:`mictnet.serve` on a local port."""

from __future__ import annotations

import argparse
import math
import sys
from urllib.parse import quote

from ..engine.arg_types import positive_int
from ..engine.config_flags import add_section_flags, section_from_args
from ..engine.train_config import InferenceConfig
from ..inference import DEFAULT_CLIPS

INFERENCE = ("clips", "device", "amp")  # its own --workers: inference threads


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def positive_float(text: str) -> float:
    """A finite number > 0 (``inf`` and ``nan`` are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def port_number(text: str) -> int:
    """A TCP port, 1-65535."""
    port = positive_int(text)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"a port is 1-65535, got {port}")
    return port


def token_text(text: str) -> str:
    """A bearer token: 8 or more printable ASCII characters, no spaces."""
    if len(text) < 8 or not all(33 <= ord(c) < 127 for c in text):
        raise argparse.ArgumentTypeError("a token is 8 or more printable ASCII characters "
                                         "without spaces")
    return text


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..serve import create_app
    except ModuleNotFoundError as err:
        raise RuntimeError(f"mict serve needs {err.name}: pip install 'mictnet[serve]'") from None
    from ..inference import load

    if args.host not in LOOPBACK:
        print(f"warning: --host {args.host} lets anyone who reaches this port "
              + ("use the server: it has no authentication (add --token TOKEN)"
                 if args.token is None else "and has the token use the server, and the token "
                 "travels in clear text over plain HTTP")
              + ". Put it behind a reverse proxy that authenticates and speaks HTTPS "
              "(nginx auth_basic, an SSH tunnel), or keep the default 127.0.0.1.",
              file=sys.stderr)
    run_as = section_from_args(args, InferenceConfig, INFERENCE)
    predictor = load(args.checkpoint, run_as.device, run_as.clips, run_as.amp)
    app = create_app(predictor, args.max_upload_mb, args.workers, args.timeout, args.token)
    query = f"?token={quote(args.token, safe='')}" if args.token else ""
    page = f"http://{args.host}:{args.port}/{query}"
    print(f"serving {args.checkpoint} at {page} (Ctrl+C stops)", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve")
    p.add_argument("--checkpoint", required=True, help="checkpoint file or run folder")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=port_number, default=8000, help="port to listen on (1-65535)")
    p.add_argument("--max-upload-mb", type=positive_float, default=200.0,
                   help="larger uploads are refused with 413")
    p.add_argument("--workers", type=positive_int, default=1,
                   help="inference threads (more requests wait their turn; bounds memory)")
    p.add_argument("--timeout", type=positive_float, default=60.0, metavar="SECONDS",
                   help="time budget of a request once uploaded: later, it gets 503 and its "
                        "worker moves on")
    p.add_argument("--token", type=token_text, default=None,
                   help="the API asks for 'Authorization: Bearer TOKEN' (401 without); the page "
                        "takes it as /?token=TOKEN")
    add_section_flags(p, InferenceConfig, INFERENCE, defaults={"clips": DEFAULT_CLIPS})
    p.set_defaults(func=run)
