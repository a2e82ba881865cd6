"""The synthetic AVA-format dataset: layout, file formats, videos, exact boxes, determinism,
safe output, and the command line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import av
import numpy as np
import pytest

from ava_detect.data.ava_files import (
    group_boxes,
    read_exclusions,
    read_frame_list,
    read_ground_truth,
    read_labelmap,
    read_predicted_boxes,
)
from ava_detect.data.constants import labelmap_80_path
from ava_detect.errors import AvaDetectError
from ava_detect.structures import box_iou, image_key
from ava_detect.synthetic import (
    CLASS_IDS,
    IN_PROGRESS_MARKER,
    LIE,
    MOTION_IDS,
    POSE_IDS,
    RUN,
    SIT,
    STAND,
    WALK,
    iter_video_plans,
    make_synthetic_dataset,
    rasterize_figure,
    render_frame,
)

SEED, VIDEOS, SECONDS, SIZE = 3, 2, 6, (160, 120)


def _make(out: Path, seed: int = SEED, **kwargs):
    args = dict(seed=seed, num_videos=VIDEOS, seconds=SECONDS, size=SIZE)
    args.update(kwargs)
    return make_synthetic_dataset(out, **args)


def _hashes(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic") / "set"
    summary = _make(out)
    return out, summary


def _gt(out: Path, split: str):
    labelmap = read_labelmap(out / "annotations" / "labelmap.pbtxt")
    return read_ground_truth(out / "annotations" / f"{split}.csv", labelmap)


def test_layout_label_map_and_splits(dataset):
    out, summary = dataset
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["generator"] == "ava_detect.data.synthetic"
    assert meta["seed"] == SEED and meta["fps"] == 30 and meta["seconds"] == SECONDS
    assert meta["size"] == {"width": SIZE[0], "height": SIZE[1]}
    assert not (out / IN_PROGRESS_MARKER).exists()
    train, val = meta["videos"]["train"], meta["videos"]["val"]
    assert len(train) >= 1 and len(val) >= 1 and not set(train) & set(val)
    assert len(train) + len(val) == VIDEOS
    assert sorted(p.stem for p in (out / "videos").glob("*.mp4")) == sorted(train + val)
    for rel in meta["files"]:
        assert (out / rel).is_file(), rel
    assert meta["bytes"] == sum((out / rel).stat().st_size for rel in meta["files"])

    labelmap = read_labelmap(out / "annotations" / "labelmap.pbtxt")
    reference = read_labelmap(labelmap_80_path())
    assert labelmap.ids == CLASS_IDS == (7, 8, 10, 11, 12, 14, 69)
    for c in CLASS_IDS:
        assert labelmap.names[c] == reference.names[c]
        assert labelmap.types[c] == reference.types[c]
    assert [labelmap.names[c] for c in POSE_IDS] == ["stand", "sit", "lie/sleep"]
    assert [labelmap.names[c] for c in MOTION_IDS] == ["walk", "run/jog", "jump/leap", "hand wave"]
    assert {c["id"]: c["name"] for c in meta["classes"]} == labelmap.names


def test_ground_truth_rows(dataset):
    out, summary = dataset
    meta = json.loads((out / "dataset.json").read_text())
    for split in ("train", "val"):
        gt = _gt(out, split)
        assert set(gt["video_id"].astype(str)) == set(meta["videos"][split])
        # Keyframes: seconds 902 .. 900 + S - 2, one per second, in every video.
        for _, g in gt.groupby("video_id", observed=True):
            assert sorted(g["second"].unique()) == list(range(902, 900 + SECONDS - 1))
        boxes = group_boxes(gt)
        assert len(boxes) == summary.boxes[split] == meta["boxes"][split]
        # One box per person per key; 2-4 persons per video, ids 0..n-1.
        assert not boxes.duplicated(["video_id", "second", "person_id"]).any()
        for _, g in boxes.groupby("video_id", observed=True):
            ids = sorted(g["person_id"].unique())
            assert 2 <= len(ids) <= 4 and ids == list(range(len(ids)))
        for labels in boxes["labels"]:
            poses = [c for c in labels if c in POSE_IDS]
            assert len(poses) == 1, labels
            assert not (WALK in labels and RUN in labels), labels
            if poses[0] in (SIT, LIE):
                assert set(labels) <= {poses[0], 69}, labels
        counts = gt["action_id"].value_counts()
        assert {int(c): int(counts.get(c, 0)) for c in CLASS_IDS} == summary.class_counts[split]
        assert {str(c): int(counts.get(c, 0)) for c in CLASS_IDS} == meta["class_box_counts"][split]
        keys = {image_key(v, s) for v, s in zip(boxes["video_id"].astype(str), boxes["second"])}
        assert len(keys) == summary.keyframes[split]


def test_predicted_boxes_and_exclusions(dataset):
    out, summary = dataset
    for split in ("train", "val"):
        boxes = group_boxes(_gt(out, split))
        pred = read_predicted_boxes(out / "annotations" / f"{split}_predicted_boxes.csv", degenerate="error")
        assert len(pred) == summary.predicted_boxes[split]
        assert pred["score"].between(0, 1).all()
        gt_keys = {image_key(v, s) for v, s in zip(boxes["video_id"].astype(str), boxes["second"])}
        pred_keys = {image_key(v, s) for v, s in zip(pred["video_id"].astype(str), pred["second"])}
        assert pred_keys <= gt_keys
        # Most persons have a close, confident box.
        matched = 0
        for (v, s), g in boxes.groupby(["video_id", "second"], observed=True):
            p = pred[(pred["video_id"] == v) & (pred["second"] == s)]
            if len(p):
                iou = box_iou(g[["x1", "y1", "x2", "y2"]].to_numpy(), p[["x1", "y1", "x2", "y2"]].to_numpy())
                matched += int(((iou > 0.7) & (p["score"].to_numpy()[None, :] >= 0.8)).any(axis=1).sum())
        assert matched >= 0.75 * len(boxes)
        excluded = read_exclusions(out / "annotations" / f"{split}_excluded_timestamps.csv")
        assert 1 <= len(excluded) == summary.excluded[split] and excluded <= gt_keys


def test_frame_lists(dataset):
    out, summary = dataset
    for split in ("train", "val"):
        fl = read_frame_list(out / "frame_lists" / f"{split}.csv")
        videos = summary.videos[split]
        assert len(fl) == len(videos) * SECONDS * 30
        for index, vid in enumerate(videos):
            rows = fl[fl["original_vido_id"] == vid]
            assert (rows["video_id"] == index).all()
            assert rows["frame_id"].tolist() == list(range(SECONDS * 30))
            assert rows["path"].iloc[0] == f"{vid}/{vid}_000001.jpg"
            assert rows["path"].iloc[-1] == f"{vid}/{vid}_{SECONDS * 30:06d}.jpg"
        assert (fl["labels"] == '""').all()


def _decode(path: Path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        info = (stream.codec_context.name, stream.codec_context.format.name, stream.average_rate)
        frames = [(f.time, f.key_frame, f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
    return info, frames


def test_videos_are_h264_30fps_in_the_ava_time_convention(dataset):
    out, summary = dataset
    vid = summary.videos["val"][0]
    (codec, pix_fmt, rate), frames = _decode(out / "videos" / f"{vid}.mp4")
    assert (codec, pix_fmt, rate) == ("h264", "yuv420p", 30)
    assert len(frames) == SECONDS * 30
    times = np.array([t for t, _, _ in frames])
    np.testing.assert_allclose(times, np.arange(SECONDS * 30) / 30, atol=1e-3)
    keys = [i for i, (_, key, _) in enumerate(frames) if key]
    assert keys == list(range(0, SECONDS * 30, 15))
    assert frames[0][2].shape == (SIZE[1], SIZE[0], 3)
    # The background moves, and so do the figures of a non-static video: frames differ.
    assert not np.array_equal(frames[0][2], frames[45][2])


def test_boxes_frame_the_rendered_figures_exactly(dataset):
    """Each CSV box is the tight box of the figure's pixels at the keyframe: exact against the
    renderer's masks (up to the CSV's 3 decimals), and within 2 px of what the decoded video
    shows (pixels that differ from the figure-free background)."""
    out, _ = dataset
    W, H = SIZE
    boxes = {}
    for split in ("train", "val"):
        for row in group_boxes(_gt(out, split)).itertuples():
            boxes[(str(row.video_id), row.second, row.person_id)] = np.array([row.x1 * W, row.y1 * H, row.x2 * W, row.y2 * H])
    checked = 0
    for plan in iter_video_plans(SEED, VIDEOS, seconds=SECONDS, size=SIZE):
        _, frames = _decode(out / "videos" / f"{plan.video_id}.mp4")
        for second in plan.keyframe_seconds:
            index = (second - 900) * 30
            rgb, figure_boxes = render_frame(plan, index)
            background, _ = render_frame(plan, index, figures=False)
            decoded = frames[index][2].astype(np.int16)
            # The video shows the rendered frame (h264 at crf 23: small mean error).
            assert np.abs(decoded - rgb).mean() < 6
            changed = np.abs(decoded - background).max(axis=2) > 40
            masks = []
            for fig in plan.figures:
                parts, top, left = rasterize_figure(fig, index, W, H)
                mask = np.zeros((H, W), dtype=bool)
                mask[top:top + parts.shape[0], left:left + parts.shape[1]] = parts > 0
                masks.append(mask)
            for k, (fig, box) in enumerate(zip(plan.figures, figure_boxes)):
                csv_box = boxes[(plan.video_id, second, fig.person_id)]
                ys, xs = np.nonzero(masks[k])
                tight = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
                np.testing.assert_allclose(csv_box, tight, atol=0.0005 * W + 1e-6)
                np.testing.assert_array_equal(tight, box)
                # Decoded pixels: figure k's changes lie inside its box (2 px codec margin) ...
                x1, y1, x2, y2 = tight
                others = np.zeros((H, W), dtype=bool)
                for j, m in enumerate(masks):
                    if j != k:
                        others |= m
                others = _dilate(others, 3)
                near = _dilate(masks[k], 6) & changed & ~others
                ys, xs = np.nonzero(near)
                assert xs.min() >= x1 - 2 and xs.max() + 1 <= x2 + 2, (plan.video_id, second, k)
                assert ys.min() >= y1 - 2 and ys.max() + 1 <= y2 + 2, (plan.video_id, second, k)
                # ... and touch each side of it.
                inside = changed[y1:y2, x1:x2]
                assert inside[:, :2].any() and inside[:, -2:].any(), (plan.video_id, second, k)
                assert inside[:2, :].any() and inside[-2:, :].any(), (plan.video_id, second, k)
                checked += 1
    assert checked >= 2 * 3 * VIDEOS


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    out = mask.copy()
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            out |= np.roll(np.roll(mask, dy, axis=0), dx, axis=1)
    return out


def test_same_seed_same_bytes_other_seed_differs(dataset, tmp_path):
    out, _ = dataset
    again = tmp_path / "again"
    _make(again)
    reference = _hashes(out)
    assert _hashes(again) == reference
    other = tmp_path / "other"
    _make(other, seed=SEED + 1)
    other_hashes = _hashes(other)
    assert other_hashes["annotations/train.csv"] != reference["annotations/train.csv"]
    assert not set(v for k, v in other_hashes.items() if k.startswith("videos/")) & set(
        v for k, v in reference.items() if k.startswith("videos/"))


def test_refuses_a_foreign_folder_and_keeps_its_files(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(AvaDetectError, match="not empty"):
        make_synthetic_dataset(out, num_videos=2, seconds=4, size=(64, 64))
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    with pytest.raises(AvaDetectError, match="not a folder"):
        make_synthetic_dataset(out / "notes.txt", num_videos=2, seconds=4, size=(64, 64))
    make_synthetic_dataset(out, num_videos=2, seconds=4, size=(64, 64), overwrite=True)
    assert (out / "notes.txt").read_text() == "keep me"
    assert (out / "dataset.json").is_file()


@pytest.mark.parametrize("kwargs, match", [
    (dict(size=(65, 64)), "even"),
    (dict(num_videos=1), "at least 2 videos"),
    (dict(seconds=3), "seconds"),
    (dict(seed=-1), "seed"),
    (dict(val_fraction=1.0), "val_fraction"),
])
def test_bad_arguments(tmp_path, kwargs, match):
    args = dict(num_videos=2, seconds=4, size=(64, 64))
    args.update(kwargs)
    with pytest.raises(AvaDetectError, match=match):
        make_synthetic_dataset(tmp_path / "x", **args)
    assert not (tmp_path / "x").exists()


def test_interrupted_run_looks_unfinished_and_can_be_replaced(tmp_path):
    out = tmp_path / "set"
    small = dict(seed=1, num_videos=3, seconds=4, size=(64, 64))
    make_synthetic_dataset(out, **small)
    first_videos = sorted(p.name for p in (out / "videos").iterdir())

    frames = []

    def stop_in_second_video(n):
        frames.append(n)
        if sum(frames) > 4 * 30 + 30:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make_synthetic_dataset(out, **dict(small, seed=2), progress=stop_in_second_video)
    # The old set's dataset.json is gone (the folder no longer claims to be finished), the
    # marker says why, and no file is left half-written.
    assert not (out / "dataset.json").exists()
    assert (out / IN_PROGRESS_MARKER).exists()
    videos = sorted((out / "videos").iterdir())
    assert len(videos) == 1 and not videos[0].name.startswith(".")
    assert not any(p.name.startswith(".") for p in out.rglob("*") if p.name != IN_PROGRESS_MARKER)

    # A new run replaces the interrupted set; a smaller one leaves no stale videos.
    summary = make_synthetic_dataset(out, **dict(small, seed=2, num_videos=2))
    names = sorted(p.name for p in (out / "videos").iterdir())
    assert names == sorted(f"{v}.mp4" for s in ("train", "val") for v in summary.videos[s])
    assert not set(names) & set(first_videos)
    assert not (out / IN_PROGRESS_MARKER).exists()


def test_command_line(tmp_path, capsys):
    from ava_detect import cli
    from data_prep import synthetic as step

    out = tmp_path / "cli"
    rc = cli.main(["prep", "synthetic", "--out", str(out), "--videos", "2", "--seconds", "4",
                   "--size", "96x72", "--seed", "5", "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "hand wave" in text and "lie/sleep" in text and "size on disk" in text
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["seed"] == 5 and meta["size"] == {"width": 96, "height": 72}
    train = read_ground_truth(out / "annotations" / "train.csv")
    assert f"{int((train['action_id'] == STAND).sum()):>8}" in text.split("12 stand")[1].splitlines()[0]

    # The same step as a module; bad input: one line on stderr, status 2, nothing written.
    rc = step.main(["--out", str(tmp_path / "bad"), "--size", "97x72", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "even" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()
    with pytest.raises(SystemExit) as e:
        step.main(["--out", str(tmp_path / "bad"), "--size", "big"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0 and "prep" in capsys.readouterr().out
