"""``ava-detect <command>``: the command-line interface.

Each command lives in ``ava_detect/commands/<name>.py`` with ``add_arguments(parser)`` and
``run(args) -> int``; heavy imports happen inside ``run`` so that ``--help`` is instant.
Errors of ours (:class:`~ava_detect.errors.AvaDetectError`), argparse's, and what the operating
system refuses (``OSError``: disk full, permission denied) or cannot give (``MemoryError``) are
printed as one line on stderr and the process exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys
from typing import Callable, List, Optional

from ava_detect import __version__
from ava_detect.errors import AvaDetectError

#: A config override on the command line: ``section.key=value`` (``model.resnet.depth=101``).
OVERRIDE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z0-9_.]+=")

#: (command, module, one-line help), in the order they are listed.
COMMANDS = (
    ("quickstart", "ava_detect.commands.quickstart", "synthetic data -> train -> test -> annotated clip, on a CPU"),
    ("prep", "ava_detect.commands.prep", "prepare AVA-format data (synthetic set, videos, frames, annotations)"),
    ("detect", "ava_detect.commands.detect", "person boxes at keyframes of videos -> AVA box CSV (+ AP against ground truth)"),
    ("train", "ava_detect.commands.train", "train an action detector (one process or torchrun), resumable"),
    ("test", "ava_detect.commands.test", "run a trained detector on the validation split and evaluate it"),
    ("eval", "ava_detect.commands.eval", "frame-mAP@0.5 of AVA detections, exactly as the official evaluators"),
    ("annotate", "ava_detect.commands.annotate", "draw people and their actions on a video; AVA-format CSV / JSON"),
    ("export", "ava_detect.commands.export", "export the action detector to ONNX or TorchScript, with its input contract"),
)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {msg}"
        return msg


def setup_logging(verbosity: int) -> None:
    """Send library log records to stderr: warnings always, info unless ``-q``, debug with ``-v``."""
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root = logging.getLogger("ava_detect")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


class _Parser(argparse.ArgumentParser):
    """argparse's parser with one-line errors (``ava-detect eval: error: ...``, status 2), like every
    other error of the command line; the usage is one ``--help`` away."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ava-detect",
        description="Spatiotemporal action detection on AVA-style video: prepare data, train, "
        "test, evaluate frame-mAP exactly as the official AVA evaluator, annotate clips.",
    )
    parser.add_argument("--version", action="version", version=f"ava-detect {__version__}")
    parser.add_argument("-q", "--quiet", action="store_const", const=-1, dest="verbosity", default=0,
                        help="only print warnings and errors")
    parser.add_argument("-v", "--verbose", action="store_const", const=1, dest="verbosity",
                        help="print debug messages")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    sub.required = True
    for name, module_name, help_text in COMMANDS:
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def run_command(name: str, run: Callable[[argparse.Namespace], Optional[int]], args: argparse.Namespace) -> int:
    """Run a command; our errors become one line on stderr and status 2, Ctrl-C status 130."""
    try:
        return int(run(args) or 0)
    except AvaDetectError as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the file system said no where no check of ours could know in advance
        where = f"{e.filename}: " if e.filename else ""
        print(f"{name}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"{name}: error: out of memory; use smaller inputs or settings (frame size, batch size)",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:  # `section.key=value` overrides are welcome anywhere on the line, not only in one place
        stray = [x for x in extras if not (OVERRIDE.match(x) and hasattr(args, "overrides"))]
        prog = f"{parser.prog} {args.command}"
        if stray:
            parser.exit(2, f"{prog}: error: unrecognized arguments: {' '.join(stray)} (see {prog} --help)\n")
        args.overrides = [*args.overrides, *extras]
    setup_logging(args.verbosity)
    return run_command(f"ava-detect {args.command}", args._run, args)


if __name__ == "__main__":
    sys.exit(main())
