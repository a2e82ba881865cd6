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

**Reading** goes through :class:`~ava_detect.data.video_reader.VideoReader` (frames with their
presentation times, pictures turned as a player shows them, a warning for a truncated file when
a pass reaches its end); see that module. Sizes here (:class:`VideoInfo`) are the shown ones.

**Frame folders** are PySlowFast's layout ``<root>/<video_id>/<video_id>_%06d.jpg`` with frame
``i`` stored as number ``i + 1``.

Nothing is cached between calls except frame counts (immutable file facts, per process), so
readers are safe to use in DataLoader workers: every read opens its own container.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import av
import numpy as np
from PIL import Image, UnidentifiedImageError
import torch

from ava_detect.data.constants import FPS
from ava_detect.data.video_reader import (FRAME_TIME_TOLERANCE_S, TRUNCATION_TOLERANCE_S, Orientation, VideoReader,
                                          decoded_end, frame_to_rgb, header_duration, open_video, stream_rate)
from ava_detect.errors import AvaDetectError
from ava_detect.io import PathLike

logger = logging.getLogger(__name__)

#: File name suffixes taken as videos when a folder is scanned.
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv", ".mpg", ".mpeg", ".ts", ".3gp", ".ogv", ".wmv")


@dataclass(frozen=True)
class VideoInfo:
    """What a video file's header (or, failing that, its packet index) says.

    Attributes:
        path: the file.
        num_frames: frames on the ``fps`` time axis (frame ``i`` at ``i / fps`` s), i.e. the number
            of valid frame indices.
        width, height: frame size in pixels, as shown (a quarter turn of the stored pictures swaps them).
        rate: the stream's own nominal frame rate (frames per second).
        duration: seconds from the first frame to the end of the last one.
        orientation: how the stored pictures are turned to be shown (:class:`Orientation`).
        truncated: the frames end well before the header's duration (only looked for with
            ``probe_video(check_end=True)``; ``duration`` and ``num_frames`` are then the real ones).
    """

    path: str
    num_frames: int
    width: int
    height: int
    rate: float
    duration: float
    orientation: Orientation = Orientation()
    truncated: bool = False


def _file_time(index: int, fps: int) -> float:
    """File time (seconds from the video's start) of frame ``index`` of the ``fps`` axis; the dataset's
    second is its time axis' ``start_second`` plus this (AVA: movie second 900 + this)."""
    return index / fps


def _frames_for_duration(duration: float, fps: int) -> int:
    """Number of ``i >= 0`` with ``i / fps`` inside ``[0, duration)`` (with the timestamp tolerance)."""
    return max(0, math.ceil((duration - FRAME_TIME_TOLERANCE_S) * fps))


def _header_num_frames(container, stream, fps: int) -> Optional[int]:
    if stream.frames and stream.average_rate and stream.average_rate == fps:
        return int(stream.frames)
    duration = header_duration(container, stream)
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


def _first_orientation(path: str) -> Orientation:
    """How the first decodable frame is shown (as stored when none decodes: the readers report that)."""
    with VideoReader(path, threads=1) as reader:
        try:
            for _, frame in reader.frames():
                return reader.orientation(frame)
        except av.FFmpegError:
            pass
    return Orientation()


def probe_video(path: PathLike, *, fps: int = FPS, check_end: bool = False) -> VideoInfo:
    """Read a video's frame count (on the ``fps`` axis), shown size, rate, duration and orientation,
    decoding only its first frame (and, with ``check_end``, its last second).

    Args:
        path: the video.
        fps: the frame-index time axis.
        check_end: also find where the frames really end (:func:`decoded_end`); a truncated file is
            warned about once and described by its real duration and frame count.

    Raises:
        AvaDetectError: missing or unreadable file, no video stream, no frames.
    """
    path = os.fspath(path)
    container, stream = open_video(path)
    try:
        duration = header_duration(container, stream)
        num_frames = _header_num_frames(container, stream, fps)
        if duration is None:
            duration = _scan_duration(container, stream, path)
            num_frames = _frames_for_duration(duration, fps)
        elif num_frames is not None and stream.frames and stream.average_rate == fps:
            duration = num_frames / fps
        ctx = stream.codec_context
        stored_size, rate = (int(ctx.width), int(ctx.height)), stream_rate(stream)
    finally:
        container.close()
    truncated = False
    if check_end:
        end, truncated = decoded_end(path)
        if truncated:
            duration, num_frames = end, _frames_for_duration(end, fps)
    orientation = _first_orientation(path)
    width, height = orientation.shown_size(*stored_size)
    info = VideoInfo(path=path, num_frames=int(num_frames or 0), width=width, height=height, rate=rate,
                     duration=float(duration), orientation=orientation, truncated=truncated)
    if info.num_frames <= 0:
        raise AvaDetectError("video has no frames", path)
    return info


class _SkippedFrame(Exception):
    """A wanted time fell where the decoder skipped a non-reference frame."""


class _SeekMissed(Exception):
    """The seek landed after the first wanted time (a bad index); decode from the start instead."""


