"""Clip decoding: frames of a prepared video (PyAV seek + decode) or of a PySlowFast frame folder.

**Frame index <-> time.** Frame ``i`` of a video is the picture shown at time ``i / fps`` seconds
after the first frame of its video stream (``fps`` = 30 for AVA), whatever the file's own frame
rate: for each wanted time we take the decoded frame whose presentation interval
``[t_k, t_{k+1})`` contains it, with ``t_k = pts_k * time_base`` relative to the stream's start.
A prepared 30 fps video therefore gives its frames one to one, and a 25 fps or 29.97 fps file
(or one with rounded millisecond timestamps, as Matroska writes them) gives the frames a 30 fps
resampling of it would show, the same rule that ``prep videos`` uses when it cuts the movies.
Timestamps are those of ffmpeg's "best effort" rule (presentation timestamps unless they are
seen going backwards more often than decoding timestamps), so AVI files with packed B-frames
read correctly too. Wanted times are compared with a tolerance of
:data:`FRAME_TIME_TOLERANCE_S` (timestamps rounded to whole milliseconds).

**Decoding a clip** seeks to the keyframe before the first wanted frame and decodes forward,
converting only the wanted frames to RGB. Videos made by ``prep videos`` hold non-reference
frames only at odd indices, so a clip whose frames are all even (every 32x2 / 8x8 / 4x16 AVA
clip: keyframe centres are multiples of 30) is decoded with the non-reference frames skipped;
if a wanted time falls where the decoder skipped a frame (another encoder's layout), the clip
is decoded again without skipping, so the result never depends on the layout.

**Frame folders** are PySlowFast's layout ``<root>/<video_id>/<video_id>_%06d.jpg`` with frame
``i`` stored as number ``i + 1``.

Nothing is cached between calls except frame counts (immutable file facts, per process), so
readers are safe to use in DataLoader workers: every read opens its own container.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import av
from av.video.reformatter import VideoReformatter  # imported here, never inside forked data-loader workers
import numpy as np
from PIL import Image, UnidentifiedImageError
import torch

from ava_detect.data.constants import FPS, SEGMENT_START_SECOND
from ava_detect.errors import AvaDetectError
from ava_detect.io import PathLike

logger = logging.getLogger(__name__)

#: A decoded frame is taken for a wanted time ``t`` when its timestamp is at most ``t`` plus this
#: (seconds): covers timestamps rounded to whole milliseconds.
FRAME_TIME_TOLERANCE_S = 1e-3
#: Wanted frames at most this far (seconds) past the last decodable frame are clamped to it (the
#: header's duration may count a few frames more than the stream holds); further is an error
#: (a truncated or corrupt file).
TRUNCATION_TOLERANCE_S = 0.5
#: File name suffixes taken as videos when a folder is scanned.
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv", ".mpg", ".mpeg", ".ts", ".3gp", ".ogv", ".wmv")
#: Frames decoded ahead before a timestamp is chosen (see :func:`iter_timed_frames`).
_TIMESTAMP_LOOKAHEAD = 2


@dataclass(frozen=True)
class VideoInfo:
    """What a video file's header (or, failing that, its packet index) says.

    Attributes:
        path: the file.
        num_frames: frames on the ``fps`` time axis (frame ``i`` at ``i / fps`` s), i.e. the number
            of valid frame indices.
        width, height: frame size in pixels.
        rate: the stream's own nominal frame rate (frames per second).
        duration: seconds from the first frame to the end of the last one.
    """

    path: str
    num_frames: int
    width: int
    height: int
    rate: float
    duration: float


def _movie_second(index: int, fps: int) -> float:
    return SEGMENT_START_SECOND + index / fps


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


def _stream_rate(stream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else float(FPS)


def _header_duration(container, stream) -> Optional[float]:
    """Seconds from the stream's first frame to its end, from the header; None if unknown."""
    if stream.duration:
        return float(stream.duration * stream.time_base)
    if container.duration:
        c_start = (container.start_time or 0) / av.time_base
        s_start = float((stream.start_time or 0) * stream.time_base) if stream.start_time is not None else c_start
        return container.duration / av.time_base - (s_start - c_start)
    return None


