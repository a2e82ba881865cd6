"""Clip reading from videos and frame folders: exact frame indices, any frame rate, bad files."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from ava_detect.data.video import (
    FrameFolder, VideoFolder, frame_to_rgb, iter_video_frames, probe_video, read_video_frames)
from ava_detect.errors import AvaDetectError
from common import shared_path

W, H = 128, 96


def pattern(k: int) -> np.ndarray:
    """A frame showing the number ``k`` (0..255) as 8 black/white stripes, robust to compression."""
    img = np.zeros((H, W, 3), np.uint8)
    for b in range(8):
        if (k >> b) & 1:
            img[:, b * 16:(b + 1) * 16] = 255
    return img


def read_pattern(img) -> int:
    img = np.asarray(img)
    return sum(1 << b for b in range(8) if img[:, b * 16 + 4:(b + 1) * 16 - 4].mean() > 128)


def write_video(path: Path, numbers, *, fps, codec="libx264", pts=None, options=None, container_options=None):
    """Frames showing ``numbers``; frame j at ``pts[j]`` (units of 1/fps, default j)."""
    with av.open(str(path), "w", options=container_options or {}) as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.codec_context.gop_size = 12
        if options:
            s.options = options
        for j, k in enumerate(numbers):
            f = av.VideoFrame.from_ndarray(pattern(k), format="rgb24")
            f.pts, f.time_base = (j if pts is None else pts[j]), Fraction(1, int(fps))
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    return path


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A 'prepared' 30 fps video made by the project's encoder settings: 200 frames showing their index."""
    from ava_detect.prep.videos import EncodeSettings, x264_options

    folder = tmp_path_factory.mktemp("videos")
    write_video(folder / "vid.mp4", [i % 256 for i in range(200)], fps=30,
                options=x264_options(EncodeSettings(gop=16, preset="ultrafast")))
    return folder


def test_prepared_video_gives_exact_indices_and_clamps(prepared):
    reader = VideoFolder(prepared)
    assert reader.num_frames("vid") == 200
    rng = np.random.default_rng(0)
    for c in [0, 8, 100, 190, 199] + [int(x) for x in rng.integers(0, 200, 5)]:
        idx = torch.arange(c - 32, c + 32, 2)
        clip = reader.read("vid", idx)
        assert clip.shape == (32, H, W, 3) and clip.dtype == torch.uint8
        expected = idx.clamp(0, 199).tolist()
        assert [read_pattern(f) for f in clip] == expected
    # odd indices too (non-reference frames, decoded without skipping)
    idx = torch.tensor([3, 5, 77, 151, 151, 0])
    assert [read_pattern(f) for f in reader.read("vid", idx)] == idx.tolist()


def test_seek_reads_equal_sequential_decode(prepared):
    path = prepared / "vid.mp4"
    every = torch.from_numpy(np.stack([frame_to_rgb(f) for _, f in iter_video_frames(path)]))
    assert every.shape[0] == 200
    for c in (0, 64, 130, 199):
        idx = torch.arange(c - 16, c + 16, 2).clamp(0, 199)
        assert torch.equal(read_video_frames(path, idx), every[idx])


def test_25fps_matroska_with_a_late_start_is_resampled_through_timestamps(tmp_path):
    # frame 0 at t=0, then frames 1.. at 10 s + (k-1)/25: a variable frame rate, ms time base
    n = 60
    pts = [0] + [250 + k for k in range(n)]
    path = write_video(tmp_path / "raw.mkv", [0] + [k + 1 for k in range(n)], fps=25, codec="mpeg4", pts=pts)
    info = probe_video(path)
    assert info.num_frames == int(np.ceil((10 + n / 25) * 30 - 1e-6))
    idx = torch.arange(300, 300 + 72)  # 10 s .. 12.4 s at 30 fps
    got = [read_pattern(f) for f in read_video_frames(path, idx)]
    # the frame on screen at i/30 s is 25 fps frame floor((i/30 - 10) * 25) (+1 for the first picture)
    expected = [(i - 300) * 25 // 30 + 1 for i in idx.tolist()]
    assert got == expected
    assert [read_pattern(f) for f in read_video_frames(path, [0, 150, 299])] == [0, 0, 0]


@pytest.mark.parametrize("name", ["arm_wrestling_340x256_28fps.mp4", "pool_320x240_25fps_audio.avi",
                                  "carphone_176x144.mp4"])
def test_real_non_30fps_files_read_like_a_sequential_30fps_resampling(name):
    path = shared_path(f"videos/{name}")
    info = probe_video(path)
    every = [frame_to_rgb(f) for _, f in iter_video_frames(path)]
    assert abs(len(every) - info.num_frames) <= 1
    n = min(len(every), info.num_frames)
    for c in (0, n // 3, n - 1):
        idx = torch.arange(c - 16, c + 16, 2).clamp(0, n - 1)
        got = read_video_frames(path, idx, num_frames=n)
        assert torch.equal(got, torch.from_numpy(np.stack([every[i] for i in idx.tolist()])))
    # a 28 / 25 fps file repeats frames on the 30 fps axis: consecutive indices sometimes equal
    if info.rate < 29:
        frames = read_video_frames(path, torch.arange(30), num_frames=n)
        same = sum(torch.equal(frames[i], frames[i + 1]) for i in range(29))
        assert same == pytest.approx(30 * (1 - info.rate / 30), abs=1.5)


def test_frame_folder_gives_the_same_frames_as_the_video(prepared, tmp_path):
    from ava_detect.prep.frames import extract_frames

    count = extract_frames(prepared / "vid.mp4", tmp_path / "frames")
    assert count == 200
    frames, video = FrameFolder(tmp_path / "frames"), VideoFolder(prepared)
    assert frames.num_frames("vid") == 200
    for c in (0, 100, 199):
        idx = torch.arange(c - 32, c + 32, 2)
        a, b = frames.read("vid", idx), video.read("vid", idx)
        assert a.shape == b.shape
        assert [read_pattern(f) for f in a] == idx.clamp(0, 199).tolist()
        # JPEG at PySlowFast's quality: mean error well under 2 grey levels
        assert (a.float() - b.float()).abs().mean() < 2.0


def test_missing_and_unreadable_videos_are_clear_errors(tmp_path):
    with pytest.raises(AvaDetectError, match="not found") as e:
        read_video_frames(tmp_path / "nope.mp4", [0])
    assert "nope.mp4" in str(e.value)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(AvaDetectError, match="bad.mp4"):
        read_video_frames(bad, [0])


def test_truncated_video_names_the_file_and_the_second(tmp_path):
    # moov atom first (faststart), so the header survives and promises frames that are gone
    path = write_video(tmp_path / "cut.mp4", [i % 256 for i in range(300)], fps=30,
                       options={"preset": "ultrafast"}, container_options={"movflags": "+faststart"})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    assert probe_video(path).num_frames == 300
    with pytest.raises(AvaDetectError) as e:
        read_video_frames(path, torch.arange(250, 290, 2), num_frames=300)
    msg = str(e.value)
    assert "cut.mp4" in msg and "file time 8.33 s" in msg  # frame 250 = 250/30 s into the file


def test_corrupt_jpeg_names_the_file_and_second(prepared, tmp_path):
    from ava_detect.prep.frames import extract_frames

    extract_frames(prepared / "vid.mp4", tmp_path)
    victim = tmp_path / "vid" / "vid_000031.jpg"
    victim.write_bytes(victim.read_bytes()[:40])
    with pytest.raises(AvaDetectError, match=r"vid_000031.jpg.*file time 1\.00 s"):
        FrameFolder(tmp_path).read("vid", torch.arange(20, 40, 2))
