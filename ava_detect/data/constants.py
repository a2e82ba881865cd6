"""Facts of AVA's time axis (the defaults of :class:`~ava_detect.data.time_axis.TimeAxis`) and the packaged label maps."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: AVA videos are annotated at 30 frames per second.
FPS = 30
#: Each movie's annotated segment starts at second 900 (15:00) of the movie.
SEGMENT_START_SECOND = 900
#: Keyframes are whole seconds 902 ... 1798 (inclusive).
FIRST_KEYFRAME_SECOND = 902
LAST_KEYFRAME_SECOND = 1798
#: A prepared AVA video covers seconds 900 ... 1801 of the movie.
SEGMENT_END_SECOND = 1801
#: Number of action classes in AVA v2.x.
NUM_CLASSES = 80

_RESOURCES = "ava_detect.resources"
LABELMAP_V22_NAME = "ava_action_list_v2.2.pbtxt"
LABELMAP_V22_60_NAME = "ava_action_list_v2.2_for_activitynet_2019.pbtxt"


def resource_path(name: str) -> Path:
    """Path of a file packaged in ``ava_detect/resources``."""
    return Path(str(resources.files(_RESOURCES).joinpath(name)))


def labelmap_80_path() -> Path:
    """The packaged AVA v2.2 label map with all 80 classes (``label { name label_id label_type }``)."""
    return resource_path(LABELMAP_V22_NAME)


def labelmap_60_path() -> Path:
    """The packaged 60-class list used by the official evaluation (``item { name id }``)."""
    return resource_path(LABELMAP_V22_60_NAME)

