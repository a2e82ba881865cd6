"""Prepare AVA-format data.

Steps (each is also `python -m data_prep.<step>`; the work is done by ava_detect.prep and ava_detect.synthetic):
  synthetic     make a synthetic AVA-format dataset that a CPU can train on
  videos        cut the AVA movies to seconds 900-1801 at 30 fps as h264 (fast seeking)
  frames        extract PySlowFast's JPEG frame folders and frame lists (only if you need them)
  annotations   validate a split's annotation files, summarise them, label detected boxes
  import        import CVAT exports of your own videos as a dataset (ground truth, proposals, config)
  cvat-example  the worked example: synthetic videos at 25 fps from second 0 with CVAT exports
"""

from __future__ import annotations

import argparse
import importlib

#: (step, module with the step's ``add_arguments`` and ``run``, one-line help)
STEPS = (
    ("synthetic", "ava_detect.commands.prep_synthetic", "make a synthetic AVA-format dataset (videos, CSVs, label map)"),
    ("videos", "ava_detect.commands.prep_videos", "cut AVA movies to the annotated segment at 30 fps (h264, fast seeking)"),
    ("frames", "ava_detect.commands.prep_frames",
     "extract PySlowFast JPEG frame folders and frame lists from prepared videos"),
    ("annotations", "ava_detect.commands.prep_annotations",
     "validate and summarise a split's annotations; label detected boxes"),
    ("import", "ava_detect.commands.prep_import",
     "import CVAT for video 1.1 exports of your own videos as a dataset (ground truth, proposals, config)"),
    ("cvat-example", "ava_detect.commands.prep_cvat_example",
     "the worked example: synthetic videos re-encoded at 25 fps from second 0, with CVAT exports"),
)


def step_module(step: str):
    """The command module of prep step ``step`` (``add_arguments(parser)``, ``run(args)``, its help as
    the docstring)."""
    for name, module_name, _ in STEPS:
        if name == step:
            return importlib.import_module(module_name)
    raise KeyError(f"no prep step {step!r}; the steps are {', '.join(s for s, _, _ in STEPS)}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="step", metavar="<step>")
    sub.required = True
    for name, module_name, help_text in STEPS:
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_step_run=module.run)


def run(args: argparse.Namespace) -> int:
    return args._step_run(args)
