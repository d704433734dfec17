"""Argument types shared by the commands: numbers checked by argparse (an argument error exits
with status 2 before any work starts) and the frame-size convention.

Sizes: a frame size is ``WIDTHxHEIGHT`` (``320x240``, as video tools and ``data.resize`` write
it); a clip shape is ``FRAMESxHEIGHTxWIDTH`` (``16x160x160``, the order of the clip tensor).
"""

from __future__ import annotations

import argparse
import sys

from ..data.kinetics import SPLITS as KINETICS_SPLITS
from ..data.sampling import MAX_CLIPS


def positive_int(text: str) -> int:
    """An integer >= 1."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    return _int_at_least(text, 0)


def clip_count(text: str) -> int:
    """Clips per video: an integer 1..``MAX_CLIPS`` (all of them are decoded at once)."""
    value = positive_int(text)
    if value > MAX_CLIPS:
        raise argparse.ArgumentTypeError(f"at most {MAX_CLIPS} clips per video, got {value}")
    return value


def test_split(text: str) -> int | str:
    """``--split`` of a test set: an official split number (1-3), or a Kinetics split name."""
    if text.isdigit() and int(text) in (1, 2, 3):
        return int(text)
    if text in KINETICS_SPLITS:
        return text
    raise argparse.ArgumentTypeError(f"a split is 1, 2, 3 (ucf101, hmdb51) or "
                                     f"{', '.join(KINETICS_SPLITS)} (kinetics), got {text!r}")


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
    return value


def frame_size(text: str) -> tuple[int, int]:
    """``"256x192"`` -> ``(256, 192)``: width × height, both positive."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if min(width, height) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return width, height


def clip_shape(text: str) -> tuple[int, int, int]:
    """``"16x160x160"`` -> ``(16, 160, 160)``: frames × height × width, all positive."""
    try:
        t, h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FRAMESxHEIGHTxWIDTH, got {text!r}") from None
    if min(t, h, w) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return t, h, w


def deprecated_alias(new: str) -> type[argparse.Action]:
    """An action for an old option spelling: stores like ``new`` and says to use ``new``."""

    class DeprecatedAlias(argparse.Action):
        def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                     values: object, option_string: str | None = None) -> None:
            print(f"{parser.prog}: {option_string} is deprecated; use {new}", file=sys.stderr)
            setattr(namespace, self.dest, values)

    return DeprecatedAlias
