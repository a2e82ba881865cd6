"""The one way video files are read: frames with their presentation times, pictures turned
upright, and a check of where the stream really ends.

Every reader of video files in the project decodes through :class:`VideoReader`: the clip reader
of the dataset and of ``detect`` (:func:`~ava_detect.data.video.read_video_frames`), the
sequential passes of ``prep videos`` and ``prep frames``
(:func:`~ava_detect.data.video.iter_video_frames`), and ``annotate``.

**Times.** A frame's time is its presentation time in seconds from the start of the video stream,
from ffmpeg's "best effort" timestamp rule (presentation timestamps unless they are seen going
backwards more often than decoding timestamps), so variable-frame-rate files keep their own
frame times and AVI files with packed B-frames read correctly too.

**Orientation.** Phones store pictures as the sensor saw them and write how a player must turn
them: a display matrix (side data of the stream, given to each decoded frame) or, in older
files, a ``rotate`` tag (degrees clockwise). :class:`Orientation` reads either; quarter turns and
a left-right mirror are applied to every RGB picture (:meth:`VideoReader.rgb`) and to every frame
handed on (:meth:`VideoReader.upright_frame`), so what the models see and what we write is what a
player shows. Sizes given out (:class:`~ava_detect.data.video.VideoInfo`) are the shown ones.

**Truncation.** A file cut short (a copy or download that stopped) decodes until its data ends:
a decoding error on the file's last packets ends the stream there instead of failing (an error
followed by more data is a damaged file and still an error). A pass that reaches the end of the
stream calls :meth:`VideoReader.check_end`, which warns once (``logging``), naming the file, where
its frames end and the duration its header claims, when the stream ended more than
:data:`TRUNCATION_TOLERANCE_S` early or inside a frame. :func:`decoded_end` finds the real end
without a full pass (for ``detect``, which reads only keyframes).
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections import deque
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping, Optional, Tuple

import av
from av.video.reformatter import VideoReformatter  # imported here, never inside forked data-loader workers
import numpy as np

from ava_detect.data.constants import FPS
from ava_detect.errors import AvaDetectError
from ava_detect.io import PathLike

logger = logging.getLogger(__name__)

#: A decoded frame is taken for a wanted time ``t`` when its timestamp is at most ``t`` plus this
#: (seconds): covers timestamps rounded to whole milliseconds.
FRAME_TIME_TOLERANCE_S = 1e-3
#: A stream whose frames end more than this (seconds) before the duration its header claims is
#: truncated (warned about); wanted frames at most this far past the last decodable frame are
#: clamped to it (headers may count a few frames more than the stream holds).
TRUNCATION_TOLERANCE_S = 0.5
#: Frames decoded ahead before a timestamp is chosen (see :func:`_best_effort_times`).
_TIMESTAMP_LOOKAHEAD = 2


@dataclass(frozen=True)
class Orientation:
    """How a player turns a video's stored pictures: ``rotation`` degrees counter-clockwise
    (0, 90, 180 or 270), then a left-right mirror when ``mirrored``."""

    rotation: int = 0
    mirrored: bool = False

    @property
    def is_identity(self) -> bool:
        return self.rotation == 0 and not self.mirrored

    def shown_size(self, width: int, height: int) -> Tuple[int, int]:
        """``(width, height)`` of a stored picture as shown."""
        return (height, width) if self.rotation in (90, 270) else (width, height)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """A stored ``[H,W,C]`` picture -> the shown one (a contiguous array; the input when nothing turns)."""
        if self.is_identity:
            return rgb
        out = np.rot90(rgb, k=self.rotation // 90) if self.rotation else rgb
        if self.mirrored:
            out = out[:, ::-1]
        return np.ascontiguousarray(out)

    @staticmethod
    def from_matrix(matrix: np.ndarray) -> Optional["Orientation"]:
        """From a display matrix (9 ``int32``, ffmpeg's layout; ``a b c d`` in 16.16 fixed point)
        -> the orientation, or None when it is not quarter turns (and mirrors)."""
        a, b, c, d = (float(matrix[k]) / 65536.0 for k in (0, 1, 3, 4))
        mirrored = a * d - b * c < 0
        if mirrored:  # ffmpeg's av_display_matrix_flip(m, hflip=1): the rest is a pure rotation
            a, c = -a, -c
        if math.hypot(a, c) == 0 or math.hypot(b, d) == 0:
            return None
        # av_display_rotation_get: degrees counter-clockwise
        angle = -math.degrees(math.atan2(b / math.hypot(b, d), a / math.hypot(a, c)))
        quarter = round(angle / 90.0)
        if abs(angle - 90.0 * quarter) > 1.0:
            return None
        return Orientation(rotation=int(quarter * 90) % 360, mirrored=mirrored)

    @staticmethod
    def from_tag(metadata: Mapping[str, str]) -> Optional["Orientation"]:
        """From an old-style ``rotate`` tag (degrees clockwise, any case of the key); None when absent
        or not a quarter turn."""
        value = next((v for k, v in metadata.items() if k.lower() == "rotate"), None)
        try:
            degrees = float(value) if value is not None else None
        except ValueError:
            return None
        if degrees is None or degrees % 90:
            return None
        return Orientation(rotation=int(-degrees) % 360)


def _matrix(frame: "av.VideoFrame") -> Optional[np.ndarray]:
    for side_data in frame.side_data:
        if side_data.type.name == "DISPLAYMATRIX":
            return np.frombuffer(bytes(side_data), dtype=np.int32)
    return None


_LOCAL = threading.local()


def _reformatter() -> "av.video.reformatter.VideoReformatter":
    """One colour converter per process and thread: it keeps its swscale context between frames,
    which is ~20x faster than a fresh context per frame (what ``VideoFrame.reformat`` does)."""
    pid = os.getpid()
    if getattr(_LOCAL, "pid", None) != pid:
        _LOCAL.pid, _LOCAL.reformatter = pid, VideoReformatter()
    return _LOCAL.reformatter


def _rgb(frame: "av.VideoFrame", width: int, height: int) -> np.ndarray:
    if frame.width == width and frame.height == height and frame.format.name == "rgb24":
        return frame.to_ndarray()
    return _reformatter().reformat(frame, width=width, height=height, format="rgb24").to_ndarray()


def frame_to_rgb(frame: "av.VideoFrame", width: Optional[int] = None, height: Optional[int] = None, *,
                 orientation: Optional[Orientation] = None) -> np.ndarray:
    """A decoded frame -> ``uint8 ndarray[H,W,3]`` RGB as shown (the conversion every reader here uses).

    Args:
        frame: a decoded frame.
        width, height: size of the result as shown (default: the frame's own, turned).
        orientation: how to turn the picture (default: the frame's own display matrix, if any).
    """
    if orientation is None:
        matrix = _matrix(frame)
        orientation = (Orientation.from_matrix(matrix) if matrix is not None else None) or Orientation()
    if width is None or height is None:
        stored_w, stored_h = frame.width, frame.height
    else:
        stored_w, stored_h = orientation.shown_size(width, height)  # a quarter turn swaps both ways
    return orientation.apply(_rgb(frame, stored_w, stored_h))


def open_video(path: PathLike) -> Tuple["av.container.InputContainer", "av.video.stream.VideoStream"]:
    """Open ``path`` with PyAV -> ``(container, first video stream)``.

    Raises:
        AvaDetectError: the file is missing, is not a media file PyAV can read, or has no video stream.
    """
    path = os.fspath(path)
    try:
        container = av.open(path, mode="r", metadata_errors="ignore")
    except FileNotFoundError:
        raise AvaDetectError("video file not found", path) from None
    except (av.FFmpegError, OSError, ValueError) as e:
        raise AvaDetectError(f"cannot open as a video (truncated or corrupt?): {e}", path) from None
    if not container.streams.video:
        container.close()
        raise AvaDetectError("file has no video stream", path)
    return container, container.streams.video[0]


def stream_rate(stream) -> float:
    """The stream's nominal frame rate (frames per second; 30 when the file does not say)."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else float(FPS)


def header_duration(container, stream) -> Optional[float]:
    """Seconds from the stream's first frame to its end, from the header; None if unknown."""
    if stream.duration:
        return float(stream.duration * stream.time_base)
    if container.duration:
        c_start = (container.start_time or 0) / av.time_base
        s_start = float((stream.start_time or 0) * stream.time_base) if stream.start_time is not None else c_start
        return container.duration / av.time_base - (s_start - c_start)
    return None


def claimed_duration(container, stream) -> Optional[float]:
    """The duration the file claims for its video stream (s): the stream's own ``DURATION`` tag when
    it has one (Matroska writes one per track, so audio that runs longer does not count), else
    :func:`header_duration`."""
    tag = next((v for k, v in stream.metadata.items() if k.lower() == "duration"), None)
    if tag:
        try:
            hours, minutes, seconds = tag.strip().split(":")
            value = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
            if value > 0:
                return value
        except ValueError:
            pass
    return header_duration(container, stream)


def set_threads(stream, threads: int) -> None:
    """Decoder threads: 1, or ``threads`` (0: as many as the codec likes) of any kind."""
    ctx = stream.codec_context
    if threads == 1:
        ctx.thread_count = 1
    else:
        ctx.thread_type = "AUTO"
        ctx.thread_count = max(threads, 0)


def _best_effort_times(frames: Iterable["av.VideoFrame"], stream) -> Iterator[Tuple[int, "av.VideoFrame"]]:
    """Decoded frames in presentation order -> ``(timestamp, frame)``, ``timestamp`` in ``stream.time_base`` units.

    The timestamp is ffmpeg's best-effort one (``guess_correct_pts``): the frame's pts unless pts
    values have gone backwards more often than dts values, then its dts. The decision for a frame
    is made after a couple of later frames are seen, so the first out-of-order pts of a broken
    file is already counted. A frame with neither gets the previous timestamp plus one frame.
    """
    faulty_pts = faulty_dts = 0
    last_pts = last_dts = None
    buffer: deque = deque()
    last_ts: Optional[int] = None
    step = max(1, round(1 / (stream_rate(stream) * float(stream.time_base))))

    def choose(frame) -> int:
        nonlocal last_ts
        pts, dts = frame.pts, frame.dts
        if pts is not None and (faulty_pts <= faulty_dts or dts is None):
            ts = pts
        elif dts is not None:
            ts = dts
        else:
            ts = (last_ts + step) if last_ts is not None else 0
        last_ts = ts
        return ts

    for frame in frames:
        if frame.dts is not None:
            faulty_dts += last_dts is not None and frame.dts <= last_dts
            last_dts = frame.dts
        if frame.pts is not None:
            faulty_pts += last_pts is not None and frame.pts <= last_pts
            last_pts = frame.pts
        buffer.append(frame)
        if len(buffer) > _TIMESTAMP_LOOKAHEAD:
            f = buffer.popleft()
            yield choose(f), f
    while buffer:
        f = buffer.popleft()
        yield choose(f), f


class VideoReader:
    """One open video file, read by the rules of this module's docstring. A context manager.

    Args:
        path: the video file.
        threads: decoder threads (1 in DataLoader workers; 0: as many as the codec likes).

    Attributes:
        path, container, stream: the file and its first video stream.
        claimed_duration: seconds from the first frame to the end, as the file claims (None: not said;
            :func:`claimed_duration`).
        end: seconds (from the stream start) where the latest frame decoded so far ends; None before any.
        cut_short: the stream's last packets could not be decoded (its data stops inside a frame).

    Raises:
        AvaDetectError: the file is missing, not a video, or has no video stream.
    """

    def __init__(self, path: PathLike, *, threads: int = 0):
        self.path = os.fspath(path)
        self.container, self.stream = open_video(self.path)
        set_threads(self.stream, threads)
        self.time_base = float(self.stream.time_base)
        self.start_ts: Optional[int] = self.stream.start_time
        self.period = 1.0 / stream_rate(self.stream)
        self.claimed_duration = claimed_duration(self.container, self.stream)
        self.end: Optional[float] = None
        self._latest: Optional[float] = None
        self.cut_short = False
        self._tag = Orientation.from_tag(dict(self.stream.metadata))
        self._matrices: dict = {}
        self._warned = False

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- positions -----------------------------------------------------------------------------

    def seek(self, seconds: float) -> bool:
        """Seek to the keyframe at or before ``seconds`` (from the stream start); returns whether
        that is the start of the stream."""
        start_ts = self.stream.start_time or 0
        target = start_ts + math.floor((seconds - FRAME_TIME_TOLERANCE_S) / self.time_base)
        if target <= start_ts:
            self.seek_start()
            return True
        self.container.seek(target, stream=self.stream, backward=True, any_frame=False)
        return False

    def seek_start(self) -> None:
        self.container.seek(self.stream.start_time or 0, stream=self.stream, backward=True, any_frame=False)

    # ---- frames --------------------------------------------------------------------------------

    def _decoded(self) -> Iterator["av.VideoFrame"]:
        """Frames decoded from the current position; an error on the last packets ends the stream."""
        failed: Optional[av.FFmpegError] = None
        for packet in self.container.demux(self.stream):
            if failed is not None and packet.size:
                raise failed  # more data after an undecodable packet: damaged inside, not cut short
            try:
                frames = packet.decode()
            except av.FFmpegError as e:
                failed = failed or e
                continue
            yield from frames
        if failed is not None:
            logger.debug("%s: the last packets could not be decoded: %s", self.path, failed)
            self.cut_short = True

    def frames(self) -> Iterator[Tuple[float, "av.VideoFrame"]]:
        """Decode from the current position -> ``(time, frame)`` in presentation order, ``time`` in
        seconds from the stream's start (best-effort timestamps; may repeat or go backwards in
        broken files). Updates :attr:`end`.

        Raises:
            av.FFmpegError: a read or decoding error that is not the end of a cut-short file.
        """
        tb = self.time_base
        for ts, frame in _best_effort_times(self._decoded(), self.stream):
            if self.start_ts is None:
                self.start_ts = ts
            t = (ts - self.start_ts) * tb
            if self._latest is None or t > self._latest:
                duration = float(frame.duration * tb) if frame.duration else self.period
                self._latest, self.end = t, t + max(duration, 0.0)
            yield t, frame

    def reset_end(self) -> None:
        """Forget :attr:`end` (before another pass)."""
        self.end = self._latest = None

    def orientation(self, frame: "av.VideoFrame") -> Orientation:
        """How ``frame`` is shown: its display matrix, else the stream's ``rotate`` tag, else as stored."""
        matrix = _matrix(frame)
        if matrix is None:
            return self._tag or Orientation()
        key = matrix.tobytes()
        if key not in self._matrices:
            found = Orientation.from_matrix(matrix)
            if found is None:
                logger.warning("%s: the display matrix %s turns pictures by other than quarter turns; "
                               "they are used as stored", self.path, matrix.tolist())
            self._matrices[key] = found or Orientation()
        return self._matrices[key]

    def rgb(self, frame: "av.VideoFrame", width: Optional[int] = None, height: Optional[int] = None) -> np.ndarray:
        """``frame`` -> ``uint8 ndarray[H,W,3]`` RGB as shown, ``width x height`` if given (:func:`frame_to_rgb`)."""
        return frame_to_rgb(frame, width, height, orientation=self.orientation(frame))

    def upright_frame(self, frame: "av.VideoFrame") -> "av.VideoFrame":
        """``frame`` as shown: itself when nothing turns, else a new RGB frame (same pts and time base)."""
        if self.orientation(frame).is_identity:
            return frame
        out = av.VideoFrame.from_ndarray(self.rgb(frame), format="rgb24")
        out.pts, out.time_base = frame.pts, frame.time_base
        return out

    # ---- the end ---------------------------------------------------------------------------------

    def is_truncated(self) -> bool:
        """After a pass to the end of the stream: whether it ended early (more than
        :data:`TRUNCATION_TOLERANCE_S` before the header's duration) or inside a frame."""
        claimed = self.claimed_duration
        end = self.end or 0.0
        return self.cut_short or (claimed is not None and end < claimed - TRUNCATION_TOLERANCE_S)

    def check_end(self) -> bool:
        """After a pass to the end of the stream: warn (once per reader) when it is truncated;
        returns :meth:`is_truncated`."""
        if not self.is_truncated():
            return False
        if not self._warned:
            self._warned = True
            logger.warning("%s", truncation_message(self.path, self.end or 0.0, self.claimed_duration))
        return True


def truncation_message(path: str, end: float, claimed: Optional[float]) -> str:
    """The one warning about a truncated video: the file, where its frames end, what the header claims."""
    said = (f"its header says {claimed:.2f} s" if claimed is not None else "its header gives no duration")
    return (f"{path}: truncated or damaged video: its frames end at {end:.2f} s but {said}; "
            f"only the frames up to {end:.2f} s are used")


def _last_packet_time(reader: VideoReader) -> Optional[float]:
    """Seconds (from the stream start) of the latest packet the file holds, demuxing from the start."""
    reader.seek_start()
    start = reader.stream.start_time
    latest = None
    try:
        for packet in reader.container.demux(reader.stream):
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is None or not packet.size:
                continue
            start = ts if start is None else start
            latest = ts if latest is None else max(latest, ts)
    except av.FFmpegError as e:
        logger.debug("%s: reading packets stopped: %s", reader.path, e)
    return None if latest is None else (latest - (start or 0)) * reader.time_base


def decoded_end(path: PathLike) -> Tuple[float, bool]:
    """Where a video's frames really end, without decoding it all -> ``(seconds from the stream
    start, truncated)``; warns once when truncated (:meth:`VideoReader.check_end`).

    Decodes the last second the header claims; when the frames end early there, finds the latest
    packet the file holds (demuxing only) and decodes from the keyframe before it.

    Raises:
        AvaDetectError: unreadable file, a decoding error, or no decodable frame.
    """
    with VideoReader(path, threads=0) as reader:
        try:
            claimed = reader.claimed_duration
            if claimed is not None:
                reader.seek(max(claimed - 1.0, 0.0))
                for _ in reader.frames():
                    pass
                if reader.end is not None and not reader.is_truncated():
                    return reader.end, False
            last = _last_packet_time(reader)
            reader.reset_end()
            reader.seek(max((last or 0.0) - 1.0, 0.0))
            for _ in reader.frames():
                pass
        except av.FFmpegError as e:
            raise AvaDetectError(f"cannot decode the end of the video (corrupt?): {e}", reader.path) from None
        if reader.end is None:
            raise AvaDetectError("no frame could be decoded (truncated or corrupt video)", reader.path)
        return reader.end, reader.check_end()


__all__ = ["FRAME_TIME_TOLERANCE_S", "TRUNCATION_TOLERANCE_S", "Orientation", "VideoReader", "decoded_end",
           "frame_to_rgb", "header_duration", "open_video", "set_threads", "stream_rate", "truncation_message"]

