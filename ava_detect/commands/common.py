"""Argument helpers shared by the commands that read a config."""

from __future__ import annotations

import argparse
from typing import Any, Callable, Optional, Sequence, Tuple

from ava_detect.config import Config, load_config
from ava_detect.config_checks import MAX_INT, Range


def add_config_arguments(parser: argparse.ArgumentParser, required: bool = False) -> None:
    """``--config FILE`` plus trailing ``section.key=value`` overrides."""
    parser.add_argument("--config", required=required, metavar="YAML",
                        help="experiment config (see configs/); omitted: built-in defaults")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value",
                        help="override config values, e.g. train.epochs=3 model.roi_aligned=false")


def config_from_args(args: argparse.Namespace, flags: Sequence[Tuple[str, Any]] = ()) -> Config:
    """Load the config named by :func:`add_config_arguments`' arguments.

    Args:
        flags: ``(section.key, value)`` of the command's own flags; those whose value is not
            None become overrides, after the trailing ``section.key=value`` ones (a flag wins),
            so that the config's validation covers them too.
    """
    return load_config(args.config, [*args.overrides, *flag_overrides(flags)])


def flag_overrides(flags: Sequence[Tuple[str, Any]]) -> list:
    """``[("test.bf16", True), ("train.weights", None), ("test.output_dir", "out")]`` ->
    ``['test.bf16=true', 'test.output_dir="out"']`` (strings quoted: YAML reads them back as written)."""
    import json

    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        return json.dumps(value) if isinstance(value, str) else str(value)

    return [f"{key}={text(value)}" for key, value in flags if value is not None]


def progress_bar(total: Optional[int] = None, initial: int = 0, desc: str = "") -> Any:
    """A tqdm progress bar on stderr (the factory the commands pass to the library)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, leave=False)


def add_detector_argument(parser: argparse.ArgumentParser) -> None:
    """``--detector NAME``, one of the person-detector backends (``detector.backend``)."""
    from ava_detect.config import DetectorConfig
    from ava_detect.detection import BACKENDS  # the table of backends, without importing them

    parser.add_argument("--detector", choices=list(BACKENDS),
                        help=f"person detector (default: {DetectorConfig.backend})")


def add_detector_model_argument(parser: argparse.ArgumentParser) -> None:
    """``--detector-model NAME``: the torchvision backend's COCO model (``detector.model``), with each
    model's published COCO box AP in the help (its accuracy cannot be measured offline)."""
    from ava_detect.detection.coco_models import COCO_DETECTORS, DEFAULT_COCO_DETECTOR, coco_detector_help

    parser.add_argument("--detector-model", choices=list(COCO_DETECTORS), metavar="NAME",
                        help=f"torchvision person detector (default {DEFAULT_COCO_DETECTOR}); published COCO "
                             f"val2017 box AP (all classes): {coco_detector_help()}")


def resolve_device(name: str):
    """``--device``: ``auto`` (CUDA when available, else the CPU), ``cpu``, ``cuda``, ``cuda:N`` -> torch.device
    (:func:`~ava_detect.engine.distributed.select_device`, the rule of ``train.device`` / ``test.device``).

    Raises:
        AvaDetectError: a malformed name, or CUDA asked for and not available.
    """
    from ava_detect.engine.distributed import select_device

    return select_device(name)


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
