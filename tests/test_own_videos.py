"""Your own videos: the time axis as the dataset's setting, CVAT exports imported as a dataset
(``prep import``), bad exports refused, and the README's worked example (``prep cvat-example`` ->
import -> train -> test -> annotate) in a short version."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from common import CPU, LEARNING_MARGIN, chance_map, cli_error, folder_state
from cvat_inputs import HOSTILE, write_good_export, write_hostile_exports

from ava_detect.cli import main
from ava_detect.config import load_config
from ava_detect.data.ava_files import read_ground_truth, read_labelmap
from ava_detect.data.layout import DatasetLayout
from ava_detect.data.time_axis import AVA, TimeAxis
from ava_detect.errors import AvaDetectError

ROOT = Path(__file__).resolve().parent.parent
TINY_RECIPE = ROOT / "configs" / "synthetic" / "slowfast_tiny.yaml"


# ----------------------------------------------------------------------------- the time axis


def test_ava_is_the_default_time_axis():
    cfg = load_config()
    assert TimeAxis.from_config(cfg.data) == AVA == TimeAxis(900, (902, 1798), 30)
    assert AVA.frame_index(902) == 60 and AVA.frame_index(1798) == 898 * 30
    assert AVA.is_keyframe(np.array([901, 902, 1798, 1799])).tolist() == [False, True, True, False]


def test_own_videos_start_at_zero_and_take_every_second():
    axis = TimeAxis.from_config(load_config(overrides=["data.start_second=0", "data.keyframe_range=[]",
                                                       "data.fps=25"]).data)
    assert axis == TimeAxis(0, None, 25)
    assert axis.frame_index(3) == 75 and axis.frame_index(np.array([0, 1])).tolist() == [0, 25]
    assert axis.is_keyframe(np.array([-1, 0, 5000])).tolist() == [False, True, True]


@pytest.mark.parametrize("override, says", [
    ("data.keyframe_range=[5]", "first, last"),
    ("data.keyframe_range=[10,5]", "first <= last"),
    ("data.keyframe_range=[5,10]", "before the video's start"),
])
def test_a_bad_time_axis_is_refused(override, says):
    with pytest.raises(AvaDetectError, match=re.escape(says)):
        load_config(overrides=[override])


def test_the_dataset_drops_seconds_outside_its_axis():
    from ava_detect.data.dataset import training_keyframes

    gt = pd.DataFrame({"video_id": ["v"] * 3, "second": [0, 1, 903], "x1": 0.1, "y1": 0.1, "x2": 0.5, "y2": 0.5,
                       "action_id": 1, "person_id": 0})
    assert training_keyframes(ground_truth=gt, class_ids=[1]).seconds.tolist() == [903]
    own = training_keyframes(ground_truth=gt, class_ids=[1], time_axis=TimeAxis(0, None, 30))
    assert own.seconds.tolist() == [0, 1, 903]


# ----------------------------------------------------------------------------- import


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """``prep cvat-example``: 3 synthetic videos of 6 s at 25 fps from second 0, with CVAT exports."""
    out = tmp_path_factory.mktemp("own") / "example"
    assert main(["prep", "cvat-example", "--out", str(out), "--videos", "3", "--seconds", "6", "--size", "96x72",
                 "--seed", "3"]) == 0
    return out


def _import(example: Path, out: Path, *extra: str, cvat=None) -> int:
    return main(["prep", "import", "--cvat", str(cvat or example / "cvat"), "--videos", str(example / "videos"),
                 "--out", str(out), "--config", str(TINY_RECIPE), "--detector", "csv", "--boxes",
                 str(example / "detector_boxes.csv"), "--device", "cpu", *extra])


def _ground_truth(folder: Path, shift: int = 0) -> pd.DataFrame:
    layout = DatasetLayout(folder)
    names = read_labelmap(layout.labelmap).names
    gt = pd.concat([read_ground_truth(layout.ground_truth(s)) for s in ("train", "val")], ignore_index=True)
    gt = gt.assign(second=gt["second"] - shift, action=gt["action_id"].map(names))
    return gt.sort_values(["video_id", "second", "person_id", "action"]).reset_index(drop=True)


def test_import_gives_back_the_synthetic_ground_truth(example, tmp_path, capsys):
    assert _import(example, tmp_path / "ds") == 0
    printed = capsys.readouterr().out
    assert "boxes per action" in printed and "train with: ava-detect train --config" in printed
    ours, truth = _ground_truth(tmp_path / "ds"), _ground_truth(example / "synthetic", shift=900)
    keys = ["video_id", "second", "person_id", "action"]
    assert len(ours) == len(truth) > 20
    pd.testing.assert_frame_equal(ours[keys], truth[keys])
    pixels = np.array([96, 72, 96, 72])
    error = np.abs(ours[["x1", "y1", "x2", "y2"]].to_numpy() - truth[["x1", "y1", "x2", "y2"]].to_numpy()) * pixels
    assert error.max() <= 1.0

    layout = DatasetLayout(tmp_path / "ds")
    labelmap = read_labelmap(layout.labelmap)
    assert labelmap.ids == tuple(range(1, 8))
    assert list(labelmap.names.values()) == sorted(labelmap.names.values())  # CVAT's order: the example's alphabetical
    train = set(read_ground_truth(layout.ground_truth("train"))["video_id"])
    val = set(read_ground_truth(layout.ground_truth("val"))["video_id"])
    assert train and val and not train & val  # split by video, never by keyframe
    assert layout.exclusions("val").read_text() == ""
    assert layout.frame_list("train").read_text().count("\n") > 1
    cfg = load_config(tmp_path / "ds" / "config.yaml")
    assert (cfg.model.num_classes, cfg.data.start_second, cfg.data.keyframe_range) == (7, 0, [])
    assert (tmp_path / "ds" / "import.json").is_file()


def test_the_split_is_seeded(example, tmp_path, capsys):
    splits = []
    for seed, name in ((0, "a"), (0, "b")):
        assert _import(example, tmp_path / name, "--seed", str(seed), "--val-fraction", "0.5") == 0
        splits.append(sorted(set(read_ground_truth(DatasetLayout(tmp_path / name).ground_truth("val"))["video_id"])))
    assert splits[0] == splits[1]


def test_zip_exports_import_like_xml(example, tmp_path, capsys):
    zips = tmp_path / "zips"
    zips.mkdir()
    for xml in sorted((example / "cvat").glob("*.xml")):
        with zipfile.ZipFile(zips / f"{xml.stem}.zip", "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.write(xml, "annotations.xml")
    assert _import(example, tmp_path / "from_zip", cvat=zips) == 0
    assert _import(example, tmp_path / "from_xml") == 0
    pd.testing.assert_frame_equal(_ground_truth(tmp_path / "from_zip"), _ground_truth(tmp_path / "from_xml"))


def test_keyframe_only_exports_are_interpolated(example, tmp_path, capsys):
    """Boxes of seconds 1 and 3 removed from the export: the import puts them half way between the
    neighbouring keyframes' boxes, with the attributes of the earlier one (as CVAT interpolates)."""
    source = sorted((example / "cvat").glob("*.xml"))
    sparse = tmp_path / "sparse"
    sparse.mkdir()
    for xml in source:
        text = xml.read_text(encoding="utf-8")
        # drop the (not outside) boxes at frames 25 and 75 (seconds 1 and 3 at 25 fps)
        text = re.sub(r'\s*<box frame="(25|75)" [^>]*outside="0"[^>]*>.*?</box>', "", text, flags=re.S)
        assert text != xml.read_text(encoding="utf-8")
        (sparse / xml.name).write_text(text, encoding="utf-8")
    assert _import(example, tmp_path / "dense") == 0
    assert _import(example, tmp_path / "interp", cvat=sparse) == 0
    dense, interp = _ground_truth(tmp_path / "dense"), _ground_truth(tmp_path / "interp")
    cols = ["x1", "y1", "x2", "y2"]
    checked = 0
    for second in (1, 3):
        for (video, person), rows in interp[interp["second"] == second].groupby(["video_id", "person_id"]):
            before = dense[(dense.video_id == video) & (dense.person_id == person) & (dense.second == second - 1)]
            after = dense[(dense.video_id == video) & (dense.person_id == person) & (dense.second == second + 1)]
            if before.empty or after.empty:
                continue
            expected = (before[cols].to_numpy()[0] + after[cols].to_numpy()[0]) / 2
            assert np.abs(rows[cols].to_numpy()[0] - expected).max() * 96 <= 1.0
            assert set(rows["action"]) == set(before["action"])  # the attributes in force: the earlier keyframe's
            checked += 1
    assert checked >= 3


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A prepared AVA-format synthetic video, its good export and the hostile variants."""
    from ava_detect.synthetic import make_synthetic_dataset

    work = tmp_path_factory.mktemp("hostile")
    data = work / "data"
    make_synthetic_dataset(data, seed=1, num_videos=2, seconds=6, size=(96, 72))
    layout = DatasetLayout(data)
    video = sorted(layout.videos_dir.glob("*.mp4"))[0]
    split = "val" if f"{video.stem}," in layout.ground_truth("val").read_text() else "train"
    good = write_good_export(video, layout.ground_truth(split), layout.labelmap, work / "good_export.xml")
    unreadable = work / "bad_videos" / "notes.mp4"
    unreadable.parent.mkdir()
    unreadable.write_text("not a video\n")
    one = work / "one_action.pbtxt"
    one.write_text('item {\n  name: "stand"\n  id: 1\n}\n')
    return work, layout, write_hostile_exports(good, work / "cvat", unreadable), unreadable, one


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_bad_export_is_one_error_and_writes_nothing(hostile, name, capsys):
    work, layout, cases, unreadable, one = hostile
    files, says = cases[name]
    before = folder_state(work)
    argv = ["prep", "import", "--cvat", *files, "--videos", layout.videos_dir, unreadable, "--out", work / "out",
            "--config", TINY_RECIPE, "--detector", "csv", "--boxes", layout.predicted_boxes("val"), "--device", "cpu"]
    if "label map" in name:
        argv += ["--labelmap", one]
    line = cli_error(capsys, *argv)
    assert re.search(says, line, re.I), line
    assert folder_state(work) == before


# ----------------------------------------------------------------------------- the worked example


def test_worked_example_learns(quickstart_run, tmp_path, capsys):
    """The README's "Train on your own videos", short: CVAT exports of 6 synthetic videos at 25 fps
    from second 0, imported, fine-tuned from the quickstart's model (its actions found by name in the
    imported label map), tested well above chance, and a video annotated."""
    ex, ds = tmp_path / "example", tmp_path / "dataset"
    assert main(["prep", "cvat-example", "--out", str(ex), "--videos", "6", "--seconds", "10", "--size", "160x120",
                 "--seed", "5"]) == 0
    assert _import(ex, ds, "--val-fraction", "0.34") == 0
    capsys.readouterr()
    pretrained = quickstart_run / "train" / "checkpoints" / "last.pth"
    overrides = [f"train.weights={pretrained}", "train.epochs=3", "train.base_lr=0.02", "train.warmup_epochs=0",
                 "train.eval_period=0", "train.checkpoint_period=0", *CPU]
    assert main(["train", "--config", str(ds / "config.yaml"), *overrides]) == 0
    printed = capsys.readouterr().out
    # the imported label map orders the actions alphabetically, the quickstart's by AVA id: rows move by name
    assert "7 start from the" in printed and re.search(r"stand: file id 12 -> column 5", printed), printed
    weights = ds / "runs" / "train" / "checkpoints" / "last.pth"
    assert main(["test", "--config", str(ds / "config.yaml"), "--weights", str(weights), "--no-progress", *CPU]) == 0
    report = json.loads((ds / "runs" / "test" / "report.json").read_text())
    learned = report["mAP"]
    chance, spread = chance_map(load_config(ds / "config.yaml", CPU))
    print(f"worked example: val mAP {learned:.3f}, chance {chance:.3f} +- {spread:.3f}")
    assert learned > chance + max(LEARNING_MARGIN, 4 * spread), (learned, chance, spread)

    video = sorted((ex / "videos").glob("*.mp4"))[0]
    assert main(["annotate", str(video), "--config", str(ds / "config.yaml"), "--weights", str(weights),
                 "--detector", "csv", "--boxes", str(ex / "detector_boxes.csv"), "--out", str(tmp_path / "a.mp4"),
                 "--csv", str(tmp_path / "a.csv"), "--device", "cpu"]) == 0
    rows = (tmp_path / "a.csv").read_text().splitlines()
    assert rows and all(row.split(",")[0] == video.stem and int(row.split(",")[1]) < 10 for row in rows)
