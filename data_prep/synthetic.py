"""``python -m data_prep.synthetic``: make a synthetic AVA-format dataset that a CPU can train on; the same as ``ava-detect prep synthetic``
(see ``ava_detect/commands/prep_synthetic.py``)."""

from __future__ import annotations

import sys
from typing import List, Optional

from data_prep import step_main


def main(argv: Optional[List[str]] = None) -> int:
    return step_main("synthetic", argv)


if __name__ == "__main__":
    sys.exit(main())
