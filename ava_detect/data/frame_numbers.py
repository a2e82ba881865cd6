"""A video's own frame numbers: frame ``k`` is the ``k``-th picture the file holds, in presentation order.

Annotation tools number a video's frames this way (CVAT decodes the file and counts its pictures),
whatever its frame rate, while the rest of the project addresses pictures by time (frame ``i`` of
the ``fps`` axis is the picture shown at ``i / fps`` s, :mod:`ava_detect.data.video`). The bridge
is the table of the frames' presentation times, read from the file's packet index (demuxing
only, no decoding): the time of a packet is its presentation timestamp, or its decoding
timestamp when it has none (the rule :class:`~ava_detect.data.video_reader.VideoReader` uses),
relative to the stream's start, sorted. The picture shown at time ``t`` is then frame
``k = (number of frames with time <= t + tolerance) - 1`` (:func:`frame_shown_at`): for a constant
frame rate ``r`` starting at 0, ``floor(t * r)``.
"""

from __future__ import annotations

import logging
from typing import Optional

import av
import numpy as np

from ava_detect.data.video_reader import FRAME_TIME_TOLERANCE_S, VideoReader
from ava_detect.errors import AvaDetectError
from ava_detect.io import PathLike

logger = logging.getLogger(__name__)


def frame_times(path: PathLike, *, end: Optional[float] = None) -> np.ndarray:
    """Presentation times of a video's frames, in its own frame order.

    Args:
        path: the video file.
        end: where its frames really end (s from the stream start; :attr:`~ava_detect.data.video.VideoInfo.duration`
            of ``probe_video(check_end=True)`` for a truncated file): packets at or after it (the
            undecodable tail of a file cut short) are not frames. None: every packet is one.

    Returns:
        ``float64 [F]`` seconds from the stream's start, non-decreasing; ``F`` is the video's frame count.

    Raises:
        AvaDetectError: an unreadable file or one without frames.
    """
    times = []
    with VideoReader(path, threads=1) as reader:
        stream = reader.stream
        try:
            for packet in reader.container.demux(stream):
                ts = packet.pts if packet.pts is not None else packet.dts
                if ts is not None and packet.size:
                    times.append(ts)
        except av.FFmpegError as e:
            logger.debug("%s: reading packets stopped: %s", reader.path, e)
        start = stream.start_time if stream.start_time is not None else (min(times) if times else 0)
        seconds = (np.sort(np.asarray(times, dtype=np.int64)) - start) * reader.time_base
    if end is not None:
        seconds = seconds[seconds < end - FRAME_TIME_TOLERANCE_S]
    if seconds.size == 0:
        raise AvaDetectError("video stream has no frames", path)
    return seconds.astype(np.float64)


def frame_shown_at(times: np.ndarray, t: float) -> int:
    """The number of the frame shown at time ``t`` (s from the stream start): the last frame of
    ``times`` (:func:`frame_times`) that starts at or before ``t`` (timestamps rounded to
    milliseconds count), the first frame for times before it."""
    return max(int(np.searchsorted(times, t + FRAME_TIME_TOLERANCE_S, side="right")) - 1, 0)
