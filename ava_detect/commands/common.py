"""Argument helpers shared by the commands that read a config."""

from __future__ import annotations

import argparse
from typing import Any, Optional, Sequence, Tuple

from ava_detect.config import Config, load_config


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


def resolve_device(name: str):
    """``--device``: ``auto`` (CUDA when available, else the CPU), ``cpu``, ``cuda``, ``cuda:N`` -> torch.device
    (:func:`~ava_detect.engine.distributed.select_device`, the rule of ``train.device`` / ``test.device``).

    Raises:
        AvaDetectError: a malformed name, or CUDA asked for and not available.
    """
    from ava_detect.engine.distributed import select_device

    return select_device(name)


def frame_size(text: str) -> Tuple[int, int]:
    """argparse type: ``"320x240"`` -> ``(320, 240)``."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT like 320x240, got {text!r}")
    return int(parts[0]), int(parts[1])