class _Timeline:
    """Assigns decoded frames to wanted times (seconds from the stream start), streaming.

    :meth:`assign` yields ``(slot, frame)`` for each wanted time in order; at the end of the
    stream it stops after the slots inside the last frame's display interval, leaving
    :attr:`last` = ``(time, end_time, frame)`` of the last frame for the caller to decide about
    the rest, and :attr:`reached_end` True.
    """

    def __init__(self, reader: VideoReader, *, from_start: bool, max_gap: Optional[float] = None):
        self.reader = reader
        self.from_start = from_start
        self.max_gap = max_gap
        self.period = reader.period
        self.last: Optional[Tuple[float, float, "av.VideoFrame"]] = None
        self.reached_end = False

    def assign(self, times: Iterable[float]) -> Iterator[Tuple[int, "av.VideoFrame"]]:
        tol = FRAME_TIME_TOLERANCE_S
        times_iter = iter(times)
        slot = 0
        want = next(times_iter, None)
        prev_t: Optional[float] = None
        prev_frame = None
        for t, frame in self.reader.frames():
            if want is None:
                return
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
        self.reached_end = True
        if prev_frame is None:
            self.last = None
            return
        duration = float(prev_frame.duration * self.reader.time_base) if prev_frame.duration else self.period
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


def _with_seek(reader: VideoReader, seconds: float, run):
    """``run(from_start)`` after seeking to the keyframe before ``seconds``, retrying earlier when
    the seek overshoots (:class:`_SeekMissed`)."""
    for margin in _SEEK_RETRY_MARGINS_S:
        if margin is None:
            reader.seek_start()
            return run(True)
        from_start = reader.seek(seconds - margin)
        try:
            return run(from_start)
        except _SeekMissed:
            logger.debug("seek to %.3f s landed too late; retrying %s s earlier", seconds, margin)
    raise AssertionError("unreachable")


def resampled_frames(reader: VideoReader, *, fps: int = FPS, start: float = 0.0,
                     end: Optional[float] = None) -> Iterator[Tuple[int, "av.VideoFrame"]]:
    """The frames of an open video on a constant ``fps`` time axis, upright, decoded sequentially
    (see :func:`iter_video_frames`). A pass that reaches the end of the stream checks it
    (:meth:`VideoReader.check_end`: a truncated file is warned about once).

    Raises:
        AvaDetectError: a decoding error (naming the file and the second).
    """
    i = -1

    def times() -> Iterator[float]:
        k = 0
        while end is None or start + k / fps < end - FRAME_TIME_TOLERANCE_S:
            yield start + k / fps
            k += 1

    timeline = _Timeline(reader, from_start=True)

    def run(from_start: bool):
        nonlocal timeline
        # _SeekMissed can only come before the first frame is yielded
        timeline = _Timeline(reader, from_start=from_start)
        return timeline.assign(times())

    try:
        frames = _with_seek(reader, start, lambda fs: _first_then_rest(run(fs))) if start > 0 else run(True)
        source, shown = None, None
        for i, frame in frames:
            if frame is not source:
                source, shown = frame, reader.upright_frame(frame)
            yield i, shown
    except av.FFmpegError as e:
        second = start + max(i, 0) / fps
        raise AvaDetectError(f"decoding failed near second {second:.2f} of the file: {e}", reader.path) from None
    if timeline.reached_end:
        reader.check_end()


def iter_video_frames(
    path: PathLike,
    *,
    fps: int = FPS,
    start: float = 0.0,
    end: Optional[float] = None,
    threads: int = 0,
) -> Iterator[Tuple[int, "av.VideoFrame"]]:
    """All frames of a video on a constant ``fps`` time axis, decoded sequentially, upright.

    Yields ``(i, frame)`` for ``i = 0, 1, ...``: the frame shown at ``start + i / fps`` seconds
    after the first frame of the video stream, until ``end`` (exclusive) or the end of the video.
    A frame is yielded several times when the file's rate is lower than ``fps`` and some are left
    out when it is higher. A file with a display rotation gives new, turned RGB frames. Used by
    ``prep videos`` (``start=900``) and ``prep frames`` (``start=0``). A truncated file is warned
    about once when the pass reaches its end.

    Raises:
        AvaDetectError: unreadable file, or a decoding error (naming the file and the second).
    """
    with VideoReader(path, threads=threads) as reader:
        yield from resampled_frames(reader, fps=fps, start=start, end=end)


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


