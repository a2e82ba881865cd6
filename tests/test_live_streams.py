"""The live-stream tooling of ``live_streams.py``: each destination delivers the clip's frames to a
PyAV reader at real-time pace, stalls and stops as asked, and never blocks the test process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional

import av
import numpy as np
import pytest

from live_streams import StreamFeeder, encode_ts, free_port

FPS = 30
#: Reader options that end probing at the first packet: PyAV's defaults read about 20 frames (and
#: any stall among them) before av.open returns, which hides when each frame arrived.
LOW_LATENCY = {"probesize": "32", "analyzeduration": "0"}


def _frames(n: int, width: int = 160, height: int = 120) -> List[np.ndarray]:
    """``n`` frames ``uint8[height, width, 3]``: a white square moving right, a green one moving
    down, and a grey level that changes with the frame index, so that every frame differs."""
    frames = []
    for i in range(n):
        rgb = np.full((height, width, 3), (i * 3) % 64, np.uint8)
        x = (4 * i) % (width - 32)
        y = (3 * i) % (height - 24)
        rgb[20:52, x:x + 32] = 255
        rgb[y:y + 24, 100:124, 1] = 220
        frames.append(rgb)
    return frames


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """2 s at 30 fps, 160x120."""
    return encode_ts(_frames(2 * FPS), tmp_path_factory.mktemp("live") / "clip.ts", fps=FPS)


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory) -> Path:
    """1 s at 30 fps, 160x120."""
    return encode_ts(_frames(FPS), tmp_path_factory.mktemp("live") / "short.ts", fps=FPS)


def _decode_file(path: Path) -> List[np.ndarray]:
    with av.open(os.fspath(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


class Reader:
    """Decodes a stream with PyAV in a thread, noting when each frame came.

    Attributes:
        frames: decoded frames, ``uint8[H, W, 3]`` RGB.
        pts: their presentation timestamps (stream time base).
        times: ``time.monotonic()`` when each was decoded.
        error: what ended the reading other than the end of the stream (e.g. a read timeout).
    """

    def __init__(self, source, *, limit: Optional[int] = None, **open_kwargs):
        self.source = source
        self.limit = limit
        self.open_kwargs = open_kwargs
        self.frames: List[np.ndarray] = []
        self.pts: List[int] = []
        self.times: List[float] = []
        self.error: Optional[BaseException] = None
        self.started = time.monotonic()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with av.open(self.source, **self.open_kwargs) as container:
                stream = container.streams.video[0]
                stream.thread_count = 1  # no frame-threading delay: frames leave as they arrive
                for frame in container.decode(stream):
                    self.times.append(time.monotonic())
                    self.frames.append(frame.to_ndarray(format="rgb24"))
                    self.pts.append(frame.pts)
                    if self.limit is not None and len(self.frames) >= self.limit:
                        return
        except BaseException as e:
            self.error = e

    def join(self, timeout: float = 10.0) -> "Reader":
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the reader of {self.source!r} did not finish in {timeout} s"
        return self

    @property
    def elapsed(self) -> float:
        """Seconds from the reader's start to its last frame."""
        return self.times[-1] - self.started


def _assert_real_time(reader: Reader, duration: float) -> None:
    assert reader.elapsed >= 0.8 * duration, f"{len(reader.frames)} frames in {reader.elapsed:.2f} s"
    assert reader.elapsed < duration + 2.0, f"{len(reader.frames)} frames in {reader.elapsed:.2f} s"


def test_free_port_binds():
    for kind, type_ in (("tcp", socket.SOCK_STREAM), ("udp", socket.SOCK_DGRAM)):
        port = free_port(kind)
        assert 0 < port < 65536
        with socket.socket(socket.AF_INET, type_) as sock:
            sock.bind(("127.0.0.1", port))
    with pytest.raises(ValueError, match="kind"):
        free_port("sctp")


def test_encode_ts_layout(clip, tmp_path):
    """Frame i at i/fps, h264 yuv420p, no B-frames, a key frame every gop frames; the decoded
    frames are the source frames up to h264's loss; a video file's frames can be re-encoded."""
    with av.open(os.fspath(clip)) as container:
        stream = container.streams.video[0]
        assert container.format.name == "mpegts"
        layout = (stream.codec_context.name, stream.format.name, stream.width, stream.height)
        assert layout == ("h264", "yuv420p", 160, 120)
        packets = [p for p in container.demux(stream) if p.size]
        tb = stream.time_base
    assert len(packets) == 2 * FPS
    start = packets[0].pts
    assert [float((p.pts - start) * tb) for p in packets] == pytest.approx([i / FPS for i in range(2 * FPS)], abs=1e-4)
    assert all(p.pts == p.dts for p in packets)  # no B-frames: decoding order is presentation order
    assert [i for i, p in enumerate(packets) if p.is_keyframe] == list(range(0, 2 * FPS, 15))
    decoded = _decode_file(clip)
    error = np.abs(np.stack(decoded).astype(float) - np.stack(_frames(2 * FPS)).astype(float)).mean()
    assert error < 4.0, f"mean absolute error {error:.2f} of 255"

    again = encode_ts(clip, tmp_path / "again.ts", fps=15, gop=5)
    assert len(_decode_file(again)) == 2 * FPS
    with pytest.raises(ValueError, match="even"):
        encode_ts([np.zeros((9, 16, 3), np.uint8)], tmp_path / "odd.ts")
    with pytest.raises(ValueError, match="no frames"):
        encode_ts([], tmp_path / "none.ts")