def _frames_for_duration(duration: float, fps: int) -> int:
    """Number of ``i >= 0`` with ``i / fps`` inside ``[0, duration)`` (with the timestamp tolerance)."""
    return max(0, math.ceil((duration - FRAME_TIME_TOLERANCE_S) * fps))


def _header_num_frames(container, stream, fps: int) -> Optional[int]:
    if stream.frames and stream.average_rate and stream.average_rate == fps:
        return int(stream.frames)
    duration = _header_duration(container, stream)
    return None if duration is None else _frames_for_duration(duration, fps)


def _scan_duration(container, stream, path: str) -> float:
    """Duration from the packet index (demux only, no decoding), for files whose header lacks it."""
    start = stream.start_time
    end = None
    try:
        for packet in container.demux(stream):
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is None:
                continue
            if start is None:
                start = ts
            stop = ts + (packet.duration or 0)
            end = stop if end is None else max(end, stop)
    except av.FFmpegError as e:
        raise AvaDetectError(f"cannot read the video's packets (truncated or corrupt?): {e}", path) from None
    if end is None:
        raise AvaDetectError("video stream has no frames", path)
    return float((end - (start or 0)) * stream.time_base)


def probe_video(path: PathLike, *, fps: int = FPS) -> VideoInfo:
    """Read a video's frame count (on the ``fps`` axis), size, rate and duration without decoding.

    Raises:
        AvaDetectError: missing or unreadable file, no video stream, no frames.
    """
    path = os.fspath(path)
    container, stream = open_video(path)
    try:
        duration = _header_duration(container, stream)
        num_frames = _header_num_frames(container, stream, fps)
        if duration is None:
            duration = _scan_duration(container, stream, path)
            num_frames = _frames_for_duration(duration, fps)
        elif num_frames is not None and stream.frames and stream.average_rate == fps:
            duration = num_frames / fps
        ctx = stream.codec_context
        info = VideoInfo(path=path, num_frames=int(num_frames or 0), width=int(ctx.width), height=int(ctx.height),
                         rate=_stream_rate(stream), duration=float(duration))
    finally:
        container.close()
    if info.num_frames <= 0:
        raise AvaDetectError("video has no frames", path)
    return info


def iter_timed_frames(container, stream) -> Iterator[Tuple[int, "av.VideoFrame"]]:
    """Decode ``stream`` from the container's current position -> ``(timestamp, frame)`` in
    presentation order, ``timestamp`` in ``stream.time_base`` units.

    The timestamp is ffmpeg's best-effort one (``guess_correct_pts``): the frame's pts unless pts
    values have gone backwards more often than dts values, then its dts. The decision for a frame
    is made after a couple of later frames are seen, so the first out-of-order pts of a broken
    file is already counted. A frame with neither gets the previous timestamp plus one frame.
    """
    faulty_pts = faulty_dts = 0
    last_pts = last_dts = None
    buffer: deque = deque()
    last_ts: Optional[int] = None
    step = max(1, round(1 / (_stream_rate(stream) * float(stream.time_base))))

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

    for frame in container.decode(stream):
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


class _SkippedFrame(Exception):
    """A wanted time fell where the decoder skipped a non-reference frame."""


class _SeekMissed(Exception):
    """The seek landed after the first wanted time (a bad index); decode from the start instead."""


