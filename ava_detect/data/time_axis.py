"""A dataset's time axis: where a video file's time 0 sits in the dataset's timestamps, which
whole seconds can be keyframes, and the frame rate clips are sampled at.

AVA is one such axis (:data:`AVA`): a prepared video starts at movie second 900 (15:00), keyframes
are the whole seconds 902 ... 1798, and clips are sampled on a 30 fps axis, so the centre frame of
second ``s`` is ``(s - 900) * 30``. A user's own videos start at second 0 and take every annotated
whole second inside the video (``keyframe_range=None``). The ``data`` config section declares the
axis (``data.start_second``, ``data.keyframe_range``, ``data.fps``; :meth:`TimeAxis.from_config`),
and everything that turns a second into a frame or decides whether a second is a keyframe asks
it: the dataset and its clip sampler, ``detect``, ``annotate``, ``prep`` and the evaluation report.

Frame ``i`` of the axis is the frame shown at file time ``i / fps`` (whatever the video's own
frame rate): a 25 or 60 fps video gets the same temporal spacing as a 30 fps one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from ava_detect.data import constants


@dataclass(frozen=True)
class TimeAxis:
    """Seconds of a dataset <-> times and frames of its video files.

    Attributes:
        start_second: the second of file time 0 (AVA: 900; own videos: 0).
        keyframe_range: ``(first, last)`` inclusive keyframe seconds (AVA: ``(902, 1798)``), or None:
            every whole second (those annotated, inside their video).
        fps: frames per second of the frame-index axis (30).
    """

    start_second: int = constants.SEGMENT_START_SECOND
    keyframe_range: Optional[Tuple[int, int]] = (constants.FIRST_KEYFRAME_SECOND, constants.LAST_KEYFRAME_SECOND)
    fps: int = constants.FPS

    @classmethod
    def from_config(cls, data_cfg) -> "TimeAxis":
        """The axis the ``data`` section declares (``start_second``, ``keyframe_range`` (``[]``: None), ``fps``)."""
        rng = list(data_cfg.keyframe_range)
        return cls(start_second=int(data_cfg.start_second), keyframe_range=(int(rng[0]), int(rng[1])) if rng else None,
                   fps=int(data_cfg.fps))

    def file_time(self, second: float) -> float:
        """File time (seconds from the video's start) of dataset second ``second``."""
        return second - self.start_second

    def second_at(self, file_time: float) -> float:
        """Dataset second of file time ``file_time``."""
        return self.start_second + file_time

    def frame_index(self, second):
        """0-based index of the frame at ``second`` on the ``fps`` axis: ``round((second - start_second) * fps)``
        (an ``int`` for a number, ``int64`` array for an array)."""
        if isinstance(second, np.ndarray):
            return np.rint((second - self.start_second) * self.fps).astype(np.int64)
        return int(round((second - self.start_second) * self.fps))

    def is_keyframe(self, seconds: np.ndarray) -> np.ndarray:
        """``bool [N]``: which of ``seconds`` (``int [N]``) are valid keyframe seconds (in the range when
        there is one; never before file time 0)."""
        seconds = np.asarray(seconds)
        ok = seconds >= self.start_second
        if self.keyframe_range is not None:
            ok &= (seconds >= self.keyframe_range[0]) & (seconds <= self.keyframe_range[1])
        return ok

    def describe_range(self) -> str:
        """``"902..1798"``, or ``"0.. (inside the video)"`` without a range, for messages."""
        if self.keyframe_range is not None:
            return f"{self.keyframe_range[0]}..{self.keyframe_range[1]}"
        return f"{self.start_second}.. (inside the video)"


#: AVA's axis (the default of every command and of the ``data`` section).
AVA = TimeAxis()
