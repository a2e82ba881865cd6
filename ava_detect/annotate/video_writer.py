"""Writing the annotated video: h264 (libx264) in the container the file name asks for (mp4), with
the input's frame size and frame rate, and the input's audio stream copied packet by packet.

Each frame keeps the time it is given (``write(frame, time=...)``: the input frame's presentation
time, so a variable-frame-rate input keeps its frame times), in the time base given (the input
stream's, so times are kept exactly); frames written without a time are ``n / rate`` apart. A time
that does not increase (a repeated or backward timestamp of a broken input) cannot be stored:
such a frame is written one tick after the frame before it and counted in :attr:`VideoWriter.retimed`.
Frame sizes with an odd side cannot use 4:2:0 chroma; they are
encoded as 4:4:4 instead, keeping the exact size. Audio packets are copied without decoding
(remuxed), shifted so that they keep their offset to the first video frame, and interleaved
with the video as it is written (nothing is held back beyond the muxer's own interleaving). An
audio codec the output container cannot hold (e.g. PCM in mp4) is re-encoded to AAC, with a
warning.

A **live** writer (``live=True``, for streams) writes a file that plays while it grows and after
the process is killed: fragmented MP4 (``movflags=frag_keyframe+empty_moov+default_base_moof``, a
fragment per key frame, one key frame per second), x264 tuned for zero latency (no frames held
in the encoder's look-ahead), and every packet flushed to the file as it is muxed.
"""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from typing import Iterator, Optional

import av
import numpy as np

from ava_detect.errors import AvaDetectError
from ava_detect.io import PathLike

logger = logging.getLogger(__name__)


class _AudioCopy:
    """Packets of the first audio stream of ``source``, moved to the output as video time advances."""

    def __init__(self, output, source: str, *, video_start: float):
        self.container = av.open(source, mode="r", metadata_errors="ignore")
        self.in_stream = self.container.streams.audio[0]
        self.video_start = video_start
        self.transcode = False
        try:
            self.out_stream = output.add_stream_from_template(self.in_stream)
        except (ValueError, av.FFmpegError) as e:
            logger.warning("audio codec %s cannot be copied into %s (%s); re-encoding it to AAC",
                           self.in_stream.codec_context.name, output.format.name, e)
            self.transcode = True
            self.out_stream = output.add_stream("aac", rate=self.in_stream.codec_context.sample_rate or 44100)
        self.tb = self.in_stream.time_base
        self.shift = int(round(video_start / float(self.tb))) if self.tb else 0
        self._packets: Iterator = self.container.demux(self.in_stream)
        self._pending = None
        self.done = False
        self.output = output

    def _next(self):
        for packet in self._packets:
            if packet.dts is None and packet.pts is None:
                continue  # the demuxer's flush packet
            return packet
        return None

    def write_until(self, seconds: Optional[float]) -> None:
        """Copy the packets that start before ``seconds`` of output time (None: all that are left)."""
        while not self.done:
            packet = self._pending or self._next()
            self._pending = None
            if packet is None:
                self.done = True
                break
            ts = packet.pts if packet.pts is not None else packet.dts
            t = float((ts - self.shift) * self.tb)
            if seconds is not None and t > seconds:
                self._pending = packet
                break
            if t < 0:
                continue  # audio before the first video frame
            if self.transcode:
                for frame in packet.decode():
                    frame.pts = None
                    for out_packet in self.out_stream.encode(frame):
                        self.output.mux(out_packet)
                continue
            if packet.pts is not None:
                packet.pts -= self.shift
            if packet.dts is not None:
                packet.dts -= self.shift
            packet.stream = self.out_stream
            self.output.mux(packet)

    def close(self) -> None:
        if self.transcode and not self.done:
            self.write_until(None)
        if self.transcode:
            for out_packet in self.out_stream.encode(None):
                self.output.mux(out_packet)
        self.container.close()


