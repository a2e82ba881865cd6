"""`ava-detect prep videos / frames / annotations` end to end on tiny files."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from ava_detect.data.ava_files import read_frame_list
from ava_detect.data.video import probe_video

W, H = 128, 96


def pattern(k):
    img = np.zeros((H, W, 3), np.uint8)
    for b in range(8):
        if (k >> b) & 1:
            img[:, b * 16:(b + 1) * 16] = 255
    return img


def read_pattern(img):
    return sum(1 << b for b in range(8) if img[:, b * 16 + 4:(b + 1) * 16 - 4].mean() > 128)


def make_raw_movie(path: Path, fps=25, first=898, last=904):
    """A movie whose time axis reaches past second 900 cheaply: one picture at t=0 (number 0),
    then `fps` frames per second from `first` to `last` showing 1, 2, 3, ... (mpeg4 in Matroska)."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.codec_context.gop_size = 10
        frames = [(0, 0)] + [(first * fps + k, k + 1) for k in range((last - first) * fps)]
        for pts, k in frames:
            f = av.VideoFrame.from_ndarray(pattern(k % 256), format="rgb24")
            f.pts, f.time_base = pts, Fraction(1, fps)
            c.mux(s.encode(f))
        c.mux(s.encode(None))


@pytest.fixture
def prep(capsys):
    """Run `ava-detect prep ...` in this process -> (return code, stdout, stderr)."""
    from types import SimpleNamespace

    from ava_detect.cli import main

    def run(*args):
        capsys.readouterr()
        extra = ["--no-progress"] if args[0] != "annotations" else []
        code = main(["prep", *args, *extra])
        out, err = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out, stderr=err)

    return run


def test_prep_videos_cuts_resamples_resumes_and_reports_failures(tmp_path, prep):
    raw = tmp_path / "raw"
    raw.mkdir()
    make_raw_movie(raw / "movieA.mkv")
    (raw / "broken.mp4").write_bytes(b"not a movie at all" * 100)
    out = tmp_path / "videos"
    r = prep("videos", "--src", str(raw), "--out", str(out), "--gop", "8")
    assert r.returncode == 1, r.stderr  # one failure, reported at the end
    assert "1 movies failed" in r.stderr and "broken.mp4" in r.stderr
    # no partial file of the broken one; the settings movieA.mp4 was made with beside it
    assert sorted(p.name for p in out.iterdir()) == [".movieA.mp4.settings.json", "movieA.mp4"]
    info = probe_video(out / "movieA.mp4")
    assert (info.num_frames, info.rate, info.width, info.height) == (120, 30.0, W, H)  # 900..904 s at 30 fps
    with av.open(str(out / "movieA.mp4")) as c:
        frames = list(c.decode(c.streams.video[0]))
    got = [read_pattern(f.to_ndarray(format="rgb24")) for f in frames]
    # output frame i shows the raw picture at 900 + i/30: number floor((2 + i/30) * 25) + 1
    assert got == [(50 + (5 * i) // 6 + 1) % 256 for i in range(120)]
    assert frames[0].key_frame and frames[8].key_frame and all(int(f.pict_type) != 3 for f in frames[0::2])
    mtime = (out / "movieA.mp4").stat().st_mtime_ns
    (raw / "broken.mp4").unlink()
    r = prep("videos", "--src", str(raw), "--out", str(out), "--gop", "8")
    assert r.returncode == 0, r.stderr
    assert "1 already prepared, 0 to cut" in r.stdout and (out / "movieA.mp4").stat().st_mtime_ns == mtime
    r = prep("videos", "--src", str(raw), "--out", str(out), "--short-side", "48")  # other settings: cut again
    assert r.returncode == 0 and "0 already prepared, 1 to cut" in r.stdout and "short_side 0 -> 48" in r.stdout
    assert probe_video(out / "movieA.mp4").height == 48
    r = prep("videos", "--src", str(raw), "--out", str(raw))
    assert r.returncode == 2 and "--out is the source folder" in r.stderr  # refused before any work
    assert sorted(p.name for p in raw.iterdir()) == ["movieA.mkv"]
    r = prep("videos", "--src", str(raw), "--out", str(tmp_path / "v2"), "--gop", "7")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--gop" in r.stderr


def test_prep_frames_and_annotations(tmp_path, prep):
    raw = tmp_path / "raw"
    raw.mkdir()
    make_raw_movie(raw / "vidA.mkv", last=906)
    root = tmp_path / "ds"
    assert prep("videos", "--src", str(raw), "--out", str(root / "videos"), "--short-side", "48").returncode == 0
    ann = root / "annotations"
    ann.mkdir()
    (ann / "train.csv").write_text(
        "vidA,0902,0.1,0.1,0.5,0.9,12,0\nvidA,0902,0.1,0.1,0.5,0.9,14,0\nvidA,0904,0.6,0.2,0.9,0.8,11,1\n"
        "vidA,0910,0.1,0.1,0.5,0.9,12,0\n")
    (ann / "train_predicted_boxes.csv").write_text(
        "vidA,0902,0.1,0.1,0.5,0.88,,0.95\nvidA,0902,0.0,0.0,0.2,0.2,,0.5\nvidA,0904,0.6,0.2,0.9,0.79,,0.9\n")
    (ann / "train_excluded_timestamps.csv").write_text("vidA,0904\n")

    r = prep("frames", "--root", str(root))
    assert r.returncode == 0, r.stderr
    files = sorted((root / "frames" / "vidA").iterdir())
    assert len(files) == 180 and files[0].name == "vidA_000001.jpg" and files[-1].name == "vidA_000180.jpg"
    fl = read_frame_list(root / "frame_lists" / "train.csv")
    assert len(fl) == 180 and fl["path"].iloc[5] == "vidA/vidA_000006.jpg" and fl["frame_id"].iloc[5] == 5
    assert "0 to extract" in prep("frames", "--root", str(root)).stdout  # resumes

    r = prep("annotations", "--split", "train", "--root", str(root))
    assert r.returncode == 0, r.stderr
    assert "keys             3 (2 not excluded)" in r.stdout
    assert "keys past video end 1" in r.stdout  # second 910 of a 6 s video
    assert "stand" in r.stdout and "excluded keys    1" in r.stdout
    lines = (ann / "train_boxes_and_labels_include_negative.csv").read_text().splitlines()
    assert lines == ["vidA,0902,0.100,0.100,0.500,0.880,12,0.95", "vidA,0902,0.100,0.100,0.500,0.880,14,0.95",
                     "vidA,0902,0.000,0.000,0.200,0.200,,0.5", "vidA,0904,0.600,0.200,0.900,0.790,11,0.9"]

    (ann / "train.csv").write_text((ann / "train.csv").read_text() + "ghost1,0902,0.1,0.1,0.5,0.9,12,0\n")
    r = prep("annotations", "--split", "train", "--root", str(root), "--out", str(tmp_path / "x.csv"))
    assert r.returncode == 2 and "ghost1" in r.stderr and "--skip-missing-videos" in r.stderr
    assert not (tmp_path / "x.csv").exists()
    r = prep("annotations", "--split", "train", "--root", str(root), "--out", str(tmp_path / "x.csv"),
             "--skip-missing-videos")
    assert r.returncode == 0 and "keys without video  1 (1 videos missing)" in r.stdout
    (ann / "train.csv").write_text("vidA,0902,0.1,0.1,0.5\n")
    r = prep("annotations", "--split", "train", "--root", str(root))
    assert r.returncode == 2 and "train.csv:1:" in r.stderr and r.stderr.count("\n") == 1
