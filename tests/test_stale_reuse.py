"""Stale or wrong reuse: a step that skips finished outputs reuses one only when it was made with the
settings asked for now (recorded beside it); otherwise it makes it again and says why. An output
folder that is the source folder is refused before any work."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ava_detect import reuse
from ava_detect.cli import main
from ava_detect.data.video import probe_video

from test_data_prep import make_raw_movie


def _prep(capsys, *args) -> tuple:
    capsys.readouterr()
    code = main(["prep", *args, "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def raw(tmp_path) -> Path:
    folder = tmp_path / "raw"
    folder.mkdir()
    make_raw_movie(folder / "movieA.mkv", last=902)
    return folder


# ---- the record -----------------------------------------------------------------------------


def test_the_record_says_which_settings_differ(tmp_path):
    out = tmp_path / "a.mp4"
    assert reuse.why_not_reusable(out, {"end": 1801}) == "missing"
    out.write_bytes(b"video")
    assert reuse.why_not_reusable(out, {"end": 1801}) == "no record of the settings it was made with"
    reuse.record(out, {"end": 1801, "short_side": 0, "preset": "fast"})
    assert reuse.why_not_reusable(out, {"end": 1801, "short_side": 0, "preset": "fast"}) is None
    assert reuse.why_not_reusable(out, {"end": 1000, "short_side": 320, "preset": "fast"}) == \
        "end 1801 -> 1000, short_side 0 -> 320"
    assert reuse.why_not_reusable(out, {"end": 1801, "short_side": 0, "preset": "fast", "crf": 20}) == \
        "crf (none) -> 20"
    reuse.forget(out)
    assert not reuse.record_path(out).exists() and reuse.recorded(out) is None


def test_a_damaged_record_is_no_record(tmp_path):
    out = tmp_path / "a.mp4"
    out.write_bytes(b"video")
    reuse.record_path(out).write_text("{not json")
    assert reuse.why_not_reusable(out, {"end": 1801}) == "no record of the settings it was made with"


# ---- prep videos ----------------------------------------------------------------------------


@pytest.mark.parametrize("flag, value, changed", [
    ("--end-second", "901", "end 902.0 -> 901.0"),
    ("--short-side", "48", "short_side 0 -> 48"),
    ("--start-second", "900.5", "start 900.0 -> 900.5"),
    ("--crf", "30", "crf 20 -> 30"),
    ("--gop", "4", "gop 16 -> 4"),
])
def test_prep_videos_with_other_settings_cuts_again_and_says_why(raw, tmp_path, capsys, flag, value, changed):
    out = tmp_path / "videos"
    base = ["videos", "--src", str(raw), "--out", str(out), "--end-second", "902"]
    assert _prep(capsys, *base)[0] == 0
    first = probe_video(out / "movieA.mp4")
    code, text, _ = _prep(capsys, *base, flag, value)
    assert code == 0 and "0 already prepared, 1 to cut" in text and changed in text, text
    assert reuse.recorded(out / "movieA.mp4")[changed.split()[0]] == json.loads(changed.split()[-1])
    if flag == "--end-second":
        assert probe_video(out / "movieA.mp4").num_frames == 30 and first.num_frames == 60
    if flag == "--short-side":
        assert probe_video(out / "movieA.mp4").height == 48 and first.height == 96
    code, text, _ = _prep(capsys, *base, flag, value)  # the same settings again: reused
    assert code == 0 and "1 already prepared, 0 to cut" in text


def test_prep_videos_recuts_an_output_without_a_record_or_from_another_source(raw, tmp_path, capsys):
    out = tmp_path / "videos"
    args = ["videos", "--src", str(raw), "--out", str(out)]
    assert _prep(capsys, *args)[0] == 0
    reuse.forget(out / "movieA.mp4")  # e.g. killed between the video and its record, or an earlier version
    code, text, _ = _prep(capsys, *args)
    assert code == 0 and "1 to cut" in text and "no record of the settings" in text
    make_raw_movie(raw / "movieA.mkv", last=903)  # the source movie replaced by another
    code, text, _ = _prep(capsys, *args)
    assert code == 0 and "1 to cut" in text and "source_bytes" in text
    assert "1 already prepared" in _prep(capsys, *args)[1]


def test_prep_videos_refuses_the_source_folder_as_output_by_any_path(raw, tmp_path, capsys):
    link = tmp_path / "link"
    link.symlink_to(raw, target_is_directory=True)
    for out in (raw, link, raw / ".", raw / ".." / "raw", Path(os.path.relpath(raw))):
        code, _, err = _prep(capsys, "videos", "--src", str(raw), "--out", str(out))
        assert code == 2 and err.count("\n") == 1 and "--out is the source folder" in err, (out, err)
    assert sorted(p.name for p in raw.iterdir()) == ["movieA.mkv"]


def test_prep_videos_output_folder_inside_the_source_is_not_read_as_movies(raw, capsys):
    out = raw / "prepared"
    assert _prep(capsys, "videos", "--src", str(raw), "--out", str(out))[0] == 0
    code, text, _ = _prep(capsys, "videos", "--src", str(raw), "--out", str(out))
    assert code == 0 and "1 movies: 1 already prepared" in text


# ---- prep frames ----------------------------------------------------------------------------


def test_prep_frames_extracts_again_for_another_qscale_or_a_new_video(raw, tmp_path, capsys):
    root = tmp_path / "ds"
    assert _prep(capsys, "videos", "--src", str(raw), "--out", str(root / "videos"), "--end-second", "901")[0] == 0
    frame = root / "frames" / "movieA" / "movieA_000001.jpg"
    assert _prep(capsys, "frames", "--root", str(root))[0] == 0
    best = frame.read_bytes()
    code, text, _ = _prep(capsys, "frames", "--root", str(root))
    assert code == 0 and "1 already extracted, 0 to extract" in text
    code, text, _ = _prep(capsys, "frames", "--root", str(root), "--qscale", "31")
    assert code == 0 and "0 already extracted, 1 to extract" in text and "qscale 1 -> 31" in text
    assert frame.read_bytes() != best  # another quantiser: the folder was made again
    assert sorted(p.name for p in (root / "frames").iterdir()) == [".movieA.settings.json", "movieA"]
    # the video prepared again at another size: its frames are stale
    assert _prep(capsys, "videos", "--src", str(raw), "--out", str(root / "videos"), "--end-second", "901",
                 "--short-side", "48")[0] == 0
    code, text, _ = _prep(capsys, "frames", "--root", str(root), "--qscale", "31")
    assert code == 0 and "1 to extract" in text and "video_bytes" in text
    from PIL import Image

    with Image.open(frame) as image:
        assert image.height == 48


# ---- detect's resumable parts ---------------------------------------------------------------


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    from ava_detect.synthetic import make_synthetic_dataset

    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic_dataset(root, seed=5, num_videos=2, seconds=6, size=(96, 72))
    return root


def _interrupted_detect(monkeypatch, args) -> Path:
    """Run ``detect`` until it has finished its first video, then interrupt it."""
    from ava_detect.detection import keyframes

    real = keyframes.detect_keyframes
    calls = []

    def interrupted(path, **kw):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(path, **kw)

    monkeypatch.setattr(keyframes, "detect_keyframes", interrupted)
    assert main(args) == 130
    monkeypatch.setattr(keyframes, "detect_keyframes", real)


def test_detect_rerun_with_other_seconds_does_not_mix_parts(clips, tmp_path, monkeypatch, capsys):
    out = tmp_path / "boxes.csv"
    gt = clips / "annotations" / "val.csv"
    common = ["detect", "--videos", str(clips / "videos"), "--out", str(out), "--detector", "csv",
              "--boxes", str(clips / "annotations" / "train.csv"), "--device", "cpu"]
    _interrupted_detect(monkeypatch, [*common, "--seconds", "902-903"])
    assert (tmp_path / ".boxes.csv.parts").is_dir()
    capsys.readouterr()
    assert main([*common, "--seconds", "903-904"]) == 0
    captured = capsys.readouterr()
    assert "resuming" not in captured.out and "other settings (seconds)" in captured.err, captured
    from ava_detect.data.ava_files import read_predicted_boxes

    assert set(read_predicted_boxes(out)["second"]) <= {903, 904} and gt.is_file()


def test_detect_rerun_detects_a_changed_video_again(clips, tmp_path, monkeypatch, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    for v in sorted((clips / "videos").glob("*.mp4")):
        (videos / v.name).write_bytes(v.read_bytes())
    out = tmp_path / "boxes.csv"
    args = ["detect", "--videos", str(videos), "--out", str(out), "--detector", "csv", "--seconds", "902-903",
            "--boxes", str(clips / "annotations" / "train.csv"), "--device", "cpu"]
    _interrupted_detect(monkeypatch, args)
    first = sorted(videos.glob("*.mp4"))[0]
    os.utime(first, ns=(first.stat().st_atime_ns, first.stat().st_mtime_ns + 10**9))  # the video replaced
    capsys.readouterr()
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "resuming" not in captured.out and f"{first}: changed since" in captured.err, captured


def test_detect_rerun_with_another_box_file_starts_over(clips, tmp_path, monkeypatch, capsys):
    out = tmp_path / "boxes.csv"
    boxes = tmp_path / "in.csv"
    boxes.write_bytes((clips / "annotations" / "train.csv").read_bytes())
    args = ["detect", "--videos", str(clips / "videos"), "--out", str(out), "--detector", "csv", "--seconds",
            "902-903", "--boxes", str(boxes), "--device", "cpu"]
    _interrupted_detect(monkeypatch, args)
    boxes.write_bytes((clips / "annotations" / "val.csv").read_bytes())  # same name, other contents
    capsys.readouterr()
    assert main(args) == 0 and "resuming" not in capsys.readouterr().out


# ---- quickstart's training --------------------------------------------------------------------


def test_quickstart_trains_again_when_the_checkpoint_has_other_settings(tmp_path, capsys):
    import torch

    from ava_detect.commands.quickstart import _training_to_reuse, recipe_path
    from ava_detect.config import config_to_dict, load_config
    from ava_detect.engine.checkpointing import save_training_checkpoint

    def cfg(*extra):
        return load_config(recipe_path(), ["train.epochs=4", *extra])

    ckpt = tmp_path / "checkpoints"
    assert _training_to_reuse(ckpt, cfg()) == (False, False)
    ckpt.mkdir()
    save_training_checkpoint(ckpt / "last.pth", {"model": {"w": torch.zeros(1)}, "optimizer": {}, "epoch": 4,
                                                 "iteration": 40, "rng": {}, "config": config_to_dict(cfg())})
    assert _training_to_reuse(ckpt, cfg()) == (True, True)  # finished, same settings: reused
    assert _training_to_reuse(ckpt, cfg("train.epochs=6", "data.num_workers=0")) == (True, False)  # longer: resumed
    assert ckpt.is_dir()
    capsys.readouterr()
    assert _training_to_reuse(ckpt, cfg("train.base_lr=0.3")) == (False, False)
    assert "train.base_lr: 0.2 -> 0.3" in capsys.readouterr().out and not ckpt.exists()