class _Timeline:
    """Assigns decoded frames to wanted times (seconds from the stream start), streaming.

    :meth:`assign` yields ``(slot, frame)`` for each wanted time in order; at the end of the
    stream it stops after the slots inside the last frame's display interval, leaving
    :attr:`last` = ``(time, end_time, frame)`` of the last frame for the caller to decide about
    the rest.
    """

    def __init__(self, container, stream, *, from_start: bool, max_gap: Optional[float] = None):
        self.container = container
        self.stream = stream
        self.from_start = from_start
        self.max_gap = max_gap
        self.tb = float(stream.time_base)
        self.start_ts = stream.start_time if stream.start_time is not None else None
        self.period = 1.0 / _stream_rate(stream)
        self.last: Optional[Tuple[float, float, "av.VideoFrame"]] = None

    def assign(self, times: Iterable[float]) -> Iterator[Tuple[int, "av.VideoFrame"]]:
        tol = FRAME_TIME_TOLERANCE_S
        times_iter = iter(times)
        slot = 0
        want = next(times_iter, None)
        prev_t: Optional[float] = None
        prev_frame = None
        for ts, frame in iter_timed_frames(self.container, self.stream):
            if want is None:
                return
            if self.start_ts is None:
                self.start_ts = ts
            t = (ts - self.start_ts) * self.tb
            if prev_frame is None:
                if want + tol < t:
                    if not self.from_start:
                        raise _SeekMissed()
                    # wanted times before the first frame of the video show the first frame
                    while want is not None and want + tol < t:
                        yield slot, frame
                        slot, want = slot + 1, next(times_iter, None)
            else:
                if t <= prev_t:  # timestamps going backwards even after correction: drop the frame
                    continue
                gap = self.max_gap is not None and t - prev_t > self.max_gap
                while want is not None and want + tol < t:
                    if gap and want + tol >= prev_t + self.period:
                        raise _SkippedFrame()  # the frame shown at `want` was skipped by the decoder
                    yield slot, prev_frame
                    slot, want = slot + 1, next(times_iter, None)
            prev_t, prev_frame = t, frame
        if prev_frame is None:
            self.last = None
            return
        duration = float(prev_frame.duration * self.tb) if prev_frame.duration else self.period
        end = prev_t + max(duration, 0.0)
        self.last = (prev_t, end, prev_frame)
        while want is not None and want + tol < end:
            if self.max_gap is not None and want + tol >= prev_t + self.period:
                raise _SkippedFrame()  # frames after the last decoded one were skipped
            yield slot, prev_frame
            slot, want = slot + 1, next(times_iter, None)


#: When a seek lands after the wanted time (a bad index), seek again this many seconds earlier,
#: then from the start of the stream.
_SEEK_RETRY_MARGINS_S = (0.0, 2.0, 30.0, None)


def _with_seek(container, stream, seconds: float, run):
    """``run(from_start)`` after seeking to the keyframe before ``seconds``, retrying earlier when
    the seek overshoots (:class:`_SeekMissed`)."""
    for margin in _SEEK_RETRY_MARGINS_S:
        if margin is None:
            container.seek(stream.start_time or 0, stream=stream, backward=True, any_frame=False)
            return run(True)
        from_start = _seek(container, stream, seconds - margin)
        try:
            return run(from_start)
        except _SeekMissed:
            logger.debug("seek to %.3f s landed too late; retrying %s s earlier", seconds, margin)
    raise AssertionError("unreachable")


def _seek(container, stream, seconds: float) -> bool:
    """Seek to the keyframe at or before ``seconds`` (from the stream start); returns whether
    that is the start of the stream."""
    start_ts = stream.start_time or 0
    target = start_ts + math.floor((seconds - FRAME_TIME_TOLERANCE_S) / float(stream.time_base))
    if target <= start_ts:
        container.seek(start_ts, stream=stream, backward=True, any_frame=False)
        return True
    container.seek(target, stream=stream, backward=True, any_frame=False)
    return False


def _set_threads(stream, threads: int) -> None:
    ctx = stream.codec_context
    if threads == 1:
        ctx.thread_count = 1
    else:
        ctx.thread_type = "AUTO"
        ctx.thread_count = max(threads, 0)


