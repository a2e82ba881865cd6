"""Person boxes at the keyframes of a video file: which seconds, which frames, and the detector run.

A keyframe is a whole second ``s`` of the dataset's time axis (:class:`~ava_detect.data.time_axis.TimeAxis`).
In a video file, second ``s`` is file time ``s - second_offset``: prepared AVA videos start at movie
second 900 (``second_offset`` 900, ``data.start_second`` of the AVA config), a user's clip at 0. The
keyframe's picture is frame ``(s - second_offset) * fps`` of the ``fps`` time axis (``data.fps``, 30;
:func:`~ava_detect.data.video.read_video_frames`), the centre frame of the clip the action model sees.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple

import torch

from ava_detect.data.time_axis import AVA
from ava_detect.data.video import read_video_frames
from ava_detect.detection.base import PersonDetector
from ava_detect.errors import AvaDetectError
from ava_detect.io import PathLike

logger = logging.getLogger(__name__)


def parse_second_range(text: str) -> Tuple[int, int]:
    """``"902-1798"`` -> ``(902, 1798)`` (inclusive); a single ``"902"`` -> ``(902, 902)``.

    Raises:
        AvaDetectError: not ``A-B`` with whole numbers ``0 <= A <= B``.
    """
    parts = text.strip().split("-")
    try:
        if len(parts) == 1:
            lo = hi = int(parts[0])
        elif len(parts) == 2:
            lo, hi = int(parts[0]), int(parts[1])
        else:
            raise ValueError
    except ValueError:
        raise AvaDetectError(f"--seconds must look like 902-1798 (whole seconds, inclusive), got {text!r}") from None
    if lo < 0 or hi < lo:
        raise AvaDetectError(f"--seconds range must have 0 <= first <= last, got {text!r}")
    return lo, hi


def keyframe_seconds(
    *, duration: float, second_offset: int, every: Optional[float] = None, seconds: Optional[Tuple[int, int]] = None,
) -> List[int]:
    """The keyframe seconds of a video ``duration`` seconds long, inside the video.

    Args:
        duration: seconds of the video file.
        second_offset: the second of file time 0 (900 for prepared AVA videos).
        every: seconds between keyframes, from file time 0 (``second_offset``, ``second_offset + every``, ...;
            default 1). AVA keys are whole seconds, so ``every`` is a whole number of seconds (``2`` or ``2.0``).
        seconds: ``(first, last)`` inclusive range of seconds instead (e.g. AVA's ``(902, 1798)``).

    Returns:
        Sorted seconds ``s`` with file time ``s - second_offset`` in ``[0, duration)``.

    Raises:
        AvaDetectError: ``every`` is not a whole number of seconds >= 1.
    """
    if seconds is not None:
        lo, hi = seconds
        candidates = range(lo, hi + 1)
    else:
        step = 1.0 if every is None else float(every)
        if not (step >= 1 and step == int(step)):
            raise AvaDetectError(f"--every: keyframes of an AVA box CSV are whole seconds apart; expected a whole "
                                 f"number of seconds >= 1, got {every:g}")
        step = int(step)
        candidates = range(second_offset, second_offset + max(int(math.ceil(duration)), 0) + 1, step)
    return [s for s in candidates if 0 <= s - second_offset < duration - 1e-6]


@dataclass
class KeyframeDetections:
    """Detections at one keyframe.

    Attributes:
        second: the keyframe's second (AVA time axis).
        boxes: ``float Tensor[K,4]`` pixel ``(x1, y1, x2, y2)`` of the ``width x height`` frame.
        scores: ``float Tensor[K]``.
        width, height: of the frame the boxes are in (pixels).
    """

    second: int
    boxes: torch.Tensor
    scores: torch.Tensor
    width: int
    height: int


def detect_keyframes(
    path: PathLike, *, detector: PersonDetector, video_id: str, seconds: Sequence[int], second_offset: int,
    num_frames: int, fps: int = AVA.fps, chunk: int = 8,
) -> Iterator[KeyframeDetections]:
    """Run ``detector`` on the keyframes ``seconds`` of one video, ``chunk`` frames decoded at a time.

    Args:
        path: the video file.
        video_id: its id (the key the csv detector looks boxes up by).
        num_frames: frames of the video on the ``fps`` axis (:func:`~ava_detect.data.video.probe_video`).
        fps: the frame-index time axis (``data.fps``; :class:`~ava_detect.data.time_axis.TimeAxis`).

    Yields:
        :class:`KeyframeDetections` in the order of ``seconds``.

    Raises:
        AvaDetectError: an unreadable or truncated video (naming it and the second).
    """
    for start in range(0, len(seconds), max(1, chunk)):
        part = [int(s) for s in seconds[start:start + chunk]]
        indices = [int(round((s - second_offset) * fps)) for s in part]
        frames = read_video_frames(path, indices, fps=fps, num_frames=num_frames, threads=0)
        height, width = int(frames.shape[1]), int(frames.shape[2])
        found = detector.detect(frames, keys=[(video_id, s) for s in part])
        for s, (boxes, scores) in zip(part, found):
            yield KeyframeDetections(second=s, boxes=boxes, scores=scores, width=width, height=height)
