"""``mict benchmark``: parameters, GFLOPs, memory per clip and inference speed of models.

The command front-end of :mod:`mictnet.engine.measure`, whose docstring says what is measured.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..engine.arg_types import clip_shape, deprecated_alias, positive_int
from ..engine.measure import BenchmarkSettings, format_table, run_benchmark
from ..engine.precision import DTYPES
from ..models import list_models

LAYOUTS = {"off": (False,), "on": (True,), "both": (False, True)}


def settings_from_args(args: argparse.Namespace) -> BenchmarkSettings:
    dtypes = {} if args.dtype is None else {"dtypes": tuple(args.dtype), "explicit_dtypes": True}
    return BenchmarkSettings(
        models=tuple(args.models), input_size=args.input, batches=tuple(args.batch),
        device=args.device, channels_last=LAYOUTS[args.channels_last],
        fuse_bn=(not args.no_fuse,), threads=args.threads, repeats=args.repeats,
        num_classes=args.classes, memory=not args.no_memory, **dtypes,
    )


def run(args: argparse.Namespace) -> int:
    report = run_benchmark(settings_from_args(args))
    print(format_table(report))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("benchmark")
    p.add_argument("--models", nargs="+", default=["mict_resnet18", "resnet3d_18"],
                   metavar="NAME", help=f"models to compare: {', '.join(list_models())}")
    p.add_argument("--input", type=clip_shape, default=(16, 160, 160), metavar="TxHxW",
                   help="clip shape, frames x height x width (default 16x160x160)")
    p.add_argument("--batch-size", dest="batch", type=positive_int, nargs="+", default=[1, 8],
                   metavar="N", help="batch sizes (default 1 8)")
    p.add_argument("--batch", dest="batch", type=positive_int, nargs="+", metavar="N",
                   action=deprecated_alias("--batch-size"), default=argparse.SUPPRESS,
                   help="deprecated spelling of --batch-size")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--dtype", nargs="+", choices=list(DTYPES), default=None,
                   help="weights and clip cast to each (default: fp32, and bf16 where the "
                        "device runs it natively; a dtype named here is timed even if emulated)")
    p.add_argument("--channels-last", nargs="?", const="on", default="off",
                   choices=list(LAYOUTS),
                   help="channels-last layout: flag alone = on; 'both' measures both layouts")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="torch threads (default: torch's)")
    p.add_argument("--repeats", type=positive_int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--classes", type=positive_int, default=101,
                   help="number of classes (default 101)")
    p.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    p.add_argument("--no-fuse", action="store_true",
                   help="keep batch norms separate (default: folded into the convolutions)")
    p.add_argument("--json", metavar="FILE", help="also write the full report as JSON")
    p.set_defaults(func=run)