def iter_video_frames(
    path: PathLike,
    *,
    fps: int = FPS,
    start: float = 0.0,
    end: Optional[float] = None,
    threads: int = 0,
) -> Iterator[Tuple[int, "av.VideoFrame"]]:
    """All frames of a video on a constant ``fps`` time axis, decoded sequentially.

    Yields ``(i, frame)`` for ``i = 0, 1, ...``: the frame shown at ``start + i / fps`` seconds
    after the first frame of the video stream, until ``end`` (exclusive) or the end of the video.
    A frame is yielded several times when the file's rate is lower than ``fps`` and some are left
    out when it is higher. Used by ``prep videos`` (``start=900``) and ``prep frames`` (``start=0``).

    Raises:
        AvaDetectError: unreadable file, or a decoding error (naming the file and the second).
    """
    path = os.fspath(path)
    container, stream = open_video(path)
    i = -1
    try:
        _set_threads(stream, threads)

        def times() -> Iterator[float]:
            k = 0
            while end is None or start + k / fps < end - FRAME_TIME_TOLERANCE_S:
                yield start + k / fps
                k += 1

        def run(from_start: bool):
            # _SeekMissed can only come before the first frame is yielded
            return _Timeline(container, stream, from_start=from_start).assign(times())

        if start > 0:
            frames = _with_seek(container, stream, start, lambda fs: _first_then_rest(run(fs)))
        else:
            frames = run(True)
        for i, frame in frames:
            yield i, frame
    except av.FFmpegError as e:
        second = start + max(i, 0) / fps
        raise AvaDetectError(f"decoding failed near second {second:.2f} of the file: {e}", path) from None
    finally:
        container.close()


def _first_then_rest(gen: Iterator) -> Iterator:
    """Pull the first item now (so that a :class:`_SeekMissed` is raised inside the caller's
    retry loop), then hand back an iterator over all items."""
    try:
        first = next(gen)
    except StopIteration:
        return iter(())

    def chain():
        yield first
        yield from gen

    return chain()


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


def frame_to_rgb(frame: "av.VideoFrame", width: Optional[int] = None, height: Optional[int] = None) -> np.ndarray:
    """A decoded frame -> ``uint8 ndarray[H,W,3]`` RGB (the conversion every reader here uses)."""
    return _rgb(frame, width or frame.width, height or frame.height)


def read_video_frames(
    path: PathLike,
    indices: Union[Sequence[int], torch.Tensor],
    *,
    fps: int = FPS,
    num_frames: Optional[int] = None,
    threads: int = 1,
    skip_nonref: bool = True,
) -> torch.Tensor:
    """Frames ``indices`` of a video (frame ``i`` = the picture shown at ``i / fps`` s).

    Args:
        path: video file (any container/codec PyAV reads; prepared AVA videos are h264 mp4).
        indices: frame indices, any order, repeats allowed; clamped to ``[0, num_frames - 1]``.
        fps: the frame-index time axis (30 for AVA).
        num_frames: frames in the video on that axis (:func:`probe_video`); None reads the header.
        threads: decoder threads (1 in DataLoader workers; 0 = as many as the codec likes).
        skip_nonref: allow skipping non-reference frames when every wanted index is even.

    Returns:
        ``uint8 Tensor[len(indices), H, W, 3]`` RGB.

    Raises:
        AvaDetectError: unreadable file, a decoding error, or a file that ends more than
            :data:`TRUNCATION_TOLERANCE_S` before a wanted frame (truncated or corrupt); the
            message names the file and the movie second (``900 + index / fps``).
    """
    path = os.fspath(path)
    idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
    if idx.numel() == 0:
        raise ValueError("no frame indices given")
    container, stream = open_video(path)
    try:
        if num_frames is None:
            num_frames = _header_num_frames(container, stream, fps)
            if num_frames is None:
                num_frames = _frames_for_duration(_scan_duration(container, stream, path), fps)
                container.seek(stream.start_time or 0, stream=stream, backward=True, any_frame=False)
        if num_frames <= 0:
            raise AvaDetectError("video has no frames", path)
        idx = idx.clamp(0, num_frames - 1)
        unique, inverse = torch.unique(idx, sorted=True, return_inverse=True)
        wanted = [int(i) for i in unique]
        _set_threads(stream, threads)
        skip = skip_nonref and all(i % 2 == 0 for i in wanted)
        try:
            frames = _decode_indices(container, stream, wanted, fps=fps, skip_nonref=skip, path=path)
        except _SkippedFrame:
            frames = _decode_indices(container, stream, wanted, fps=fps, skip_nonref=False, path=path)
    except av.FFmpegError as e:
        lo, hi = int(idx.min()), int(idx.max())
        raise AvaDetectError(
            f"decoding failed for frames {lo}..{hi} (movie seconds {_movie_second(lo, fps):.2f}.."
            f"{_movie_second(hi, fps):.2f}); truncated or corrupt video? ({e})", path) from None
    finally:
        container.close()
    return _gather(torch.from_numpy(np.stack(frames)), inverse)


