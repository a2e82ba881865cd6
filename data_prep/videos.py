"""``python -m data_prep.videos``: cut the AVA movies to their annotated segment, at exactly 30 fps, as h264; the same as ``ava-detect prep videos``
(see ``ava_detect/commands/prep_videos.py``)."""

from __future__ import annotations

import sys
from typing import List, Optional

from data_prep import step_main


def main(argv: Optional[List[str]] = None) -> int:
    return step_main("videos", argv)


if __name__ == "__main__":
    sys.exit(main())
