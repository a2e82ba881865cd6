"""Prepare AVA-format data.

Steps (each is also `python -m data_prep.<step>`):
  synthetic     make a synthetic AVA-format dataset that a CPU can train on
"""

from __future__ import annotations

import argparse
import importlib

#: (step, module, one-line help)
STEPS = (
    ("synthetic", "data_prep.synthetic", "make a synthetic AVA-format dataset (videos, CSVs, label map)"),
)


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
