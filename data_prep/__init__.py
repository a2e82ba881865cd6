"""AVA preparation steps, each runnable as ``python -m data_prep.<step>`` and as ``ava-detect prep <step>``."""

from __future__ import annotations

import argparse
from typing import Callable, List, Optional


def step_main(step: str, doc: str, add_arguments: Callable[[argparse.ArgumentParser], None],
              run: Callable[[argparse.Namespace], Optional[int]], argv: Optional[List[str]] = None) -> int:
    """``python -m data_prep.<step>``: the same arguments, output and exit statuses as ``ava-detect prep <step>``."""
    from ava_detect.cli import run_command, setup_logging

    parser = argparse.ArgumentParser(prog=f"python -m data_prep.{step}", description=doc.strip(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    setup_logging(0)
    return run_command(f"prep {step}", run, args)
