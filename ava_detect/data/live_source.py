"""Live video input: frames of a camera or network stream as they arrive, with their arrival times.

A **live source** is anything FFmpeg opens through PyAV that has no known length:

========================  ===============================================================
``rtsp://``, ``rtmp://``,  network streams, opened by FFmpeg's own protocols, with a read
``http(s)://``,            timeout of ``stall_timeout`` seconds (UDP: a receive buffer that
``udp://``, ``tcp://``,    overruns by dropping packets instead of failing)
``srt://``, ``rtp://``
``-``                      standard input (e.g. ``ffmpeg ... -f mpegts - | ava-detect annotate -``)
a FIFO                     a named pipe another program writes into
``/dev/video*``            a V4L2 camera (a character device)
a regular file + follow    a file that is still being written: its end is waited for, not taken as
                           the end of the stream (``--live`` on the command line)
========================  ===============================================================

:class:`LiveSource` decodes in a thread of its own, so frames keep arriving while the models
run; each frame is stamped with its **arrival** (``time.monotonic()`` when it was decoded) and
its **time** (seconds of stream time from the first frame, continuous across reconnects and
timestamp jumps). Frames wait in a short queue (:attr:`LiveSource.max_queue`, about two seconds);
when the consumer falls further behind, the oldest queued frames are dropped and counted
(:attr:`LiveSource.dropped`), so nothing is held without bound.

**Stalls.** A source that sends no frame for ``stall_timeout`` seconds is stalled: it ends with
``end_reason`` ``"stalled"``, or, with ``reconnect``, is closed and opened again after 1, 2, 4, ...
seconds (at most :data:`MAX_BACKOFF_S`), each attempt logged; a stream that ends or fails is
reconnected the same way. Pictures are turned upright and converted to RGB of the first frame's
size (:func:`~ava_detect.data.video_reader.frame_to_rgb`).
"""

from __future__ import annotations

import io
import logging
import math
import os
import select
import stat
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Deque, Dict, Optional, Tuple
from urllib.parse import urlsplit

import av
import numpy as np

from ava_detect.data.video_reader import Orientation, _best_effort_times, _matrix, frame_to_rgb, stream_rate
from ava_detect.errors import AvaDetectError

logger = logging.getLogger(__name__)

#: URL schemes read as live network streams.
LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt", "rtp")
#: Longest wait between reconnection attempts (s).
MAX_BACKOFF_S = 30.0
#: Seconds of frames the queue between the decoding thread and the consumer holds.
QUEUE_SECONDS = 2.0


def display_name(source: str) -> str:
    """``source`` as shown in messages and outputs: a URL's password replaced by ``***``."""
    parts = urlsplit(source)
    if parts.scheme.lower() in LIVE_SCHEMES and parts.password:
        host = parts.netloc.rsplit("@", 1)[1]
        return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()
    return source


def source_kind(source: str, *, follow: bool = False) -> str:
    """What ``source`` is: ``"url"``, ``"stdin"`` (``-``), ``"fifo"``, ``"device"`` (a character device such
    as ``/dev/video0``), ``"growing"`` (a regular file read with ``follow``), or ``"file"`` (a regular file,
    not live). A missing path is ``"file"`` (its error comes from the file path)."""
    if source == "-":
        return "stdin"
    scheme = urlsplit(source).scheme.lower()
    if scheme in LIVE_SCHEMES:
        return "url"
    try:
        mode = os.stat(source).st_mode
    except OSError:
        return "file"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISCHR(mode):
        return "device"
    return "growing" if follow else "file"


def is_live_source(source: str, *, follow: bool = False) -> bool:
    """Whether ``source`` is read as a live stream (:func:`source_kind` is not ``"file"``)."""
    return source_kind(source, follow=follow) != "file"


@dataclass(frozen=True)
class LiveFrame:
    """One decoded frame.

    Attributes:
        index: arrival order (0, 1, ...; frames dropped from the queue keep their numbers).
        time: seconds of stream time from the first frame (continuous across reconnects).
        arrival: ``time.monotonic()`` when it was decoded.
        rgb: ``uint8 ndarray[H,W,3]`` as shown, of the first frame's size.
    """

    index: int
    time: float
    arrival: float
    rgb: np.ndarray


