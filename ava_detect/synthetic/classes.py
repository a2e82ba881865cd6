"""The classes of the synthetic set: real AVA v2.2 ids, poses told apart by shape in one frame and
motions told apart only across frames."""

from __future__ import annotations

from typing import Tuple

from ava_detect.data.ava_files import LabelMap

#: AVA v2.2 ids of the classes that the synthetic set uses.
STAND, SIT, LIE = 12, 11, 8
WALK, RUN, JUMP, WAVE = 14, 10, 7, 69
#: Poses: exactly one per figure.
POSE_IDS: Tuple[int, ...] = (STAND, SIT, LIE)
#: Motions: zero or more per figure (walk and run exclude each other).
MOTION_IDS: Tuple[int, ...] = (WALK, RUN, JUMP, WAVE)
#: All classes, in AVA id order (the order of the written label map).
CLASS_IDS: Tuple[int, ...] = tuple(sorted(POSE_IDS + MOTION_IDS))


def synthetic_labelmap() -> LabelMap:
    """The label map of the synthetic set: :data:`CLASS_IDS` with AVA v2.2's names and types."""
    from ava_detect.data.ava_files import read_labelmap
    from ava_detect.data.constants import labelmap_80_path

    labelmap80 = read_labelmap(labelmap_80_path())
    return LabelMap(
        ids=CLASS_IDS,
        names={c: labelmap80.names[c] for c in CLASS_IDS},
        types={c: labelmap80.types[c] for c in CLASS_IDS},
    )
