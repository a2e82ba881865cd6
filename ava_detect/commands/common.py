"""Argument helpers shared by the commands that read a config."""

from __future__ import annotations

import argparse
from typing import Tuple

from ava_detect.config import Config, load_config


def add_config_arguments(parser: argparse.ArgumentParser, required: bool = False) -> None:
    """``--config FILE`` plus trailing ``section.key=value`` overrides."""
    parser.add_argument("--config", required=required, metavar="YAML",
                        help="experiment config (see configs/); omitted: built-in defaults")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value",
                        help="override config values, e.g. train.epochs=3 model.roi_aligned=false")


def config_from_args(args: argparse.Namespace) -> Config:
    """Load the config named by :func:`add_config_arguments`' arguments."""
    return load_config(args.config, args.overrides)


def frame_size(text: str) -> Tuple[int, int]:
    """argparse type: ``"320x240"`` -> ``(320, 240)``."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT like 320x240, got {text!r}")
    return int(parts[0]), int(parts[1])