class _WaitingInput(io.RawIOBase):
    """A pipe, FIFO or growing file read by PyAV: a read waits for data (polling, so a stop is seen
    within 0.1 s) instead of taking "no data yet" for the end; after ``stall_timeout`` seconds without
    data it gives the end of the stream and sets :attr:`stalled`.

    Args:
        fd: an open file descriptor (non-blocking for FIFOs).
        stopped: says when to give up waiting (the source is stopping).
        follow: a regular file: its end means "not written yet".
        fifo: a named pipe opened without blocking: its end before any data means "no writer yet".
    """

    def __init__(self, fd: int, *, stall_timeout: float, stopped: Callable[[], bool], follow: bool, fifo: bool):
        super().__init__()
        self.fd, self.stall_timeout, self.stopped, self.follow, self.fifo = fd, stall_timeout, stopped, follow, fifo
        self.stalled = False
        self.seen_data = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer) -> int:
        deadline = time.monotonic() + self.stall_timeout
        while not self.stopped():
            if not self.follow:
                ready, _, _ = select.select([self.fd], [], [], 0.1)
            else:
                ready = [self.fd]
            if ready:
                try:
                    data = os.read(self.fd, len(buffer))
                except BlockingIOError:
                    data = None
                if data:
                    self.seen_data = True
                    buffer[:len(data)] = data
                    return len(data)
                if data == b"" and not self.follow and not (self.fifo and not self.seen_data):
                    return 0  # the writer closed the pipe: the end of the stream
                time.sleep(0.05)  # no writer yet (FIFO) or nothing appended yet (growing file)
            if time.monotonic() > deadline:
                self.stalled = True
                return 0
        return 0

    def close(self) -> None:
        if not self.closed and self.fd > 2:
            try:
                os.close(self.fd)
            except OSError:
                pass
        super().close()


