"""``detect --cvat``: CVAT pre-labels (tracks, the video's own frames, checkbox attributes, model-assisted
attributes), the time axis of ``detect``, and sharding over the processes of a ``torchrun`` launch."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from ava_detect import cli
from ava_detect.annotate.tracking import IoUTracker
from ava_detect.config import load_config
from ava_detect.cvat.model import CvatTask, CvatTrack
from ava_detect.cvat.reader import iter_cvat_export
from ava_detect.cvat.writer import label_constructor
from ava_detect.data.ava_files import read_ground_truth, read_labelmap, read_predicted_boxes
from ava_detect.data.labelmaps import resolve_labelmap
from ava_detect.data.frame_numbers import frame_shown_at, frame_times
from ava_detect.data.video_reader import VideoReader
from common import ROOT, cli_error, folder_state, subprocess_env

TINY = ROOT / "configs" / "tiny.yaml"
SMALL_CLIP = ["data.test_short_side=64", "model.num_frames=8"]


@pytest.fixture(scope="module")
def syn(tmp_path_factory) -> Path:
    """3 synthetic videos of 6 s (160x120, 30 fps, t=0 at second 900) and a box CSV of every person."""
    from ava_detect.synthetic import make_synthetic_dataset

    root = tmp_path_factory.mktemp("syn")
    make_synthetic_dataset(root, num_videos=3, seconds=6, size=(160, 120))
    ann = root / "annotations"
    (root / "boxes.csv").write_text((ann / "train.csv").read_text() + (ann / "val.csv").read_text())
    return root


def _detect(syn: Path, *args) -> list:
    return ["detect", "--videos", str(syn / "videos"), "--detector", "csv", "--boxes", str(syn / "boxes.csv"),
            "--device", "cpu", *map(str, args)]


def _read(xml: Path):
    items = list(iter_cvat_export(xml))
    tasks = [i for i in items if isinstance(i, CvatTask)]
    tracks = [i for i in items if isinstance(i, CvatTrack)]
    assert len(tasks) == 1
    return tasks[0], tracks


def _gt_pixels(syn: Path, video_id: str, second: int) -> np.ndarray:
    """The distinct person boxes of the box CSV at one key, in pixels of 160x120, in file order."""
    df = read_ground_truth(syn / "boxes.csv")
    rows = df[(df["video_id"].astype(str) == video_id) & (df["second"] == second)]
    xyxy = rows[["x1", "y1", "x2", "y2"]].drop_duplicates().to_numpy(dtype=np.float64)
    return xyxy * np.array([160, 120, 160, 120])


def test_prelabels_hold_tracks_keyframe_boxes_outside_and_checkboxes(syn, tmp_path, capsys):
    cvat = tmp_path / "cvat"
    assert cli.main(_detect(syn, "--cvat", cvat)) == 0
    out = capsys.readouterr().out
    assert f"wrote CVAT pre-labels to {cvat}: 3 videos (3 written now" in out and "labels.json" in out
    lm = resolve_labelmap(None, kind="all")  # the default config's: AVA v2.2's 80 actions
    names = [lm.names[i] for i in lm.ids]
    assert json.loads((cvat / "labels.json").read_text()) == label_constructor(names)
    seconds = [902, 903, 904, 905]  # the AVA config's keyframe range, inside 6-second videos from second 900
    for video in sorted((syn / "videos").glob("*.mp4")):
        xml = cvat / f"{video.stem}.xml"
        ET.parse(xml)  # well-formed for the standard-library parser too
        task, tracks = _read(xml)
        assert (task.source, task.size, task.width, task.height) == (video.name, 180, 160, 120)
        assert task.labels == {"person": names}
        tracker, expected = IoUTracker(min_iou=0.3, max_age=2), {}
        for s in seconds:
            boxes = _gt_pixels(syn, video.stem, s)
            for tid, box in zip(tracker.update(boxes), boxes):
                expected[(int(tid), (s - 900) * 30)] = box
        seen = {(t.id, b.frame): b for t in tracks for b in t.boxes if not b.outside}
        assert sorted(seen) == sorted(expected)
        for key, b in seen.items():
            assert np.allclose([b.xtl, b.ytl, b.xbr, b.ybr], expected[key], atol=0.006)
            assert b.keyframe and b.attributes == dict.fromkeys(names, "false")
        for t in tracks:  # an outside box at the first keyframe after each stretch a person is seen
            assert t.label == "person"
            frames = [b.frame for b in t.boxes if not b.outside]
            outside = [b.frame for b in t.boxes if b.outside]
            after = [f + 30 for f in frames if f + 30 not in frames and f + 30 <= (seconds[-1] - 900) * 30]
            assert outside == after


def test_keyframes_follow_the_config_time_axis_and_the_flags(syn, tmp_path, capsys):
    every_second = tmp_path / "every_second.csv"  # a box at every second around the videos' 6 s
    every_second.write_text("".join(f"{v.stem},{s},0.1,0.1,0.5,0.9,,0.9\n" for v in (syn / "videos").glob("*.mp4")
                                    for s in range(890, 910)))

    def seconds_of(*args) -> set:
        out = tmp_path / "b.csv"
        assert cli.main([*_detect(syn, "--out", out), "--boxes", str(every_second), *args]) == 0
        return set(read_predicted_boxes(out)["second"])

    assert seconds_of() == {902, 903, 904, 905}  # AVA: data.keyframe_range
    assert seconds_of("data.keyframe_range=[]") == {900, 901, 902, 903, 904, 905}
    assert seconds_of("--every", "2") == {900, 902, 904}
    assert seconds_of("--seconds", "903-904") == {903, 904}
    assert seconds_of("data.start_second=899", "data.keyframe_range=[]") == {899, 900, 901, 902, 903, 904}
    # another --second-offset than the config's: its keyframe range (AVA seconds) does not apply
    assert seconds_of("--second-offset", "899") == {899, 900, 901, 902, 903, 904}


def _encode(path: Path, seconds: float, rate: int, size=(96, 64)) -> Path:
    """An h264 video, frame j at j / rate s, whose picture changes each frame."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=rate)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        s.codec_context.time_base = Fraction(1, rate)
        for j in range(int(seconds * rate)):
            img = np.full((size[1], size[0], 3), (j * 7) % 256, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = j
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def test_cvat_frames_are_the_videos_own_frames(tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    _encode(videos / "clip.mp4", 4, 25)
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("".join(f"clip,{s},0.1,0.2,0.5,0.9,,0.95\n" for s in range(4)))
    rc = cli.main(["detect", "--videos", str(videos), "--detector", "csv", "--boxes", str(boxes), "--device", "cpu",
                   "--cvat", str(tmp_path / "cvat"), "data.start_second=0", "data.keyframe_range=[]"])
    assert rc == 0, capsys.readouterr().err
    task, tracks = _read(tmp_path / "cvat" / "clip.xml")
    assert task.size == 100 and len(tracks) == 1  # 4 s at 25 fps; one person at every keyframe
    assert [b.frame for b in tracks[0].boxes] == [0, 25, 50, 75]  # second s -> the video's frame s * 25
    assert np.allclose([tracks[0].boxes[0].xtl, tracks[0].boxes[0].ybr], [9.6, 57.6], atol=0.006)


def test_frame_numbers_match_the_decoded_frames(tmp_path):
    video = _encode(tmp_path / "v.mkv", 2, 15)
    times = frame_times(video)
    with VideoReader(video) as reader:
        decoded = [t for t, _ in reader.frames()]
    assert np.allclose(times, decoded, atol=1e-6) and len(times) == 30
    assert [frame_shown_at(times, t) for t in (0.0, 0.5, 1.0, 1.99, 5.0, -1.0)] == [0, 7, 15, 29, 29, 0]


@pytest.fixture(scope="module")
def tiny7(tmp_path_factory) -> Path:
    from ava_detect.model import build_model, save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny7") / "tiny7.pth"
    save_checkpoint(path, model=build_model(load_config(TINY, ["model.num_classes=7", *SMALL_CLIP])))
    return path


def test_weights_prefill_the_actions_the_model_scores_above_the_threshold(syn, tiny7, tmp_path, capsys):
    from ava_detect.annotate.annotator import build_predictor
    from ava_detect.data.sampler import clip_frame_indices, keyframe_center
    from ava_detect.data.video import read_video_frames

    labelmap = syn / "annotations" / "labelmap.pbtxt"
    cvat = tmp_path / "cvat"
    rc = cli.main([*_detect(syn, "--cvat", cvat, "--config", TINY, "--weights", tiny7, "--labelmap", labelmap,
                            "--action-threshold", "0.5", "--seconds", "903-904"), "model.num_classes=7", *SMALL_CLIP])
    assert rc == 0, capsys.readouterr().err
    cfg = load_config(TINY, ["model.num_classes=7", *SMALL_CLIP])
    predictor = build_predictor(cfg, weights=str(tiny7), device="cpu", head="load")
    lm = read_labelmap(labelmap)
    names = [lm.names[i] for i in lm.ids]
    checked = 0
    for video in sorted((syn / "videos").glob("*.mp4")):
        _, tracks = _read(cvat / f"{video.stem}.xml")
        for s in (903, 904):  # the dataset's clip of the keyframe, scored independently
            idx = clip_frame_indices(keyframe_center(s), num_frames=8, sampling_rate=cfg.model.sampling_rate,
                                     num_video_frames=180)
            clip = read_video_frames(video, idx).numpy()
            boxes = [(t.id, b) for t in tracks for b in t.boxes if b.frame == (s - 900) * 30 and not b.outside]
            xyxy = torch.tensor([[b.xtl, b.ytl, b.xbr, b.ybr] for _, b in boxes]).reshape(-1, 4)
            probs = predictor.predict([clip], [xyxy])[0] if len(boxes) else torch.zeros((0, 7))
            for (_, b), p in zip(boxes, probs):
                want = {n: "true" if float(q) >= 0.5 else "false" for n, q in zip(names, p)}
                # boxes in the XML are rounded to 0.01 px: only scores right at the threshold could differ
                close = {n for n, q in zip(names, p) if abs(float(q) - 0.5) < 1e-3}
                assert {k: v for k, v in b.attributes.items() if k not in close} == \
                       {k: v for k, v in want.items() if k not in close}
                checked += list(b.attributes.values()).count("true")
    assert checked > 0


def test_label_map_and_weights_that_do_not_fit_are_one_line_errors(syn, tiny7, tmp_path, capsys):
    cvat = tmp_path / "cvat"
    before = folder_state(tmp_path)
    line = cli_error(capsys, *_detect(syn, "--cvat", cvat, "--config", TINY, "--weights", tiny7),
                     "model.num_classes=7", *SMALL_CLIP)  # the default label map has 80 actions
    assert "model.num_classes=7 but the label map has 80 classes" in line
    line = cli_error(capsys, *_detect(syn, "--cvat", cvat, "--config", TINY, "--weights", tiny7, "--labelmap",
                                      syn / "annotations" / "labelmap.pbtxt"), "model.num_classes=80", *SMALL_CLIP)
    assert "model.num_classes=80 but the label map has 7 classes" in line
    assert folder_state(tmp_path) == before


def test_bad_cvat_flags_are_one_line_errors(syn, tmp_path, capsys):
    note = tmp_path / "note.txt"
    note.write_text("mine")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "labels.json").write_bytes((syn / "annotations" / "labelmap.pbtxt").read_bytes())
    before = folder_state(tmp_path)
    assert "expected a folder" in cli_error(capsys, *_detect(syn, "--cvat", note))
    line = cli_error(capsys, *_detect(syn, "--cvat", mine, "--labelmap", mine / "labels.json"))
    assert "--cvat/labels.json is the same file as --labelmap" in line
    assert "nothing to write" in cli_error(capsys, *_detect(syn))
    assert "give --cvat DIR too" in cli_error(capsys, *_detect(syn, "--out", tmp_path / "b.csv", "--weights", "x.pth"))
    assert "needs --weights" in cli_error(capsys, *_detect(syn, "--cvat", tmp_path / "c", "--action-threshold", "0.2"))
    assert folder_state(tmp_path) == before


def _torchrun(args, nproc=2):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           "-m", "ava_detect.cli", *args]
    done = subprocess.run(cmd, env=subprocess_env(OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_torchrun_shards_the_videos_and_resumes(syn, tmp_path, capsys):
    one, two = tmp_path / "one", tmp_path / "two"
    assert cli.main(_detect(syn, "--out", one / "b.csv", "--cvat", one / "cvat")) == 0
    text = _torchrun(_detect(syn, "--out", two / "b.csv", "--cvat", two / "cvat"))
    assert text.count("wrote CVAT pre-labels") == 1 and "(3 written now" in text  # each video once, one summary
    assert (two / "b.csv").read_bytes() == (one / "b.csv").read_bytes()
    assert sorted(p.name for p in (two / "cvat").iterdir()) == sorted(p.name for p in (one / "cvat").iterdir())
    for xml in (one / "cvat").glob("*.xml"):
        assert (two / "cvat" / xml.name).read_bytes() == xml.read_bytes()
    assert not (two / ".b.csv.parts").exists()

    videos = sorted((syn / "videos").glob("*.mp4"))
    mtimes = {v.stem: (two / "cvat" / f"{v.stem}.xml").stat().st_mtime_ns for v in videos}
    (two / "cvat" / f"{videos[1].stem}.xml").unlink()
    text = _torchrun(_detect(syn, "--cvat", two / "cvat"))
    assert "(1 written now" in text and "2 already done" in text, text
    for v in videos:
        again = (two / "cvat" / f"{v.stem}.xml").stat().st_mtime_ns
        assert (again != mtimes[v.stem]) == (v == videos[1])
    assert (two / "cvat" / f"{videos[1].stem}.xml").read_bytes() == (one / "cvat" / f"{videos[1].stem}.xml").read_bytes()


def test_changed_settings_rewrite_the_xmls(syn, tmp_path, capsys):
    cvat = tmp_path / "cvat"
    assert cli.main(_detect(syn, "--cvat", cvat)) == 0
    assert cli.main(_detect(syn, "--cvat", cvat)) == 0
    assert "(0 written now" in capsys.readouterr().out
    assert cli.main(_detect(syn, "--cvat", cvat, "annotate.track_iou=0.5")) == 0
    captured = capsys.readouterr()
    assert "(3 written now" in captured.out and "track_iou 0.3 -> 0.5" in captured.err
