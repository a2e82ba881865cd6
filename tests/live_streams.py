"""Real live streams on this machine, for tests of commands that read live input.

:func:`encode_ts` encodes frames as an MPEG-TS file; :class:`StreamFeeder` plays such a file into a
live destination (a TCP connection, UDP datagrams, a FIFO, or a binary file object such as a
subprocess's stdin) at real-time pace, from a thread. Packets are remuxed as they are (no
re-encoding), so a reader of the stream decodes exactly the frames a reader of the file decodes.

Example::

    clip = encode_ts(frames, tmp_path / "clip.ts", fps=30)
    with StreamFeeder(clip, "tcp") as feeder:
        with av.open(feeder.url, timeout=5) as container:
            for frame in container.decode(video=0):
                ...

The bytes on the wire are those of ffmpeg's own ``tcp://127.0.0.1:PORT?listen=1`` and
``udp://127.0.0.1:PORT?pkt_size=1316`` outputs with format ``mpegts``, but the sockets, the FIFO
and the file object are written from Python (PyAV muxes into a file-like object): PyAV installs
its interrupt callback on input containers only, so an output opened by FFmpeg could block for
good in ``accept()`` or in a write to a reader that stopped reading, and :meth:`StreamFeeder.stop`
must always return promptly. Owning the listening socket also reserves its port from the start.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import stat
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Dict, Iterable, Iterator, Optional, Union

import av
import numpy as np

from ava_detect.io import atomic_path

log = logging.getLogger(__name__)

#: Bytes of one MPEG-TS packet, and of one UDP datagram (7 TS packets, what fits an Ethernet frame).
TS_PACKET = 188
UDP_PACKET = 7 * TS_PACKET
#: Seconds between checks of the stop flag in every wait (accept, FIFO open, blocked writes).
POLL = 0.02
#: Seconds a UDP feeder waits after start() before its first datagram, so that the reader is bound.
UDP_START_DELAY = 0.3
#: Seconds stop() waits for the feeding thread.
STOP_TIMEOUT = 2.0

#: libx264 settings of :func:`encode_ts` besides the key-frame interval: single-threaded (the same
#: frames give the same bytes), no B-frames (decoding order = presentation order).
X264_OPTIONS = {"preset": "veryfast", "crf": "23", "bf": "0"}


def free_port(kind: str = "tcp") -> int:
    """A port of 127.0.0.1 that is free now for ``kind`` "tcp" or "udp" (the kernel's choice).

    Another process may take it before the caller binds it; :class:`StreamFeeder` with dest "tcp"
    avoids the race by keeping its own listening socket.
    """
    types = {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM}
    if kind not in types:
        raise ValueError(f"free_port: kind must be 'tcp' or 'udp', got {kind!r}")
    with socket.socket(socket.AF_INET, types[kind]) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _frames_of(video: Path) -> Iterator[np.ndarray]:
    """The frames of a video file as ``uint8[H, W, 3]`` RGB arrays, in presentation order."""
    with av.open(os.fspath(video)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def encode_ts(frames: Union[Iterable[np.ndarray], str, os.PathLike], out: Path, *, fps: int = 30,
              gop: int = 15) -> Path:
    """Encode frames as an MPEG-TS file: h264 (libx264, yuv420p), no B-frames, a key frame every
    ``gop`` frames, frame ``i`` at ``i / fps`` s.

    Args:
        frames: ``uint8[H, W, 3]`` RGB arrays (H and W even, the same for all), or the path of a
            video file whose frames (decoded with PyAV) are re-encoded at ``fps``.
        out: the .ts file to write (replaced atomically).
        fps: frames per second of the timestamps.
        gop: frames from one key frame to the next.

    Returns:
        ``out`` as a Path.
    """
    if fps <= 0 or gop <= 0:
        raise ValueError(f"encode_ts: fps and gop must be positive, got fps={fps}, gop={gop}")
    if isinstance(frames, (str, os.PathLike)):
        frames = _frames_of(Path(frames))
    out = Path(out)
    count = 0
    with atomic_path(out) as tmp:
        with av.open(os.fspath(tmp), "w", format="mpegts") as container:
            stream = None
            for rgb in frames:
                rgb = np.asarray(rgb)
                if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
                    raise ValueError(f"encode_ts: frame {count} must be uint8[H, W, 3], "
                                     f"got {rgb.dtype}{list(rgb.shape)}")
                if stream is None:
                    height, width = rgb.shape[:2]
                    if height % 2 or width % 2:
                        raise ValueError(f"encode_ts: yuv420p needs an even width and height, got {width}x{height}")
                    stream = container.add_stream("libx264", rate=fps)
                    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                    stream.codec_context.thread_count = 1
                    stream.options = {
                        **X264_OPTIONS, "g": str(gop),
                        "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:threads=1:sliced-threads=0",
                    }
                elif rgb.shape != (stream.height, stream.width, 3):
                    raise ValueError(f"encode_ts: frame {count} is {list(rgb.shape)}, "
                                     f"frame 0 was {[stream.height, stream.width, 3]}")
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                vf.pts = count
                vf.time_base = Fraction(1, fps)
                container.mux(stream.encode(vf))
                count += 1
            if stream is None:
                raise ValueError("encode_ts: no frames to encode")
            container.mux(stream.encode())
    return out


class _Stopped(Exception):
    """The feeder was asked to stop while waiting (internal)."""


class _Sink:
    """Where the muxed MPEG-TS bytes go: a file-like object for PyAV (``write(bytes) -> int``).

    Never raises into FFmpeg: when the reader has gone (broken pipe, reset connection) it sets
    ``gone`` and drops the data; when the feeder is stopping it drops the data. The feeding loop
    checks both after each packet.
    """

    def __init__(self, stop: threading.Event):
        self.stop = stop
        self.gone: Optional[BaseException] = None

    def write(self, data: bytes) -> int:
        if self.gone is None and not self.stop.is_set():
            try:
                self._send(memoryview(data))
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as e:
                self.gone = e
            except _Stopped:
                pass
        return len(data)

    def _send(self, data: memoryview) -> None:
        raise NotImplementedError

    def _wait_writable(self, fd: int) -> None:
        while not self.stop.is_set():
            if select.select([], [fd], [], POLL)[1]:
                return
        raise _Stopped

    def close(self) -> None:
        raise NotImplementedError


class _SocketSink(_Sink):
    """One accepted TCP connection (non-blocking)."""

    def __init__(self, stop: threading.Event, sock: socket.socket):
        super().__init__(stop)
        self.sock = sock
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _send(self, data: memoryview) -> None:
        while data:
            self._wait_writable(self.sock.fileno())
            try:
                data = data[self.sock.send(data):]
            except BlockingIOError:
                pass

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class _DatagramSink(_Sink):
    """UDP datagrams of at most 1316 bytes (whole TS packets) to 127.0.0.1:port."""

    def __init__(self, stop: threading.Event, port: int):
        super().__init__(stop)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.address = ("127.0.0.1", port)

    def _send(self, data: memoryview) -> None:
        for i in range(0, len(data), UDP_PACKET):
            try:
                self.sock.sendto(data[i:i + UDP_PACKET], self.address)
            except ConnectionRefusedError:  # no reader bound (yet): datagrams are lost, as on a network
                pass

    def close(self) -> None:
        self.sock.close()


class _FdSink(_Sink):
    """A pipe's write end (a FIFO we opened non-blocking, or the descriptor of a file object).

    On a blocking descriptor a write of at most PIPE_BUF bytes into a pipe that select() calls
    writable does not block, so writes never outlast a stop().
    """

    def __init__(self, stop: threading.Event, fd: int, owner: Optional[BinaryIO] = None):
        super().__init__(stop)
        self.fd = fd
        self.owner = owner

    def _send(self, data: memoryview) -> None:
        while data:
            self._wait_writable(self.fd)
            try:
                data = data[os.write(self.fd, data[:select.PIPE_BUF]):]
            except BlockingIOError:
                pass

    def close(self) -> None:
        if self.owner is not None:
            try:
                self.owner.close()
            except OSError:  # the reader has gone: its buffer cannot be flushed
                pass
        else:
            os.close(self.fd)


class _FileSink(_Sink):
    """A binary file object that is not a pipe (a regular file that grows, a BytesIO): written and
    flushed after each write, so that a reader following the file sees each packet at once."""

    def __init__(self, stop: threading.Event, out: BinaryIO):
        super().__init__(stop)
        self.out = out

    def _send(self, data: memoryview) -> None:
        self.out.write(data)
        self.out.flush()

    def close(self) -> None:
        try:
            self.out.close()
        except OSError:
            pass


class StreamFeeder:
    """Plays a media file (normally the .ts of :func:`encode_ts`) into a live destination at
    real-time pace, from a thread, by remuxing its packets with PyAV into MPEG-TS (no re-encoding):
    the packet with media time ``t`` (decoding time from the first packet, s) is sent at
    ``start + t / speed``, where ``start`` is when the destination opened.

    Destinations (``dest``):

    - ``"tcp"``: listens on a free port of 127.0.0.1 from construction on; ``url`` is
      ``"tcp://127.0.0.1:PORT"``. Sending (and the clock) starts when a client connects; one client.
    - ``"udp"``: sends datagrams of at most 1316 bytes to 127.0.0.1:PORT (a free port); ``url`` is
      ``"udp://127.0.0.1:PORT"``, where the reader binds. The first datagram leaves ``start_delay``
      seconds after start() (default 0.3 s) so that a reader opened right after start() is bound;
      datagrams sent before that are lost, as on a network.
    - ``"fifo:/path"``: makes the FIFO if missing (left in place afterwards) and opens it for
      writing once a reader opens it; ``url`` is the path.
    - ``"file"`` with ``out=``: writes the MPEG-TS bytes into the binary file object ``out`` (a
      subprocess's stdin read as ``-``, the write end of ``os.pipe()``, a regular file that grows);
      the feeder owns ``out`` and closes it. ``url`` is None.

    Args:
        media: the file to play (any container PyAV reads; its video and audio streams are sent).
        dest: see above.
        speed: media seconds per wall-clock second (2.0 plays twice as fast).
        stall_after: once, after this many seconds of media (packets before it are sent), send
            nothing for ``stall_for`` seconds, keeping the destination open, then continue.
        stall_for: wall-clock seconds of the stall; None stalls until stop() (a stalled-but-open
            stream).
        loop: replay the file until stop(), each pass's timestamps continuing after the previous.
        end: at the end of the media, "close" closes the destination (the reader sees the end of
            the stream); "hold" keeps it open, silent, until stop().
        out: the file object of dest "file".
        start_delay: seconds to wait after the destination opens before the first packet (default
            0.3 s for "udp", 0 otherwise).

    Attributes:
        url: what a reader opens, or None for dest "file".
        sent_frames: video packets sent so far.
        connected: set once the destination is open (client connected, FIFO reader present).
        reader_gone: the error (BrokenPipeError, ConnectionResetError) with which the reader's side
            closed early, which ended the feeding quietly; None otherwise.
        error: an exception raised in the thread (re-raised by join()), else None.
    """

    def __init__(self, media: Path, dest: str, *, speed: float = 1.0, stall_after: Optional[float] = None,
                 stall_for: Optional[float] = None, loop: bool = False, end: str = "close",
                 out: Optional[BinaryIO] = None, start_delay: Optional[float] = None):
        self.media = Path(media)
        if not self.media.is_file():
            raise FileNotFoundError(f"StreamFeeder: no media file {self.media}")
        if not speed > 0:
            raise ValueError(f"StreamFeeder: speed must be positive, got {speed}")
        if end not in ("close", "hold"):
            raise ValueError(f"StreamFeeder: end must be 'close' or 'hold', got {end!r}")
        if stall_for is not None and stall_for < 0:
            raise ValueError(f"StreamFeeder: stall_for must be >= 0 or None, got {stall_for}")
        if (out is not None) != (dest == "file"):
            raise ValueError("StreamFeeder: out= goes with dest 'file', and dest 'file' needs out=")
        self.dest = dest
        self.speed = float(speed)
        self.stall_after = stall_after
        self.stall_for = stall_for
        self.loop = loop
        self.end = end
        self.out = out
        self.start_delay = (UDP_START_DELAY if dest == "udp" else 0.0) if start_delay is None else start_delay
        self.sent_frames = 0
        self.connected = threading.Event()
        self.reader_gone: Optional[BaseException] = None
        self.error: Optional[BaseException] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._listener: Optional[socket.socket] = None
        self._fifo: Optional[Path] = None
        self._port: Optional[int] = None
        if dest == "tcp":
            self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._listener.bind(("127.0.0.1", 0))
            self._listener.listen(1)
            self._port = self._listener.getsockname()[1]
        elif dest == "udp":
            self._port = free_port("udp")
        elif dest.startswith("fifo:") and len(dest) > 5:
            self._fifo = Path(dest[5:])
            if not self._fifo.exists():
                os.mkfifo(self._fifo)
            elif not stat.S_ISFIFO(self._fifo.stat().st_mode):
                raise FileExistsError(f"StreamFeeder: {self._fifo} exists and is not a FIFO")
        elif dest != "file":
            raise ValueError(f"StreamFeeder: dest must be 'tcp', 'udp', 'fifo:/path' or 'file', got {dest!r}")

    @property
    def url(self) -> Optional[str]:
        if self.dest in ("tcp", "udp"):
            return f"{self.dest}://127.0.0.1:{self._port}"
        if self._fifo is not None:
            return str(self._fifo)
        return None

    def start(self) -> "StreamFeeder":
        if self._thread is not None:
            raise RuntimeError("StreamFeeder: already started")
        self._thread = threading.Thread(target=self._run, name=f"StreamFeeder({self.dest})", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sending and close the destination; returns within about 2 s whatever the feeder is
        doing (waiting for a reader, stalled, blocked on a reader that does not read)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT)
            if self._thread.is_alive():
                log.warning("StreamFeeder(%s): the feeding thread did not end within %.1f s", self.dest, STOP_TIMEOUT)
        else:
            self._close_listener()

    def join(self, timeout: Optional[float] = None) -> None:
        """Wait for the end of the feeding (end of media, reader gone, or stop()); re-raises an
        exception of the thread."""
        if self._thread is not None:
            self._thread.join(timeout)
        if self.error is not None:
            raise self.error

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> "StreamFeeder":
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop()
        if exc_type is None and self.error is not None:
            raise self.error

    # The thread.

    def _close_listener(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _open_sink(self) -> _Sink:
        """Open the destination, waiting (interruptibly) for its reader; raises _Stopped."""
        if self.dest == "tcp":
            try:
                while not select.select([self._listener], [], [], POLL)[0]:
                    if self._stop.is_set():
                        raise _Stopped
                sock, _ = self._listener.accept()
            finally:
                self._close_listener()
            return _SocketSink(self._stop, sock)
        if self.dest == "udp":
            return _DatagramSink(self._stop, self._port)
        if self._fifo is not None:
            while True:
                try:
                    fd = os.open(self._fifo, os.O_WRONLY | os.O_NONBLOCK)
                    return _FdSink(self._stop, fd)
                except OSError as e:
                    if e.errno != errno.ENXIO:  # ENXIO: no reader has the FIFO open yet
                        raise
                if self._stop.wait(POLL):
                    raise _Stopped
        try:
            fd = self.out.fileno()
            is_pipe = stat.S_ISFIFO(os.fstat(fd).st_mode)
        except (AttributeError, OSError, ValueError):
            is_pipe = False
        if is_pipe:
            self.out.flush()
            return _FdSink(self._stop, fd, owner=self.out)
        return _FileSink(self._stop, self.out)

    def _run(self) -> None:
        sink: Optional[_Sink] = None
        try:
            sink = self._open_sink()
            self.connected.set()
            if self._stop.wait(self.start_delay):
                return
            self._feed(sink)
            if self.end == "hold" and sink.gone is None:
                self._stop.wait()
        except _Stopped:
            pass
        except BaseException as e:  # recorded for join(); the test process goes on
            self.error = e
            log.debug("StreamFeeder(%s) failed", self.dest, exc_info=True)
        finally:
            if sink is not None:
                self.reader_gone = sink.gone
                try:
                    sink.close()
                except OSError as e:
                    log.debug("StreamFeeder(%s): closing the destination: %s", self.dest, e)
            self._close_listener()

    def _feed(self, sink: _Sink) -> None:
        """Remux the media into ``sink`` at pace: once, or until stop() when looping."""
        output = av.open(sink, "w", format="mpegts", buffer_size=UDP_PACKET,
                         container_options={"flush_packets": "1"})
        try:
            start = time.monotonic()
            offset = 0.0  # media seconds of the passes already played
            stalled = False
            first = True
            while True:
                with av.open(os.fspath(self.media)) as container:
                    streams = [s for s in container.streams if s.type in ("video", "audio")]
                    if not any(s.type == "video" for s in streams):
                        raise ValueError(f"StreamFeeder: {self.media} has no video stream")
                    if first:
                        targets: Dict[int, av.stream.Stream] = {
                            s.index: output.add_stream_from_template(s) for s in streams}
                        first = False
                    origin: Optional[float] = None  # decoding time of this pass's first packet, s
                    pass_end = 0.0  # media seconds from origin to the end of the last packet
                    for packet in container.demux(streams):
                        stamp = packet.dts if packet.dts is not None else packet.pts
                        if stamp is None or packet.size == 0:
                            continue
                        tb = packet.time_base
                        t = float(stamp * tb)
                        if origin is None:
                            origin = t
                        media_time = offset + t - origin
                        pass_end = max(pass_end, t - origin + float((packet.duration or 0) * tb))
                        if not stalled and self.stall_after is not None and media_time >= self.stall_after:
                            stalled = True
                            if self.stall_for is None:
                                self._stop.wait()
                                return
                            if self._stop.wait(self.stall_for):
                                return
                            start += self.stall_for
                        if self._stop.wait(max(0.0, start + media_time / self.speed - time.monotonic())):
                            return
                        shift = round(offset / tb)
                        if packet.pts is not None:
                            packet.pts += shift
                        if packet.dts is not None:
                            packet.dts += shift
                        is_video = packet.stream.type == "video"
                        packet.stream = targets[packet.stream.index]
                        output.mux(packet)
                        if sink.gone is not None or self._stop.is_set():
                            return
                        if is_video:
                            self.sent_frames += 1
                if not self.loop:
                    return
                offset += pass_end
        finally:
            try:
                output.close()
            except (av.FFmpegError, OSError) as e:  # nothing was muxed (stopped first) or the reader left
                log.debug("StreamFeeder(%s): closing the muxer: %s", self.dest, e)