def read_video_frames(
    path: PathLike,
    indices: Union[Sequence[int], torch.Tensor],
    *,
    fps: int = FPS,
    num_frames: Optional[int] = None,
    threads: int = 1,
    skip_nonref: bool = True,
) -> torch.Tensor:
    """Frames ``indices`` of a video (frame ``i`` = the picture shown at ``i / fps`` s), upright.

    Args:
        path: video file (any container/codec PyAV reads; prepared AVA videos are h264 mp4).
        indices: frame indices, any order, repeats allowed; clamped to ``[0, num_frames - 1]``.
        fps: the frame-index time axis (30 for AVA).
        num_frames: frames in the video on that axis (:func:`probe_video`); None reads the header.
        threads: decoder threads (1 in DataLoader workers; 0 = as many as the codec likes).
        skip_nonref: allow skipping non-reference frames when every wanted index is even.

    Returns:
        ``uint8 Tensor[len(indices), H, W, 3]`` RGB, as shown (display rotation applied).

    Raises:
        AvaDetectError: unreadable file, a decoding error, or a file that ends more than
            :data:`TRUNCATION_TOLERANCE_S` before a wanted frame (truncated or corrupt); the
            message names the file and the file time (``index / fps``).
    """
    path = os.fspath(path)
    idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
    if idx.numel() == 0:
        raise ValueError("no frame indices given")
    with VideoReader(path, threads=threads) as reader:
        container, stream = reader.container, reader.stream
        try:
            if num_frames is None:
                num_frames = _header_num_frames(container, stream, fps)
                if num_frames is None:
                    num_frames = _frames_for_duration(_scan_duration(container, stream, path), fps)
                    reader.seek_start()
            if num_frames <= 0:
                raise AvaDetectError("video has no frames", path)
            idx = idx.clamp(0, num_frames - 1)
            unique, inverse = torch.unique(idx, sorted=True, return_inverse=True)
            wanted = [int(i) for i in unique]
            skip = skip_nonref and all(i % 2 == 0 for i in wanted)
            try:
                frames = _decode_indices(reader, wanted, fps=fps, skip_nonref=skip)
            except _SkippedFrame:
                frames = _decode_indices(reader, wanted, fps=fps, skip_nonref=False)
        except av.FFmpegError as e:
            lo, hi = int(idx.min()), int(idx.max())
            raise AvaDetectError(
                f"decoding failed for frames {lo}..{hi} (file times {_file_time(lo, fps):.2f}.."
                f"{_file_time(hi, fps):.2f} s); truncated or corrupt video? ({e})", path) from None
    return _gather(torch.from_numpy(np.stack(frames)), inverse)


def _gather(unique_frames: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    """``unique_frames[inverse]``, without a copy when ``inverse`` is ``0, 1, 2, ...``."""
    if inverse.numel() == unique_frames.shape[0] and torch.equal(inverse, torch.arange(inverse.numel())):
        return unique_frames
    return unique_frames[inverse]


def _decode_indices(reader: VideoReader, wanted: List[int], *, fps: int, skip_nonref: bool) -> List[np.ndarray]:
    times = [i / fps for i in wanted]
    path = reader.path
    ctx = reader.stream.codec_context
    ctx.skip_frame = "NONREF" if skip_nonref else "DEFAULT"
    size: List[Optional[int]] = [None, None]  # (width, height) as shown: that of the first frame, kept for all

    def rgb(frame) -> np.ndarray:
        array = reader.rgb(frame, size[0], size[1])
        size[0], size[1] = array.shape[1], array.shape[0]
        return array

    max_gap = 1.5 * reader.period if skip_nonref else None
    out: List[Optional[np.ndarray]] = [None] * len(times)
    cached: Tuple[object, Optional[np.ndarray]] = (None, None)

    def run(from_start: bool) -> _Timeline:
        nonlocal cached
        for k in range(len(out)):
            out[k] = None
        timeline = _Timeline(reader, from_start=from_start, max_gap=max_gap)
        for slot, frame in timeline.assign(times):
            if cached[0] is not frame:
                cached = (frame, rgb(frame))
            out[slot] = cached[1]
        return timeline

    timeline = _with_seek(reader, times[0], run)
    missing = [k for k, a in enumerate(out) if a is None]
    if missing:
        last = timeline.last
        first_missing = wanted[missing[0]]
        if last is None:
            raise AvaDetectError(
                f"no frame could be decoded at or after file time {_file_time(wanted[0], fps):.2f} s "
                f"(frame {wanted[0]}); truncated or corrupt video?", path)
        if times[missing[-1]] > last[1] + TRUNCATION_TOLERANCE_S:
            raise AvaDetectError(
                f"video ends at file time {last[1]:.2f} s but frame {first_missing} "
                f"(file time {_file_time(first_missing, fps):.2f} s) is wanted and the header promises "
                f"more; truncated or corrupt video?", path)
        last_rgb = rgb(last[2])
        for k in missing:
            out[k] = last_rgb
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
            AvaDetectError: a missing or undecodable JPEG, naming the file and the file time.
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
                raise AvaDetectError(f"frame {i} (file time {_file_time(i, FPS):.2f} s) is missing", path) from None
            except (UnidentifiedImageError, OSError, ValueError) as e:
                raise AvaDetectError(
                    f"cannot decode frame {i} (file time {_file_time(i, FPS):.2f} s) as JPEG: {e}", path) from None
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
    "FRAME_TIME_TOLERANCE_S", "TRUNCATION_TOLERANCE_S", "VIDEO_EXTENSIONS", "VideoInfo", "Orientation", "VideoReader",
    "open_video", "probe_video", "decoded_end", "iter_video_frames", "resampled_frames", "read_video_frames",
    "frame_to_rgb",
    "VideoFolder", "FrameFolder", "ClipSource", "frame_relpath", "FRAME_NAME", "list_videos",
]