def _gather(unique_frames: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    """``unique_frames[inverse]``, without a copy when ``inverse`` is ``0, 1, 2, ...``."""
    if inverse.numel() == unique_frames.shape[0] and torch.equal(inverse, torch.arange(inverse.numel())):
        return unique_frames
    return unique_frames[inverse]


def _decode_indices(container, stream, wanted: List[int], *, fps: int, skip_nonref: bool, path: str) -> List[np.ndarray]:
    times = [i / fps for i in wanted]
    ctx = stream.codec_context
    ctx.skip_frame = "NONREF" if skip_nonref else "DEFAULT"
    width, height = ctx.width, ctx.height
    period = 1.0 / _stream_rate(stream)
    max_gap = 1.5 * period if skip_nonref else None
    out: List[Optional[np.ndarray]] = [None] * len(times)
    cached: Tuple[object, Optional[np.ndarray]] = (None, None)

    def run(from_start: bool) -> _Timeline:
        nonlocal cached
        for k in range(len(out)):
            out[k] = None
        timeline = _Timeline(container, stream, from_start=from_start, max_gap=max_gap)
        for slot, frame in timeline.assign(times):
            if cached[0] is not frame:
                cached = (frame, _rgb(frame, width or frame.width, height or frame.height))
            out[slot] = cached[1]
        return timeline

    timeline = _with_seek(container, stream, times[0], run)
    missing = [k for k, a in enumerate(out) if a is None]
    if missing:
        last = timeline.last
        first_missing = wanted[missing[0]]
        if last is None:
            raise AvaDetectError(
                f"no frame could be decoded at or after movie second {_movie_second(wanted[0], fps):.2f} "
                f"(frame {wanted[0]}); truncated or corrupt video?", path)
        if times[missing[-1]] > last[1] + TRUNCATION_TOLERANCE_S:
            raise AvaDetectError(
                f"video ends at movie second {SEGMENT_START_SECOND + last[1]:.2f} but frame {first_missing} "
                f"(movie second {_movie_second(first_missing, fps):.2f}) is wanted and the header promises "
                f"more; truncated or corrupt video?", path)
        rgb = _rgb(last[2], width or last[2].width, height or last[2].height)
        for k in missing:
            out[k] = rgb
    return out  # type: ignore[return-value]


class VideoFolder:
    """Prepared videos ``<root>/<video_id><suffix>`` as a clip source.

    Args:
        root: folder of the videos.
        suffix: file name suffix (``.mp4``).
        fps: frame-index time axis (30 for AVA).
        threads: decoder threads per read (1 in DataLoader workers).
    """

    kind = "video"

    def __init__(self, root: PathLike, *, suffix: str = ".mp4", fps: int = FPS, threads: int = 1):
        self.root = Path(root)
        self.suffix = suffix
        self.fps = fps
        self.threads = threads
        self._counts: Dict[str, int] = {}

    def path(self, video_id: str) -> Path:
        return self.root / f"{video_id}{self.suffix}"

    def exists(self, video_id: str) -> bool:
        return self.path(video_id).is_file()

    def num_frames(self, video_id: str) -> int:
        """Frames of the video on the ``fps`` axis (from its header; cached per process)."""
        if video_id not in self._counts:
            self._counts[video_id] = probe_video(self.path(video_id), fps=self.fps).num_frames
        return self._counts[video_id]

    def read(self, video_id: str, indices: Union[Sequence[int], torch.Tensor], *,
             num_frames: Optional[int] = None) -> torch.Tensor:
        """Frames ``indices`` (clamped) -> ``uint8 Tensor[T,H,W,3]``; see :func:`read_video_frames`."""
        return read_video_frames(self.path(video_id), indices, fps=self.fps, num_frames=num_frames,
                                 threads=self.threads)


#: PySlowFast's frame file name: ``<video_id>_%06d.jpg``, numbered from 1.
FRAME_NAME = "{video_id}_{number:06d}.jpg"


def frame_relpath(video_id: str, index: int) -> str:
    """Relative path of frame ``index`` (0-based) in a PySlowFast frame folder:
    ``<video_id>/<video_id>_<index+1:06d>.jpg``."""
    return f"{video_id}/" + FRAME_NAME.format(video_id=video_id, number=index + 1)


class FrameFolder:
    """PySlowFast frame folders ``<root>/<video_id>/<video_id>_%06d.jpg`` (frames numbered from 1)
    as a clip source.

    Args:
        root: folder holding one sub-folder per video.
    """

    kind = "frames"

    def __init__(self, root: PathLike):
        self.root = Path(root)
        self._counts: Dict[str, int] = {}

    def path(self, video_id: str) -> Path:
        return self.root / video_id

    def frame_path(self, video_id: str, index: int) -> Path:
        return self.root / frame_relpath(video_id, index)

    def exists(self, video_id: str) -> bool:
        return self.frame_path(video_id, 0).is_file()

    def num_frames(self, video_id: str) -> int:
        """Number of frames: the highest ``N`` with frames ``1..N`` present (binary search; cached)."""
        if video_id not in self._counts:
            if not self.exists(video_id):
                raise AvaDetectError(f"frame folder has no first frame {FRAME_NAME.format(video_id=video_id, number=1)}",
                                     self.path(video_id))
            lo, hi = 1, 2
            while self.frame_path(video_id, hi - 1).is_file():
                lo, hi = hi, hi * 2
            while hi - lo > 1:  # frame lo exists, frame hi does not
                mid = (lo + hi) // 2
                if self.frame_path(video_id, mid - 1).is_file():
                    lo = mid
                else:
                    hi = mid
            self._counts[video_id] = lo
        return self._counts[video_id]

    def read(self, video_id: str, indices: Union[Sequence[int], torch.Tensor], *,
             num_frames: Optional[int] = None) -> torch.Tensor:
        """Frames ``indices`` (clamped to the folder's frames) -> ``uint8 Tensor[T,H,W,3]`` (Pillow decodes).

        Raises:
            AvaDetectError: a missing or undecodable JPEG, naming the file and the movie second.
        """

        n = num_frames if num_frames is not None else self.num_frames(video_id)
        idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1).clamp(0, max(n - 1, 0))
        unique, inverse = torch.unique(idx, sorted=True, return_inverse=True)
        images = []
        for i in unique.tolist():
            path = self.frame_path(video_id, i)
            try:
                with Image.open(path) as image:
                    images.append(np.asarray(image.convert("RGB")))
            except FileNotFoundError:
                raise AvaDetectError(f"frame {i} (movie second {_movie_second(i, FPS):.2f}) is missing", path) from None
            except (UnidentifiedImageError, OSError, ValueError) as e:
                raise AvaDetectError(
                    f"cannot decode frame {i} (movie second {_movie_second(i, FPS):.2f}) as JPEG: {e}", path) from None
        if len({im.shape for im in images}) > 1:
            raise AvaDetectError(f"frames of one clip differ in size: {sorted({im.shape for im in images})}",
                                 self.path(video_id))
        return _gather(torch.from_numpy(np.stack(images)), inverse)


ClipSource = Union[VideoFolder, FrameFolder]


def list_videos(folder: PathLike, extensions: Sequence[str] = VIDEO_EXTENSIONS) -> List[Path]:
    """Video files directly inside ``folder`` (by suffix, hidden files left out), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AvaDetectError("video folder not found", folder)
    exts = {e.lower() for e in extensions}
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in exts)


__all__ = [
    "FRAME_TIME_TOLERANCE_S", "TRUNCATION_TOLERANCE_S", "VIDEO_EXTENSIONS", "VideoInfo", "open_video",
    "probe_video", "iter_timed_frames", "iter_video_frames", "read_video_frames", "frame_to_rgb",
    "VideoFolder", "FrameFolder", "ClipSource", "frame_relpath", "FRAME_NAME", "list_videos",
]
