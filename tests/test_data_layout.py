"""One of each: the dataset folder layout, the label-map fallbacks, and the direction of the
dependency between ``data_prep`` and ``ava_detect``."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest

from ava_detect.config import load_config
from ava_detect.data.ava_files import LabelMap, write_labelmap
from ava_detect.data.labelmaps import resolve_labelmap
from ava_detect.data.layout import DatasetLayout, resolve_data_path
from ava_detect.errors import AvaDetectError

from common import ROOT


def test_config_defaults_are_the_layout():
    d = load_config().data
    rel = DatasetLayout()
    assert d.video_dir == "videos" == rel.videos_dir.as_posix()
    assert d.frame_dir == "frames" == rel.frames_dir.as_posix()
    assert (d.train_gt, d.val_gt) == ("annotations/train.csv", "annotations/val.csv")
    assert (d.train_boxes, d.val_boxes) == ("annotations/train_predicted_boxes.csv", "annotations/val_predicted_boxes.csv")
    assert (d.train_exclusions, d.exclusions) == ("annotations/train_excluded_timestamps.csv",
                                                  "annotations/val_excluded_timestamps.csv")
    root = Path("/data/ava")
    layout = DatasetLayout(root)
    assert layout.labelmap == root / "annotations" / "labelmap.pbtxt"
    assert layout.frame_list("val") == root / "frame_lists" / "val.csv"
    assert layout.video("abc") == root / "videos" / "abc.mp4"
    assert layout.labelled_boxes("train") == root / "annotations" / "train_boxes_and_labels_include_negative.csv"
    data = SimpleNamespace(root=str(root))
    assert resolve_data_path(data, d.val_gt) == layout.ground_truth("val")
    assert resolve_data_path(data, "/elsewhere/gt.csv") == Path("/elsewhere/gt.csv")


def test_synthetic_set_is_written_in_the_layout(tmp_path):
    from ava_detect.synthetic import make_synthetic_dataset

    summary = make_synthetic_dataset(tmp_path / "set", num_videos=2, seconds=4, size=(64, 64))
    layout = DatasetLayout(tmp_path / "set")
    expected = {layout.video(v) for s in ("train", "val") for v in summary.videos[s]} | {layout.labelmap} | {
        path(s) for s in ("train", "val")
        for path in (layout.ground_truth, layout.predicted_boxes, layout.exclusions, layout.frame_list)}
    assert {tmp_path / "set" / f for f in summary.files} == expected
    assert all(p.is_file() for p in expected)


def _labelmap_file(path: Path, ids) -> Path:
    write_labelmap(path, LabelMap(ids=tuple(ids), names={i: f"class {i}" for i in ids}, types={}))
    return path


def test_resolve_labelmap_order_and_fallbacks(tmp_path):
    assert len(resolve_labelmap(kind="all")) == 80
    assert len(resolve_labelmap(None, kind="evaluated")) == 60
    (tmp_path / "annotations").mkdir()
    data = SimpleNamespace(root=str(tmp_path), labelmap="annotations/labelmap.pbtxt")
    _labelmap_file(tmp_path / "annotations" / "labelmap.pbtxt", [3, 5])
    given = _labelmap_file(tmp_path / "given.pbtxt", [7])
    # the data section's map (relative to data.root) before the packaged one, for both kinds
    assert resolve_labelmap(kind="all", data=data).ids == (3, 5)
    assert resolve_labelmap("", kind="evaluated", data=data).ids == (3, 5)
    # a file given for the step before the data section's
    assert resolve_labelmap(str(given), kind="all", data=data).ids == (7,)
    # an empty data.labelmap means the packaged one
    assert len(resolve_labelmap(kind="evaluated", data=SimpleNamespace(root="", labelmap=""))) == 60
    with pytest.raises(AvaDetectError, match="kind"):
        resolve_labelmap(kind="some")
    with pytest.raises(AvaDetectError, match="not found"):
        resolve_labelmap(str(tmp_path / "missing.pbtxt"), kind="all")


def test_evaluator_label_map_from_the_config(tmp_path):
    """test.eval_labelmap, else data.labelmap (relative to data.root), else the official 60 classes."""
    from ava_detect.engine.inference import build_evaluator

    cfg = load_config(None, [f"data.root={tmp_path}", "data.exclusions="])
    assert len(build_evaluator(cfg).labelmap) == 60
    _labelmap_file(tmp_path / "mine.pbtxt", [1, 2, 3])
    cfg = load_config(None, [f"data.root={tmp_path}", "data.exclusions=", "data.labelmap=mine.pbtxt"])
    assert build_evaluator(cfg).labelmap.ids == (1, 2, 3)
    official = _labelmap_file(tmp_path / "official.pbtxt", [4])
    cfg = load_config(None, [f"data.root={tmp_path}", "data.exclusions=", "data.labelmap=mine.pbtxt",
                             f"test.eval_labelmap={official}"])
    assert build_evaluator(cfg).labelmap.ids == (4,)


def _imported_or_loaded_names(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("data_prep"):
            yield node.value  # a module name given to importlib


def test_ava_detect_never_imports_data_prep():
    offenders = [
        f"{p.relative_to(ROOT)}: {name}"
        for p in sorted((ROOT / "ava_detect").rglob("*.py"))
        for name in _imported_or_loaded_names(p)
        if name == "data_prep" or name.startswith("data_prep.")
    ]
    assert offenders == []
    # and data_prep's modules are entry points over ava_detect, nothing more
    for p in sorted((ROOT / "data_prep").glob("*.py")):
        assert len(p.read_text(encoding="utf-8").splitlines()) < 30, p
