"""The AVA preparation steps as modules: ``python -m data_prep.<step>`` is ``ava-detect prep <step>``
(same arguments, output and exit statuses). The steps live in ``ava_detect`` (the commands in
``ava_detect/commands/prep_<step>.py``, the work in ``ava_detect.prep`` and ``ava_detect.synthetic``);
this package only gives them their module names.
"""

from __future__ import annotations

import argparse
from typing import List, Optional


def step_main(step: str, argv: Optional[List[str]] = None) -> int:
    """``python -m data_prep.<step>``: parse ``argv`` with the step's arguments and run it."""
    from ava_detect.cli import run_command, setup_logging
    from ava_detect.commands.prep import step_module

    module = step_module(step)
    parser = argparse.ArgumentParser(prog=f"python -m data_prep.{step}", description=(module.__doc__ or step).strip(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    setup_logging(0)
    return run_command(f"prep {step}", module.run, args)