class VideoWriter:
    """An h264 video file written frame by frame.

    Args:
        path: output file; its suffix picks the container (``.mp4``).
        width, height: frame size in pixels.
        rate: frames per second (the input's average rate, e.g. ``Fraction(30000, 1001)``).
        time_base: seconds per timestamp tick of the output (default ``1 / rate``); the input stream's
            time base keeps the input's frame times exactly.
        audio_source: a media file whose first audio stream is copied in (None: no audio).
        video_start: seconds of the source's timeline at which the first video frame is shown
            (audio keeps its offset to it).
        crf, preset: x264 quality and speed settings.
        live: a fragmented file that is playable while it grows (see the module docstring).

    Use as a context manager, or call :meth:`close` (which flushes the encoder); :meth:`abort`
    closes without finishing after an error.
    """

    def __init__(
        self, path: PathLike, *, width: int, height: int, rate: Fraction, audio_source: Optional[PathLike] = None,
        video_start: float = 0.0, crf: int = 20, preset: str = "veryfast", time_base: Optional[Fraction] = None,
        live: bool = False,
    ):
        self.path = os.fspath(path)
        self.width, self.height = int(width), int(height)
        rate = Fraction(rate).limit_denominator(1_000_000)
        if rate <= 0:
            raise AvaDetectError(f"cannot write a video at {float(rate)} frames per second", self.path)
        self.rate = rate
        options = {"flush_packets": "1"} if live else {}
        if live and os.path.splitext(self.path)[1].lower() in (".mp4", ".m4v", ".mov"):
            options["movflags"] = "frag_keyframe+empty_moov+default_base_moof"
        self.container = av.open(self.path, mode="w", container_options=options)
        try:
            stream = self.container.add_stream("libx264", rate=rate)
            stream.width, stream.height = self.width, self.height
            stream.pix_fmt = "yuv420p" if self.width % 2 == 0 and self.height % 2 == 0 else "yuv444p"
            self.time_base = Fraction(time_base) if time_base else 1 / rate
            stream.codec_context.time_base = self.time_base
            stream.time_base = self.time_base
            stream.options = {"crf": str(int(crf)), "preset": str(preset)}
            if live:
                stream.options = {**stream.options, "tune": "zerolatency"}
                stream.codec_context.gop_size = max(1, int(round(float(rate))))
            self.stream = stream
            self.audio: Optional[_AudioCopy] = None
            if audio_source is not None:
                self.audio = _AudioCopy(self.container, os.fspath(audio_source), video_start=video_start)
        except BaseException:
            self.container.close()
            raise
        self.frames_written = 0
        #: frames whose time did not increase and were written one tick after the frame before
        self.retimed = 0
        self._last_pts: Optional[int] = None

    def write(self, frame: np.ndarray, time: Optional[float] = None) -> None:
        """Append one ``uint8 [H,W,3]`` RGB frame, shown at ``time`` seconds (default
        ``frames_written / rate``), rounded to the time base."""
        if frame.shape != (self.height, self.width, 3):
            raise ValueError(f"frame must be [{self.height},{self.width},3], got {tuple(frame.shape)}")
        if time is None:
            time = self.frames_written / float(self.rate)
        pts = int(round(Fraction(time) / self.time_base))
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1
            self.retimed += 1
        self._last_pts = pts
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        video_frame.pts = pts
        video_frame.time_base = self.time_base
        if self.audio is not None:
            self.audio.write_until(float(pts * self.time_base))
        for packet in self.stream.encode(video_frame):
            self.container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder, copy the rest of the audio and finish the file."""
        try:
            for packet in self.stream.encode(None):
                self.container.mux(packet)
            if self.audio is not None:
                self.audio.write_until(None)
                self.audio.close()
        finally:
            self.container.close()

    def abort(self) -> None:
        """Close the files without finishing them (after an error; the caller removes the output)."""
        try:
            if self.audio is not None:
                self.audio.container.close()
        finally:
            self.container.close()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
