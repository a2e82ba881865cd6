"""Damaged or unusual videos through every command that reads videos: files cut short (one warning
naming the file, where its frames end and the duration its header claims; the frames that are
there are used), display rotations (the models see people upright, outputs play as the input
plays), variable frame rates (annotate keeps each frame's time), and files that are no video."""

from __future__ import annotations

import json
import logging
from fractions import Fraction
from pathlib import Path
from typing import List, Optional, Sequence

import av
import numpy as np
import pytest
import torch

from ava_detect import cli
from ava_detect.annotate import ActionPredictor, VideoWriter
from ava_detect.config import load_config
from ava_detect.data.video import iter_video_frames, probe_video, read_video_frames
from ava_detect.detection import CsvPersonDetector
from ava_detect.model import build_model, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"
#: small inputs for the action model (the published recipe uses 256)
SMALL_CLIP = ["data.test_short_side=64"]
W, H = 96, 64


def stored_picture(k: int = 0) -> np.ndarray:
    """The picture the test videos store: a white block in the top-left (half the height, a
    quarter of the width) and a grey level that counts frames elsewhere, ``uint8 [H,W,3]``."""
    img = np.full((H, W, 3), (k * 7) % 100, np.uint8)
    img[: H // 2, : W // 4] = 255
    return img


def make_video(path: Path, n: int, *, rate: int = 15, times_ms: Optional[Sequence[int]] = None,
               rotation: Optional[int] = None, mirror: bool = False, tag: Optional[str] = None,
               container_options: Optional[dict] = None) -> Path:
    """An h264 video of ``n`` frames of :func:`stored_picture`; frame ``j`` at ``j / rate`` s, or at
    ``times_ms[j]`` ms; with a display matrix (``rotation`` degrees counter-clockwise, then a mirror)
    or a ``rotate`` tag (degrees clockwise)."""
    with av.open(str(path), "w", options=container_options or {}) as c:
        s = c.add_stream("libx264", rate=rate)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.codec_context.gop_size = 10
        s.options = {"preset": "ultrafast"}
        time_base = Fraction(1, 1000) if times_ms is not None else Fraction(1, rate)
        s.codec_context.time_base = time_base
        if rotation is not None:
            s.set_display_rotation(rotation, hflip=mirror)
        if tag is not None:
            s.metadata["rotate"] = tag
        for j in range(n):
            f = av.VideoFrame.from_ndarray(stored_picture(j), format="rgb24")
            f.pts, f.time_base = (j if times_ms is None else times_ms[j]), time_base
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    return path


def truncate(path: Path, share: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * share)])
    return path


def decodable(path: Path) -> List[float]:
    """Times (s) of the frames plain PyAV decodes before the data stops."""
    times = []
    with av.open(str(path)) as c:
        try:
            for f in c.decode(video=0):
                times.append(float(f.time))
        except av.FFmpegError:
            pass
    return times


