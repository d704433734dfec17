"""``mict models``: every registered model with parameters and GFLOPs per clip."""

from __future__ import annotations

import argparse

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..models import build_model, list_models


def parse_input_size(text: str) -> tuple[int, int, int]:
    """``"16x160x160"`` -> ``(16, 160, 160)`` (frames × height × width)."""
    try:
        t, h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FRAMESxHEIGHTxWIDTH, got {text!r}") from None
    if min(t, h, w) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return t, h, w


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_size: tuple[int, int, int]) -> int:
    """FLOPs (2 × multiply-accumulates) of one forward pass on one clip, by torch's counter."""
    clip = torch.zeros(1, 3, *input_size)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(clip)
    return counter.get_total_flops()


def models_table(input_size: tuple[int, int, int], num_classes: int) -> list[dict]:
    rows = []
    for name in list_models():
        model = build_model(name, num_classes=num_classes)
        rows.append({
            "model": name,
            "params_m": count_parameters(model) / 1e6,
            "gflops": count_flops(model, input_size) / 1e9,
        })
    return rows


def run(args: argparse.Namespace) -> int:
    t, h, w = args.input
    rows = models_table(args.input, args.classes)
    print(f"input {t}x{h}x{w} (frames x height x width), {args.classes} classes; "
          "GFLOPs = 2 x multiply-accumulates per clip (torch.utils.flop_counter)")
    print(f"{'model':<16} {'params (M)':>11} {'GFLOPs/clip':>12}")
    for r in rows:
        print(f"{r['model']:<16} {r['params_m']:>11.2f} {r['gflops']:>12.2f}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list models with parameters and GFLOPs per clip")
    p.add_argument("--input", type=parse_input_size, default=(16, 160, 160),
                   metavar="TxHxW", help="clip size (default 16x160x160)")
    p.add_argument("--classes", type=int, default=101, help="number of classes (default 101)")
    p.set_defaults(func=run)
