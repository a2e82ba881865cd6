"""Encoding rendered frames as a deterministic h264 mp4 (the same frames give the same bytes)."""

from __future__ import annotations

import os
from typing import Iterator

import av
import numpy as np

from ava_detect.data.constants import FPS
from ava_detect.io import PathLike

#: A key frame every 15 frames (0.5 s), so readers seek cheaply.
GOP = 15
#: libx264 settings: fixed, single-threaded, no B-frames (presentation = decoding order, first
#: frame at t=0), so the same frames give the same bytes.
X264_OPTIONS = {
    "preset": "veryfast",
    "crf": "23",
    "x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0:bframes=0:threads=1:sliced-threads=0",
}


def encode_video(path: PathLike, frames: Iterator[np.ndarray], width: int, height: int, fps: int = FPS) -> None:
    """Encode RGB frames into an h264 mp4 (yuv420p, ``fps`` frames per second, frame ``i`` at
    ``i / fps`` s). ``frames`` yields ``uint8[height, width, 3]``. Writes ``path`` as given
    (callers pass a temporary path from :func:`ava_detect.io.atomic_path`)."""
    container = av.open(os.fspath(path), "w", format="mp4")
    try:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        stream.codec_context.gop_size = GOP
        stream.options = dict(X264_OPTIONS)
        for i, rgb in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            vf.pts = i
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