def shown(stored: np.ndarray, rotation: int, mirror: bool = False) -> np.ndarray:
    """What a player shows for a display matrix of ``rotation`` degrees counter-clockwise (ffmpeg's
    convention, as ``av_display_rotation_get`` returns it), then a left-right mirror."""
    out = np.rot90(stored, k=(rotation % 360) // 90)
    return out[:, ::-1] if mirror else out


def white_block(img: np.ndarray):
    """``(height, width, top, left, bottom, right)``: the picture's size and where its white block is."""
    rows, cols = np.nonzero(img.mean(axis=2) > 200)
    return img.shape[0], img.shape[1], rows.min(), cols.min(), rows.max(), cols.max()


def close_to(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean()) < 8


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = build_model(load_config(TINY, ["model.num_classes=80"]))
    path = tmp_path_factory.mktemp("tiny") / "tiny80.pth"
    save_checkpoint(path, model=model)
    return path


def boxes_csv(path: Path, video_id: str, seconds: Sequence[int]) -> Path:
    path.write_text("".join(f"{video_id},{s:04d},0.1,0.1,0.6,0.9,,0.99\n" for s in seconds))
    return path


def annotate(video: Path, out: Path, weights: Path, boxes: Path, *extra: str) -> int:
    return cli.main(["-q", "annotate", str(video), *SMALL_CLIP, "--config", str(TINY), "--weights", str(weights),
                     "--detector", "csv", "--boxes", str(boxes), "--out", str(out / "out.mp4"),
                     "--json", str(out / "out.json"), "--device", "cpu", *extra])


def warnings_about(stderr: str, word: str) -> List[str]:
    """The warnings printed (each from ``warning:`` to the end of its line; a progress bar may come
    before it on the same line) that contain ``word``."""
    found = [line[line.index("warning: "):] for line in stderr.splitlines() if "warning: " in line]
    return [w for w in found if word in w]


# ---- truncated files -------------------------------------------------------------------------


@pytest.mark.parametrize("name,options", [("cut.mkv", None), ("cut.mp4", {"movflags": "+faststart"})])
def test_truncated_video_is_annotated_as_far_as_it_goes_with_one_warning(name, options, tmp_path, tiny_weights,
                                                                         capsys):
    video = truncate(make_video(tmp_path / name, 45, container_options=options))  # 3 s claimed
    there = decodable(video)
    assert 0 < len(there) < 40
    boxes = boxes_csv(tmp_path / "boxes.csv", "cut", range(3))
    assert annotate(video, tmp_path, tiny_weights, boxes, "--every", "1") == 0
    err = capsys.readouterr().err
    lines = warnings_about(err, "truncated")
    assert len(lines) == 1, err
    end = there[-1] + 1 / 15
    assert str(video) in lines[0] and f"end at {end:.2f} s" in lines[0] and "header says 3.00 s" in lines[0]
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == len(there)
    keyframes = json.loads((tmp_path / "out.json").read_text())["keyframes"]
    assert [k["time"] for k in keyframes] == [float(s) for s in range(3) if s < end]


def test_truncated_video_in_detect_warns_and_keeps_the_keyframes_it_has(tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    video = truncate(make_video(videos / "cut.mkv", 60))  # 4 s claimed, about 2 s there
    there = decodable(video)
    boxes = boxes_csv(tmp_path / "boxes.csv", "cut", range(4))
    out = tmp_path / "found.csv"
    rc = cli.main(["-q", "detect", "--videos", str(videos), "--out", str(out), "--detector", "csv", "--boxes",
                   str(boxes), "--every", "1", "--second-offset", "0", "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 0, err
    lines = warnings_about(err, "truncated")
    assert len(lines) == 1 and str(video) in lines[0] and "header says 4.00 s" in lines[0], err
    seconds = [int(line.split(",")[1]) for line in out.read_text().splitlines()]
    assert seconds == [s for s in range(4) if s < there[-1] + 1 / 15]


def test_truncated_movie_in_prep_videos_and_prep_frames_warns_once(tmp_path, capsys):
    raw, prepared, frames = tmp_path / "raw", tmp_path / "prepared", tmp_path / "frames"
    raw.mkdir()
    truncate(make_video(raw / "movie.mkv", 60))
    rc = cli.main(["-q", "prep", "videos", "--src", str(raw), "--out", str(prepared), "--start-second", "0",
                   "--end-second", "4", "--preset", "ultrafast", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 0, err
    warned = warnings_about(err, "")
    assert len(warned) == 1 and "truncated" in warned[0] and "movie.mkv" in warned[0], err
    assert probe_video(prepared / "movie.mp4").duration < 3
    # an mp4 cut short whose index (at the front) says 4 s: warned about when its frames are extracted
    cut = truncate(make_video(tmp_path / "clip.mp4", 60, container_options={"movflags": "+faststart"}))
    cut.rename(prepared / "clip.mp4")
    rc = cli.main(["-q", "prep", "frames", "--videos", str(prepared), "--out", str(frames), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 0, err
    lines = warnings_about(err, "truncated")
    assert len(lines) == 1 and "clip.mp4" in lines[0] and "header says 4.00 s" in lines[0], err
    count = len(list((frames / "clip").iterdir()))
    assert 0 < count <= round(len(decodable(prepared / "clip.mp4")) * 30 / 15) + 1


def test_damaged_files_are_one_line_errors_in_detect(tmp_path, capsys):
    for name, data in [("zero.mp4", b""), ("text.mp4", b"not a video\n" * 50),
                       ("head.mp4", None)]:  # head: the first 2 KB of a video (no index, no frames)
        folder = tmp_path / name.split(".")[0]
        folder.mkdir()
        video = folder / name
        if data is None:
            data = make_video(tmp_path / "whole.mp4", 15).read_bytes()[:2048]
        video.write_bytes(data)
        rc = cli.main(["-q", "detect", "--videos", str(video), "--out", str(folder / "out.csv"), "--detector", "csv",
                       "--boxes", str(boxes_csv(folder / "boxes.csv", video.stem, [0])), "--second-offset", "0"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and err[0].startswith("ava-detect detect: error:"), err
        assert str(video) in err[0]
        assert not (folder / "out.csv").exists()


# ---- display rotation ------------------------------------------------------------------------


@pytest.mark.parametrize("rotation,mirror", [(90, False), (180, False), (-90, False), (90, True), (0, True)])
def test_each_display_matrix_is_read_as_a_player_shows_it(rotation, mirror, tmp_path):
    video = make_video(tmp_path / "phone.mp4", 20, rotation=rotation, mirror=mirror)
    want = shown(stored_picture(3), rotation, mirror)
    info = probe_video(video)
    assert (info.height, info.width) == want.shape[:2]
    assert close_to(read_video_frames(video, [6])[0].numpy(), want)  # frame 6 of 30 fps = stored frame 3
    first = next(iter_video_frames(video))[1]
    assert first.rotation == 0 and close_to(first.to_ndarray(format="rgb24"), shown(stored_picture(0), rotation,
                                                                                     mirror))


def test_rotate_tag_of_older_files_is_read_as_a_player_shows_it(tmp_path):
    video = make_video(tmp_path / "old.mkv", 10, tag="90")  # 90 degrees clockwise
    assert probe_video(video).orientation.rotation == 270
    assert close_to(read_video_frames(video, [0])[0].numpy(), shown(stored_picture(0), -90))


class _Seen:
    """Records what the person detector and the action model are given."""

    def __init__(self, monkeypatch):
        self.pictures: List[np.ndarray] = []
        self.clips: List[List[np.ndarray]] = []
        detect, predict = CsvPersonDetector.detect, ActionPredictor.predict

        def seen_detect(det, frames, *, keys=None):
            self.pictures += [np.asarray(f) for f in frames]
            return detect(det, frames, keys=keys)

        def seen_predict(pred, clips, boxes):
            self.clips += [list(c) for c in clips]
            return predict(pred, clips, boxes)

        monkeypatch.setattr(CsvPersonDetector, "detect", seen_detect)
        monkeypatch.setattr(ActionPredictor, "predict", seen_predict)


def test_rotated_video_reaches_the_models_upright_and_is_annotated_upright(tmp_path, tiny_weights, monkeypatch,
                                                                            capsys):
    video = make_video(tmp_path / "phone.mp4", 30, rotation=90)
    seen = _Seen(monkeypatch)
    empty = tmp_path / "boxes.csv"
    empty.write_text("")  # nobody to draw: the output shows the input as it is
    assert annotate(video, tmp_path, tiny_weights, empty, "--every", "1") == 0
    capsys.readouterr()
    assert len(seen.pictures) == 2 and all(close_to(p, shown(stored_picture(15 * k), 90))
                                           for k, p in enumerate(seen.pictures))
    result = json.loads((tmp_path / "out.json").read_text())
    assert (result["width"], result["height"]) == (H, W)
    with av.open(str(tmp_path / "out.mp4")) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == 30
    assert all(f.rotation == 0 and not any(sd.type.name == "DISPLAYMATRIX" for sd in f.side_data) for f in frames)
    assert close_to(frames[7].to_ndarray(format="rgb24"), shown(stored_picture(7), 90))

    # the clips the action model sees are upright too (with boxes: it runs)
    boxes = boxes_csv(tmp_path / "people.csv", "phone", [0, 1])
    assert annotate(video, tmp_path, tiny_weights, boxes, "--every", "1") == 0
    want = white_block(shown(stored_picture(0), 90))
    assert seen.clips and all(white_block(np.asarray(pic)) == want for clip in seen.clips for pic in clip)


def test_prep_videos_cuts_a_rotated_movie_upright(tmp_path, capsys):
    raw, prepared = tmp_path / "raw", tmp_path / "prepared"
    raw.mkdir()
    make_video(raw / "movie.mp4", 30, rotation=-90)
    assert cli.main(["-q", "prep", "videos", "--src", str(raw), "--out", str(prepared), "--start-second", "0",
                     "--end-second", "1", "--preset", "ultrafast", "--no-progress"]) == 0
    capsys.readouterr()
    with av.open(str(prepared / "movie.mp4")) as c:
        frame = next(c.decode(video=0))
    assert frame.rotation == 0 and close_to(frame.to_ndarray(format="rgb24"), shown(stored_picture(0), -90))


# ---- frame times -----------------------------------------------------------------------------


def test_variable_frame_rate_keeps_each_frame_time_in_annotate(tmp_path, tiny_weights, capsys):
    gaps = [33, 33, 100, 17, 50, 67, 33, 120, 20, 40] * 3
    times_ms = [sum(gaps[:j]) for j in range(len(gaps))]
    video = make_video(tmp_path / "vfr.mp4", len(times_ms), times_ms=times_ms)
    there = decodable(video)
    assert there == pytest.approx([t / 1000 for t in times_ms], abs=1e-6)
    boxes = boxes_csv(tmp_path / "boxes.csv", "vfr", range(2))
    assert annotate(video, tmp_path, tiny_weights, boxes, "--every", "1") == 0
    assert warnings_about(capsys.readouterr().err, "") == []
    written = decodable(tmp_path / "out.mp4")
    assert len(written) == len(there)
    assert max(abs(a - b) for a, b in zip(written, there)) < 1e-3


def test_times_that_do_not_increase_are_moved_one_tick_and_counted(tmp_path):
    out = tmp_path / "w.mp4"
    with VideoWriter(out, width=W, height=H, rate=Fraction(25), time_base=Fraction(1, 1000)) as writer:
        for k, t in enumerate([0.0, 0.04, 0.04, 0.02, 0.2]):
            writer.write(stored_picture(k), time=t)
    assert writer.retimed == 2
    assert decodable(out) == pytest.approx([0.0, 0.04, 0.041, 0.042, 0.2], abs=1e-6)


def test_truncation_warning_goes_through_logging(tmp_path, caplog):
    video = truncate(make_video(tmp_path / "cut.mkv", 45))
    with caplog.at_level(logging.WARNING, logger="ava_detect"):
        frames = sum(1 for _ in iter_video_frames(video, fps=15))
    records = [r for r in caplog.records if "truncated" in r.getMessage()]
    assert len(records) == 1 and records[0].levelno == logging.WARNING
    assert frames == len(decodable(video))