class LiveSource:
    """A live stream decoded in a thread (see the module docstring).

    Args:
        source: a URL, ``-``, a FIFO, a V4L2 device or (with ``follow``) a growing file.
        stall_timeout: seconds without a frame after which the stream is stalled (> 0).
        reconnect: reopen a stalled, ended or failed stream (with back-off) instead of ending.
        follow: read a regular file as a growing one.
        max_queue: frames held for the consumer (default: :data:`QUEUE_SECONDS` of the stream's rate).
        cancel: an event that, once set, stops opening, waiting and reconnecting (e.g. set by SIGINT).
        size: ``(width, height) -> (width, height)``: the size frames are converted to, from the first frame's
            shown size (default: that size).

    Use :meth:`open` (opens and decodes the first frame: errors surface here, before any output
    exists), then :meth:`start`, then :meth:`get` until it returns None with :attr:`ended` set;
    :meth:`stop` ends it early.

    Attributes:
        name: the source as shown in messages (a URL's password hidden, :func:`display_name`).
        width, height, rate: the size of the frames given out (the first frame's shown size, or ``size`` of it)
            and the stream's nominal frame rate.
        ended: the stream is over and its queue empty. end_reason: ``"end of stream"``, ``"stalled"``,
            ``"stopped"`` or ``"error: ..."``.
        dropped: frames dropped because the consumer was more than the queue behind.
        reconnects: successful reconnections. decode_errors: packets that could not be decoded (skipped).
    """

    def __init__(self, source: str, *, stall_timeout: float = 10.0, reconnect: bool = False, follow: bool = False,
                 max_queue: Optional[int] = None, cancel: Optional[threading.Event] = None,
                 size: Optional[Callable[[int, int], Tuple[int, int]]] = None):
        if not stall_timeout > 0:
            raise AvaDetectError(f"--stall-timeout must be > 0 seconds, got {stall_timeout}")
        self.source, self.kind = source, source_kind(source, follow=follow)
        self.name = display_name(source)
        if self.kind == "file":
            raise AvaDetectError("not a live source (a URL, '-', a FIFO or a device); pass --live to follow a "
                                 "growing file", self.name)
        self.stall_timeout, self.reconnect = float(stall_timeout), bool(reconnect)
        self._max_queue = max_queue
        self._size = size
        self.width = self.height = 0
        self.rate = 0.0
        self.ended = False
        self.end_reason = ""
        self.dropped = self.reconnects = self.decode_errors = 0
        self._stop = threading.Event()
        self._cancel = cancel if cancel is not None else threading.Event()
        self._queue: Deque[LiveFrame] = deque()
        self._cond = threading.Condition()
        self._thread: Optional[threading.Thread] = None
        self._container = None
        self._input: Optional[_WaitingInput] = None
        self._frames = None
        self._index = 0
        self._offset = 0.0  # added to stream times: continuity across reconnects and jumps
        self._last_time: Optional[float] = None
        self._start_ts: Optional[int] = None
        self._stream = None
        self._orientation = Orientation()
        self.last_arrival: Optional[float] = None
        self._reader_done = False

    @property
    def max_queue(self) -> int:
        return self._max_queue or max(8, int(math.ceil(QUEUE_SECONDS * (self.rate or 30.0))))

    # ---- opening ---------------------------------------------------------------------------------

    def _open_container(self) -> None:
        """Open the source (not decoding yet)."""
        timeout = self.stall_timeout
        if self.kind == "url":
            options: Dict[str, str] = {}
            if urlsplit(self.source).scheme.lower() == "udp":
                options = {"overrun_nonfatal": "1", "fifo_size": "1000000"}
            self._container = av.open(self.source, mode="r", options=options, timeout=(timeout, timeout),
                                      metadata_errors="ignore")
        elif self.kind == "device":
            self._container = av.open(self.source, mode="r", format="v4l2", timeout=(timeout, timeout),
                                      metadata_errors="ignore")
        else:
            if self.kind == "stdin":
                fd = os.dup(sys.stdin.fileno())
            elif self.kind == "fifo":
                fd = os.open(self.source, os.O_RDONLY | os.O_NONBLOCK)
            else:
                fd = os.open(self.source, os.O_RDONLY)
            self._input = _WaitingInput(fd, stall_timeout=timeout, stopped=self._stopped, follow=self.kind == "growing",
                                        fifo=self.kind == "fifo")
            try:
                self._container = av.open(self._input, mode="r", metadata_errors="ignore")
            except BaseException:
                self._input.close()
                raise
        if not self._container.streams.video:
            self._close_container()
            raise AvaDetectError("the stream has no video", self.name)
        stream = self._container.streams.video[0]
        stream.codec_context.thread_type = "AUTO"
        self._start_ts = stream.start_time
        self._frames = _best_effort_times(self._decoded(stream), stream)
        self._stream = stream

    def _decoded(self, stream):
        for packet in self._container.demux(stream):
            if self._stopped():
                return
            try:
                frames = packet.decode()
            except av.FFmpegError as e:  # lost packets of a network stream: skip them, as players do
                self.decode_errors += 1
                logger.debug("%s: a packet could not be decoded: %s", self.name, e)
                continue
            yield from frames

    def _close_container(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except av.FFmpegError:
                pass
            self._container = None
        if self._input is not None:
            self._input.close()
            self._input = None

    def _failure(self, e: BaseException) -> str:
        if self._input is not None and self._input.stalled:
            return "stalled"
        text = str(e).replace(self.source, self.name)
        if isinstance(e, av.ExitError) or "timed out" in text.lower() or "Immediate exit" in text:
            return "stalled"
        return f"error: {text}"

    def open(self) -> "LiveSource":
        """Open the source and decode its first frame (which fixes the size of all frames).

        Raises:
            AvaDetectError: the source cannot be opened, has no video, or sends no frame within
                ``stall_timeout`` (without ``reconnect``; with it, opening is retried until :meth:`stop`).
        """
        attempt = 0
        while True:
            try:
                self._open_container()
                first = self._next_frame()
                if first is None:
                    stalled = self._input is not None and self._input.stalled
                    raise AvaDetectError(f"no frame arrived within {self.stall_timeout:g} s" if stalled else
                                         "the stream ended before its first frame", self.name)
                break
            except (av.FFmpegError, OSError, AvaDetectError) as e:
                if isinstance(e, AvaDetectError):
                    message = e.args[0]
                elif self._failure(e) == "stalled":
                    message = f"no frame arrived within {self.stall_timeout:g} s"
                    e = AvaDetectError(message, self.name)
                else:
                    message = f"cannot open the stream: {e}".replace(self.source, self.name)
                self._close_container()
                if not self.reconnect or self._stopped():
                    raise (e if isinstance(e, AvaDetectError) else AvaDetectError(message, self.name)) from None
                attempt += 1
                if not self._back_off(attempt, message):
                    raise AvaDetectError("stopped before the stream could be opened", self.name) from None
        stream = self._stream
        self.rate = stream_rate(stream)
        self._orientation = self._frame_orientation(first[1])
        shown_w, shown_h = self._orientation.shown_size(first[1].width, first[1].height)
        self.width, self.height = self._size(shown_w, shown_h) if self._size else (shown_w, shown_h)
        self._push(first)
        return self

    def _frame_orientation(self, frame) -> Orientation:
        matrix = _matrix(frame)
        found = Orientation.from_matrix(matrix) if matrix is not None else None
        if found is None:
            found = Orientation.from_tag(dict(self._stream.metadata)) or Orientation()
        return found

    def _back_off(self, attempt: int, why: str) -> bool:
        """Wait before reconnection attempt ``attempt`` (logged); False when stopped meanwhile."""
        delay = min(MAX_BACKOFF_S, 2.0 ** (attempt - 1))
        logger.warning("%s: %s; reconnecting in %g s (attempt %d)", self.name, why, delay, attempt)
        end = time.monotonic() + delay
        while time.monotonic() < end:
            if self._stopped():
                return False
            time.sleep(min(0.1, max(end - time.monotonic(), 0.0)))
        return not self._stopped()

    def _stopped(self) -> bool:
        return self._stop.is_set() or self._cancel.is_set()

    # ---- decoding --------------------------------------------------------------------------------

    def _next_frame(self) -> Optional[Tuple[float, "av.VideoFrame"]]:
        """The next decoded frame as ``(stream seconds, frame)``, or None at the end of the stream."""
        item = next(self._frames, None)
        if item is None:
            return None
        ts, frame = item
        if self._start_ts is None:
            self._start_ts = ts
        return (ts - self._start_ts) * float(self._stream.time_base), frame

    def _push(self, item: Tuple[float, "av.VideoFrame"]) -> None:
        t, frame = item
        period = 1.0 / (self.rate or 30.0)
        t += self._offset
        if self._last_time is not None and not (self._last_time - 1.0 < t < self._last_time + max(5.0, self.stall_timeout)):
            # a new stream after a reconnect, or a timestamp jump: continue from the last frame
            self._offset += self._last_time + period - t
            t = self._last_time + period
        if self._last_time is None or t > self._last_time:
            self._last_time = t
        rgb = frame_to_rgb(frame, self.width or None, self.height or None, orientation=self._orientation)
        now = time.monotonic()
        with self._cond:
            if len(self._queue) >= self.max_queue:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(LiveFrame(index=self._index, time=t, arrival=now, rgb=rgb))
            self._index += 1
            self.last_arrival = now
            self._cond.notify_all()

    def _run(self) -> None:
        attempt = 0
        reason = "end of stream"
        try:
            while not self._stopped():
                try:
                    while not self._stopped():
                        item = self._next_frame()
                        if item is None:
                            break
                        self._push(item)
                        attempt = 0
                    reason = "stalled" if self._input is not None and self._input.stalled else "end of stream"
                except av.FFmpegError as e:
                    reason = self._failure(e)
                if self._stopped():
                    reason = "stopped"
                    break
                self._close_container()
                if not self.reconnect:
                    break
                while not self._stopped():  # reconnect with back-off
                    attempt += 1
                    if not self._back_off(attempt, reason):
                        break
                    try:
                        self._open_container()
                        self.reconnects += 1
                        logger.warning("%s: reconnected", self.name)
                        break
                    except (av.FFmpegError, OSError, AvaDetectError) as e:
                        reason = f"error: {e}".replace(self.source, self.name)
                        self._close_container()
                if self._stopped():
                    reason = "stopped"
        except Exception as e:  # noqa: BLE001 - the consumer is told, the thread never dies silently
            logger.debug("%s: the reading thread failed", self.name, exc_info=True)
            reason = f"error: {e}"
        finally:
            self._close_container()
            with self._cond:
                self.end_reason = self.end_reason or reason
                self._reader_done = True
                self._cond.notify_all()

    def start(self) -> "LiveSource":
        """Decode in a daemon thread from now on."""
        self._thread = threading.Thread(target=self._run, name="ava-detect-live-source", daemon=True)
        self._thread.start()
        return self

    def get(self, timeout: float) -> Optional[LiveFrame]:
        """The oldest queued frame, waiting up to ``timeout`` s; None when none came (then :attr:`ended`
        tells whether the stream is over)."""
        with self._cond:
            if not self._queue and not self._reader_done:
                self._cond.wait(timeout)
            if self._queue:
                return self._queue.popleft()
            if self._reader_done:
                self.ended = True
            return None

    def silent_for(self) -> float:
        """Seconds since the last frame arrived."""
        return time.monotonic() - (self.last_arrival or time.monotonic())

    def stop(self, reason: str = "stopped") -> None:
        """End the stream: the reading thread stops within about 0.1 s (a network read within its
        timeout); queued frames are still given out."""
        with self._cond:
            self.end_reason = self.end_reason or reason
        self._stop.set()
        if self._thread is None:
            self._close_container()
            self._reader_done = True

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for the reading thread to end."""
        if self._thread is not None:
            self._thread.join(timeout)


__all__ = ["LIVE_SCHEMES", "LiveFrame", "LiveSource", "display_name", "is_live_source", "source_kind"]
