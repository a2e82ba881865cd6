"""``python -m data_prep.annotations``: validate a split's annotation files, summarise them, and label detected boxes; the same as ``ava-detect prep annotations``
(see ``ava_detect/commands/prep_annotations.py``)."""

from __future__ import annotations

import sys
from typing import List, Optional

from data_prep import step_main


def main(argv: Optional[List[str]] = None) -> int:
    return step_main("annotations", argv)


if __name__ == "__main__":
    sys.exit(main())
