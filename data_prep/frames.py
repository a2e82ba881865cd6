"""``python -m data_prep.frames``: extract PySlowFast's frame folders and frame lists from prepared videos; the same as ``ava-detect prep frames``
(see ``ava_detect/commands/prep_frames.py``)."""

from __future__ import annotations

import sys
from typing import List, Optional

from data_prep import step_main


def main(argv: Optional[List[str]] = None) -> int:
    return step_main("frames", argv)


if __name__ == "__main__":
    sys.exit(main())