def test_tcp_same_frames_at_real_time_pace(clip):
    expected = _decode_file(clip)
    with StreamFeeder(clip, "tcp") as feeder:
        assert feeder.url.startswith("tcp://127.0.0.1:")
        reader = Reader(feeder.url, timeout=5).join()
        feeder.join(5)
    assert reader.error is None
    assert feeder.sent_frames == len(expected) == 2 * FPS
    assert len(reader.frames) == len(expected)
    for i, (got, want) in enumerate(zip(reader.frames, expected)):
        assert np.array_equal(got, want), f"frame {i} differs from the file's"
    _assert_real_time(reader, 2.0)
    assert feeder.reader_gone is None and feeder.error is None


def test_udp_most_frames_at_real_time_pace(clip):
    """UDP has no end of stream: the reader stops at its read timeout (0.5 s of silence)."""
    with StreamFeeder(clip, "udp") as feeder:
        assert feeder.url.startswith("udp://127.0.0.1:")
        reader = Reader(feeder.url, timeout=(5, 0.5)).join()
        feeder.join(5)
    assert isinstance(reader.error, av.ExitError), reader.error  # the read timeout
    assert feeder.sent_frames == 2 * FPS
    assert len(reader.frames) >= 0.9 * 2 * FPS
    # The last frame leaves the demuxer at the timeout (nothing follows it), so pace the one before.
    assert reader.times[-2] - reader.started >= 0.8 * (2.0 - 1 / FPS)
    assert feeder.error is None


def test_fifo_all_frames_at_real_time_pace(clip, tmp_path):
    fifo = tmp_path / "live.fifo"
    with StreamFeeder(clip, f"fifo:{fifo}") as feeder:
        assert feeder.url == str(fifo) and fifo.is_fifo()
        reader = Reader(feeder.url, timeout=5).join()
        feeder.join(5)
    assert reader.error is None
    assert len(reader.frames) == feeder.sent_frames == 2 * FPS
    _assert_real_time(reader, 2.0)


def test_file_object_pipe_all_frames_at_real_time_pace(clip):
    """The write end of a pipe as ``out``, read by FFmpeg's ``pipe:`` protocol (what ``-`` reads)."""
    read_fd, write_fd = os.pipe()
    try:
        with StreamFeeder(clip, "file", out=os.fdopen(write_fd, "wb")) as feeder:
            assert feeder.url is None
            reader = Reader(f"pipe:{read_fd}", format="mpegts", timeout=5).join()
            feeder.join(5)
    finally:
        os.close(read_fd)
    assert reader.error is None
    assert len(reader.frames) == feeder.sent_frames == 2 * FPS
    _assert_real_time(reader, 2.0)


