"""Small JPEG thumbnails of keyframes, for the report page.

Only the keyframes asked for are decoded: per video, the file is opened once and, for each
keyframe in time order, the decoder seeks to the key frame before it and decodes forward to it
(never a pass over the whole video). The frame of keyframe second ``s`` is the picture shown at
file time ``s - second_offset`` (``second_offset`` = 900 for prepared AVA videos, whose t=0 is
movie second 900; 0 for a user's own clips), the rule :mod:`ava_detect.data.video` reads clips
with: the decoded frame whose presentation interval contains that time, times relative to the
video stream's first frame. This module needs PyAV and Pillow, not torch (``ava-detect eval``
does not load torch), so it reads frame times as the frames' presentation timestamps: for files
whose timestamps need ffmpeg's best-effort correction (AVI with packed B-frames), which the
dataset's reader applies, a thumbnail may show a neighbouring frame.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ava_detect.data.constants import SEGMENT_START_SECOND
from ava_detect.io import PathLike

logger = logging.getLogger(__name__)

#: Thumbnails are at most this wide and high, in pixels (aspect ratio kept).
THUMB_MAX_SIZE = (256, 192)
#: JPEG quality of the thumbnails.
JPEG_QUALITY = 70
#: A decoded frame is taken for a wanted time when its timestamp is at most this much (s) later.
TIME_TOLERANCE_S = 1e-3
#: File name suffixes tried for ``<video_id><suffix>``, in order.
SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v")


@dataclass
class Thumbnails:
    """The thumbnails made for a report.

    Attributes:
        jpeg: ``(video_id, second)`` -> JPEG bytes; ``size``: the same keys -> ``(width, height)``.
        missing_videos: videos asked for that are not in the folder, sorted.
        failed: ``(video_id, second)`` whose frame could not be read (past the end, undecodable).
        skipped: keyframes left without a thumbnail because the byte budget was spent.
    """

    jpeg: Dict[Tuple[str, int], bytes] = field(default_factory=dict)
    size: Dict[Tuple[str, int], Tuple[int, int]] = field(default_factory=dict)
    missing_videos: List[str] = field(default_factory=list)
    failed: List[Tuple[str, int]] = field(default_factory=list)
    skipped: int = 0

    @property
    def total_bytes(self) -> int:
        return sum(len(b) for b in self.jpeg.values())


def find_video(folder: Path, video_id: str, suffixes: Sequence[str] = SUFFIXES) -> Optional[Path]:
    """``folder/<video_id><suffix>`` for the first suffix that exists, else None."""
    for suffix in suffixes:
        path = folder / f"{video_id}{suffix}"
        if path.is_file():
            return path
    return None


def _frame_time(frame, stream, start: Fraction) -> Optional[Fraction]:
    ts = frame.pts if frame.pts is not None else frame.dts
    if ts is None:
        return None
    return ts * stream.time_base - start


def read_frames_at(path: PathLike, times: Sequence[float]) -> Dict[float, np.ndarray]:
    """The pictures shown at file times ``times`` (seconds after the first frame of the video
    stream) -> ``uint8 ndarray[H,W,3]`` RGB, by seeking; times past the end of the video are left out.

    Raises:
        av.FFmpegError: an unreadable file (the caller reports it).
    """
    import av

    out: Dict[float, np.ndarray] = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        base = stream.time_base
        start = Fraction(stream.start_time or 0) * base
        for t in sorted(set(float(x) for x in times)):
            if t < 0:
                continue
            target = int((start + Fraction(t)) / base)
            container.seek(max(target, 0), stream=stream, backward=True, any_frame=False)
            previous = None
            for frame in container.decode(stream):
                ft = _frame_time(frame, stream, start)
                if ft is not None and ft > t + TIME_TOLERANCE_S:
                    if previous is None:  # the seek landed past t: the first frame is the closest
                        previous = frame
                    break
                previous = frame
            else:
                # end of stream: the last frame covers t only if t is within one frame period of it
                if previous is not None:
                    ft = _frame_time(previous, stream, start)
                    rate = float(stream.average_rate or 30)
                    if ft is not None and t > float(ft) + 1.0 / rate + TIME_TOLERANCE_S:
                        previous = None
            if previous is not None:
                out[t] = previous.to_ndarray(format="rgb24")
    return out


def jpeg_thumbnail(rgb: np.ndarray, max_size: Tuple[int, int] = THUMB_MAX_SIZE, quality: int = JPEG_QUALITY
                   ) -> Tuple[bytes, Tuple[int, int]]:
    """``uint8 [H,W,3]`` RGB -> ``(JPEG bytes, (width, height))``, shrunk to fit ``max_size``."""
    from PIL import Image

    image = Image.fromarray(rgb)
    image.thumbnail(max_size, Image.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue(), image.size


def make_thumbnails(
    folder: PathLike,
    keyframes: Iterable[Tuple[str, int]],
    *,
    second_offset: int = SEGMENT_START_SECOND,
    max_bytes: int = 8_000_000,
    suffixes: Sequence[str] = SUFFIXES,
) -> Thumbnails:
    """Thumbnails of ``keyframes`` (``(video_id, second)``, most wanted first) from the videos in
    ``folder`` (``<video_id><suffix>``, the first of ``suffixes`` that exists).

    Keyframes are taken in the given order until their JPEGs reach ``max_bytes`` in all; the
    rest are counted in ``skipped``. Missing videos are listed (with a warning naming them), not
    an error: the other videos still get thumbnails.
    """
    import av

    folder = Path(folder)
    wanted = list(dict.fromkeys((str(v), int(s)) for v, s in keyframes))
    result = Thumbnails()
    paths: Dict[str, Optional[Path]] = {}
    for video, _ in wanted:
        if video not in paths:
            paths[video] = find_video(folder, video, suffixes)
    result.missing_videos = sorted(v for v, p in paths.items() if p is None)
    if result.missing_videos:
        shown = ", ".join(result.missing_videos[:10]) + (", ..." if len(result.missing_videos) > 10 else "")
        logger.warning("%d of %d videos are not in %s (no thumbnails for them): %s", len(result.missing_videos),
                       len(paths), folder, shown)
    # decode in batches, most wanted first, so that the byte budget goes to the first keyframes
    present = [item for item in wanted if paths[item[0]] is not None]
    budget = max_bytes
    for start in range(0, len(present), 64):
        budget = _decode_batch(present[start:start + 64], paths, second_offset, budget, result, av)
        if budget <= 0:
            break
    done = set(result.jpeg) | set(result.failed)
    result.skipped = sum(1 for item in present if item not in done)
    if result.skipped:
        logger.warning("thumbnail budget of %d bytes spent: %d keyframes shown without a picture", max_bytes,
                       result.skipped)
    if result.failed:
        logger.warning("%d keyframes could not be read (past the end of their video?), first: %s,%04d",
                       len(result.failed), *result.failed[0])
    return result


def _decode_batch(batch: List[Tuple[str, int]], paths: Dict[str, Optional[Path]], second_offset: int, budget: int,
                  result: Thumbnails, av) -> int:
    """Thumbnails of ``batch`` into ``result`` until ``budget`` (bytes) is spent; returns what is left."""
    by_video: Dict[str, List[int]] = {}
    for video, second in batch:
        by_video.setdefault(video, []).append(second)
    for video, seconds in by_video.items():
        try:
            frames = read_frames_at(paths[video], [s - second_offset for s in seconds])
        except (av.FFmpegError, OSError) as e:
            logger.warning("%s: cannot decode for thumbnails: %s", paths[video], e)
            frames = {}
        for second in seconds:
            if budget <= 0:
                return budget
            rgb = frames.get(float(second - second_offset))
            if rgb is None:
                result.failed.append((video, second))
                continue
            data, size = jpeg_thumbnail(rgb)
            result.jpeg[(video, second)] = data
            result.size[(video, second)] = size
            budget -= len(data)
    return budget
