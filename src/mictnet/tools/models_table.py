"""``mict models``: every registered model with parameters, GFLOPs per clip and the clip it is
made for (its clip spec: what training, evaluation, predict, export and serve feed it)."""

from __future__ import annotations

import argparse

from ..engine.arg_types import clip_shape, positive_int
from ..engine.measure import model_info
from ..engine.resolve import model_clip_spec
from ..models import list_models


def run(args: argparse.Namespace) -> int:
    t, h, w = args.input
    print(f"input {t}x{h}x{w} (frames x height x width), {args.classes} classes; "
          "GFLOPs = 2 x multiply-accumulates per clip (torch.utils.flop_counter)")
    print(f"{'model':<16} {'params (M)':>11} {'GFLOPs/clip':>12}  clip spec")
    for name in list_models():
        info = model_info(name, args.input, args.classes)
        print(f"{name:<16} {info.params / 1e6:>11.2f} {info.gflops:>12.2f}  "
              f"{model_clip_spec(name).describe()}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models")
    p.add_argument("--input", type=clip_shape, default=(16, 160, 160),
                   metavar="TxHxW", help="clip size (default 16x160x160)")
    p.add_argument("--classes", type=positive_int, default=101,
                   help="number of classes (default 101)")
    p.set_defaults(func=run)