def test_reader_leaving_early_ends_the_feeder_quietly(clip):
    """A subprocess reads 10 frames from its stdin and exits: the looping feeder's next writes
    meet a broken pipe, which ends it without an error."""
    code = ("import sys, av\n"
            "with av.open('pipe:0', format='mpegts') as c:\n"
            "    for i, f in enumerate(c.decode(video=0)):\n"
            "        if i == 9: print('read', i + 1); break\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        feeder = StreamFeeder(clip, "file", out=proc.stdin, loop=True).start()
        out = proc.stdout.read()  # until the reader exits
        proc.wait(10)
        feeder.join(5)
    finally:
        proc.kill()
    assert out.decode().strip() == "read 10"
    assert not feeder.is_alive() and feeder.error is None
    assert isinstance(feeder.reader_gone, BrokenPipeError)


def test_tcp_client_leaving_early_ends_the_feeder_quietly(short_clip):
    with StreamFeeder(short_clip, "tcp", loop=True) as feeder:
        reader = Reader(feeder.url, limit=5, timeout=5, options=LOW_LATENCY).join()
        feeder.join(3)
        assert not feeder.is_alive()
    assert len(reader.frames) == 5 and feeder.error is None
    assert isinstance(feeder.reader_gone, (BrokenPipeError, ConnectionResetError))


def test_stall_gap_between_frames(short_clip):
    with StreamFeeder(short_clip, "tcp", stall_after=0.4, stall_for=0.8) as feeder:
        reader = Reader(feeder.url, timeout=5, options=LOW_LATENCY).join()
        feeder.join(5)
    assert reader.error is None and len(reader.frames) == FPS
    gaps = np.diff(reader.times)
    assert 0.7 <= gaps.max() <= 1.1, gaps.round(3)
    assert np.sort(gaps)[-2] < 0.3, gaps.round(3)  # one stall, frames at pace around it
    _assert_real_time(reader, 1.0 + 0.8)


def test_stop_stalled_feeder_promptly(short_clip):
    """stall_for=None: the stream stalls with the connection open until stop(), which closes it."""
    feeder = StreamFeeder(short_clip, "tcp", stall_after=0.3).start()
    reader = Reader(feeder.url, timeout=5, options=LOW_LATENCY)
    time.sleep(0.8)
    assert feeder.is_alive() and reader.thread.is_alive()  # stalled, still open
    assert feeder.sent_frames == 9
    t = time.monotonic()
    feeder.stop()
    assert time.monotonic() - t < 2.0
    assert not feeder.is_alive()
    reader.join(3)  # the reader sees the end of the stream
    assert 0 < len(reader.frames) <= 9
    feeder.join(0)


def test_stop_while_waiting_for_a_reader(short_clip, tmp_path):
    """No client connects / no one opens the FIFO: stop() still returns at once."""
    for dest in ("tcp", f"fifo:{tmp_path / 'nobody.fifo'}"):
        feeder = StreamFeeder(short_clip, dest).start()
        time.sleep(0.1)
        assert feeder.is_alive() and not feeder.connected.is_set()
        t = time.monotonic()
        feeder.stop()
        assert time.monotonic() - t < 1.0, dest
        assert not feeder.is_alive() and feeder.sent_frames == 0
        feeder.join(0)


def test_stop_while_blocked_on_a_reader_that_does_not_read(short_clip, tmp_path):
    """A FIFO reader that never reads: looping fast, the feeder fills the pipe and blocks in a
    write; stop() still returns at once."""
    fifo = tmp_path / "full.fifo"
    os.mkfifo(fifo)
    read_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        feeder = StreamFeeder(short_clip, f"fifo:{fifo}", loop=True, speed=1000.0).start()
        deadline = time.monotonic() + 5
        previous = -1
        while feeder.sent_frames != previous and time.monotonic() < deadline:  # until the pipe is full
            previous = feeder.sent_frames
            time.sleep(0.2)
        assert feeder.sent_frames == previous > FPS and feeder.is_alive()
        t = time.monotonic()
        feeder.stop()
        assert time.monotonic() - t < 1.0
        assert not feeder.is_alive() and feeder.error is None
    finally:
        os.close(read_fd)


def test_loop_timestamps_keep_increasing(short_clip):
    """Looping at double speed: the second pass repeats the frames with later timestamps."""
    with StreamFeeder(short_clip, "tcp", loop=True, speed=2.0) as feeder:
        reader = Reader(feeder.url, limit=2 * FPS + 15, timeout=5).join()
    assert reader.error is None and len(reader.frames) == 2 * FPS + 15
    steps = np.diff(reader.pts)
    assert (steps == steps[0]).all() and steps[0] > 0, "timestamps step evenly across passes"
    for i in range(FPS, 2 * FPS + 15):
        assert np.array_equal(reader.frames[i], reader.frames[i - FPS]), f"frame {i} of the second pass"
    assert 0.8 * 75 / FPS / 2 <= reader.elapsed < 75 / FPS / 2 + 2.0
    assert not feeder.is_alive() and feeder.error is None


def test_end_hold_keeps_the_connection_open(short_clip):
    """end="hold": after the media the connection stays open and silent until stop()."""
    size = short_clip.stat().st_size
    with StreamFeeder(short_clip, "tcp", speed=4.0, end="hold") as feeder:
        with socket.create_connection(("127.0.0.1", int(feeder.url.rsplit(":", 1)[1])), timeout=3) as sock:
            sock.settimeout(0.6)  # packets come every 1/120 s at speed 4
            received = 0
            with pytest.raises(socket.timeout):  # the data, then silence without the end
                while True:
                    chunk = sock.recv(65536)
                    assert chunk, "the stream ended before stop()"
                    received += len(chunk)
            assert received >= 0.9 * size
            assert feeder.sent_frames == FPS and feeder.is_alive()
            feeder.stop()
            sock.settimeout(2)
            assert sock.recv(65536) == b""  # now the end of the stream


def test_growing_regular_file(short_clip, tmp_path):
    """A regular file as ``out`` grows as the packets are sent and ends as a readable clip."""
    growing = tmp_path / "growing.ts"
    with StreamFeeder(short_clip, "file", out=open(growing, "wb"), speed=2.0) as feeder:
        time.sleep(0.25)
        early = growing.stat().st_size
        feeder.join(5)
    assert 0 < early < growing.stat().st_size
    assert len(_decode_file(growing)) == FPS
    for got, want in zip(_decode_file(growing), _decode_file(short_clip)):
        assert np.array_equal(got, want)
