"""Argument helpers shared by the commands that read a config."""

from __future__ import annotations

import argparse
from typing import Callable, Optional, Tuple

from ava_detect.config import Config, load_config
from ava_detect.config_checks import MAX_INT, Range


def add_config_arguments(parser: argparse.ArgumentParser, required: bool = False) -> None:
    """``--config FILE`` plus trailing ``section.key=value`` overrides."""
    parser.add_argument("--config", required=required, metavar="YAML",
                        help="experiment config (see configs/); omitted: built-in defaults")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value",
                        help="override config values, e.g. train.epochs=3 model.roi_aligned=false")


def config_from_args(args: argparse.Namespace) -> Config:
    """Load the config named by :func:`add_config_arguments`' arguments."""
    return load_config(args.config, args.overrides)


#: Largest frame side a size flag accepts (8K video is 7680 wide).
MAX_FRAME_SIDE = 8192


def frame_size(text: str) -> Tuple[int, int]:
    """argparse type: ``"320x240"`` -> ``(320, 240)``; each side 1 .. ``MAX_FRAME_SIDE``."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT like 320x240, got {text!r}")
    width, height = int(parts[0]), int(parts[1])
    if not (1 <= width <= MAX_FRAME_SIDE and 1 <= height <= MAX_FRAME_SIDE):
        raise argparse.ArgumentTypeError(f"each side must be 1..{MAX_FRAME_SIDE} pixels, got {text!r}")
    return width, height


def bounded_int(lo: Optional[int] = None, hi: Optional[int] = None) -> Callable[[str], int]:
    """argparse type for a number flag that is not a config key: an integer in ``[lo, hi]``
    (``hi`` defaults to ``MAX_INT``), with the same wording as the config checks."""
    bounds = Range(lo, hi)

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {bounds.describe(True)}, got {text!r}") from None
        if not bounds.contains(float(value), True) or abs(value) > MAX_INT:
            raise argparse.ArgumentTypeError(f"expected {bounds.describe(True)}, got {text!r}")
        return value

    return parse


def bounded_float(lo: Optional[float] = None, hi: Optional[float] = None, *, lo_open: bool = False,
                  hi_open: bool = False) -> Callable[[str], float]:
    """argparse type for a number flag that is not a config key: a finite number within the bounds
    (NaN and infinity are refused)."""
    bounds = Range(lo, hi, lo_open, hi_open)

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {bounds.describe(False)}, got {text!r}") from None
        if not bounds.contains(value, False):
            raise argparse.ArgumentTypeError(f"expected {bounds.describe(False)}, got {text!r}")
        return value

    return parse
