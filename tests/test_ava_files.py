"""AVA file formats: readers, writers, and one clear error for every kind of bad row."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ava_detect.data import ava_files as af
from ava_detect.data.constants import labelmap_60_path, labelmap_80_path
from ava_detect.errors import AvaDetectError

from common import FIXTURES

EXCERPT = FIXTURES / "eval" / "ava_val_excerpt"


def write(tmp_path: Path, text: str, name: str = "f.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------- label maps


def test_packaged_labelmaps_match_shared(shared):
    for packaged, name in [(labelmap_80_path(), "ava_action_list_v2.2.pbtxt"),
                           (labelmap_60_path(), "ava_action_list_v2.2_for_activitynet_2019.pbtxt")]:
        assert packaged.read_bytes() == shared(f"ava/{name}").read_bytes()


def test_labelmap_80_dialect():
    lm = af.read_labelmap(labelmap_80_path())
    assert len(lm) == 80
    assert lm.ids == tuple(range(1, 81))
    assert lm.names[1] == "bend/bow (at the waist)"
    assert lm.names[80] == "watch (a person)"
    assert lm.types[1] == "PERSON_MOVEMENT"
    types = pd.Series(lm.types).value_counts().to_dict()
    assert types == {"PERSON_MOVEMENT": 14, "OBJECT_MANIPULATION": 49, "PERSON_INTERACTION": 17}


def test_labelmap_60_dialect():
    lm = af.read_labelmap(labelmap_60_path())
    assert len(lm) == 60
    assert lm.types == {}
    full = af.read_labelmap(labelmap_80_path())
    # the 60 evaluated classes are a subset of the 80 with the same names
    assert all(full.names[i] == lm.names[i] for i in lm.ids)
    assert 2 not in lm and 1 in lm  # "crawl" is not evaluated, "bend/bow" is


def test_labelmap_roundtrip(tmp_path):
    for source in (labelmap_80_path(), labelmap_60_path()):
        lm = af.read_labelmap(source)
        out = tmp_path / "lm.pbtxt"
        af.write_labelmap(out, lm)
        again = af.read_labelmap(out)
        assert again.ids == lm.ids and again.names == lm.names and again.types == lm.types


def test_labelmap_with_comments_and_one_line_blocks(tmp_path):
    p = write(tmp_path, '# a comment\nitem { name: "a b" id: 3 }\nitem {\n  id: 1  # trailing\n  name: "c"\n}\n',
              "lm.pbtxt")
    lm = af.read_labelmap(p)
    assert lm.ids == (3, 1) and lm.names == {3: "a b", 1: "c"}


# ----------------------------------------------------------------------------- ground truth


def test_real_ava_excerpt_counts():
    """76 rows, 21 keyframes of 1j20qq1JyX4 (0902..0922); counts derived by hand from the raw lines."""
    raw = [line.split(",") for line in (EXCERPT / "gt.csv").read_text().splitlines()]
    assert len(raw) == 76
    df = af.read_ground_truth(EXCERPT / "gt.csv", af.read_labelmap(labelmap_80_path()))
    assert len(df) == 76
    assert set(df["video_id"].astype(str)) == {"1j20qq1JyX4"}
    assert sorted(df["second"].unique()) == list(range(902, 923))
    distinct_boxes = {(r[1], r[2], r[3], r[4], r[5]) for r in raw}
    boxes = af.group_boxes(df)
    assert len(boxes) == len(distinct_boxes)
    assert sum(len(labels) for labels in boxes["labels"]) == 76
    first = boxes.iloc[0]
    assert (first["second"], first["labels"], first["person_id"]) == (902, (12, 79), 1)
    assert np.allclose(first[["x1", "y1", "x2", "y2"]].to_numpy(float), [0.002, 0.118, 0.714, 0.977])
    # per-class counts against a count of the raw rows
    expected = pd.Series([int(r[6]) for r in raw]).value_counts().sort_index()
    assert df["action_id"].value_counts().sort_index().to_dict() == expected.to_dict()


def test_seven_column_ground_truth(tmp_path):
    p = write(tmp_path, "v1,0902,0.1,0.1,0.5,0.5,12\nv1,0902,0.1,0.1,0.5,0.5,17\n")
    df = af.read_ground_truth(p)
    assert list(df["person_id"]) == [-1, -1]
    boxes = af.group_boxes(df)
    assert len(boxes) == 1 and boxes.iloc[0]["labels"] == (12, 17)


def test_duplicate_rows_are_merged(tmp_path):
    p = write(tmp_path, "v1,0902,0.1,0.1,0.5,0.5,12,0\nv1,0902,0.1,0.1,0.5,0.5,12,0\nv1,0902,0.1,0.1,0.5,0.5,14,0\n")
    df = af.read_ground_truth(p)
    assert len(df) == 2
    assert af.group_boxes(df).iloc[0]["labels"] == (12, 14)


def test_unknown_actions_are_skipped_with_one_warning(tmp_path, caplog):
    p = write(tmp_path, "v1,0902,0.1,0.1,0.5,0.5,12,0\nv1,0902,0.1,0.1,0.5,0.5,2,0\nv1,0903,0.1,0.1,0.5,0.5,2,0\n"
                        "v1,0903,0.1,0.1,0.5,0.5,99,0\n")
    lm = af.read_labelmap(labelmap_60_path())
    with caplog.at_level(logging.WARNING):
        df = af.read_ground_truth(p, lm)
    assert list(df["action_id"]) == [12]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "skipped 3 rows" in warnings[0].getMessage()


def test_coordinates_within_tolerance_are_clipped(tmp_path):
    p = write(tmp_path, "v1,0902,-0.0005,0.1,1.0009,0.5,12,0\n")
    df = af.read_ground_truth(p)
    assert df["x1"].iloc[0] == 0.0 and df["x2"].iloc[0] == 1.0


def test_video_ids_stay_strings(tmp_path):
    p = write(tmp_path, "0123,0902,0.1,0.1,0.5,0.5,12,0\n1e5,0902,0.1,0.1,0.5,0.5,12,0\n")
    df = af.read_ground_truth(p)
    assert list(df["video_id"].astype(str)) == ["0123", "1e5"]


def test_blank_lines_keep_line_numbers(tmp_path):
    p = write(tmp_path, "v1,0902,0.1,0.1,0.5,0.5,12,0\n\nv1,0903,0.1,0.1,0.5,0.5,12,0\nv1,0904,0.1,0.1,0.05,0.5,12,0\n")
    with pytest.raises(AvaDetectError) as e:
        af.read_ground_truth(p)
    assert e.value.line == 4


def test_empty_file(tmp_path):
    p = write(tmp_path, "")
    assert len(af.read_ground_truth(p)) == 0
    assert len(af.read_detections(p)) == 0


def test_ground_truth_roundtrip(tmp_path):
    df = af.read_ground_truth(EXCERPT / "gt.csv")
    out = tmp_path / "gt.csv"
    af.write_ground_truth(out, df)
    assert out.read_text() == (EXCERPT / "gt.csv").read_text()


# ----------------------------------------------------------------------------- predicted boxes, detections


def test_predicted_boxes(tmp_path):
    p = write(tmp_path, "v1,0902,0.1,0.1,0.5,0.5,,0.95\nv1,0902,0.2,0.1,0.6,0.5,,0.5\n")
    df = af.read_predicted_boxes(p)
    assert list(df["score"]) == [0.95, 0.5]
    assert "action_id" not in df.columns
    out = tmp_path / "out.csv"
    af.write_predicted_boxes(out, df)
    assert out.read_text() == "v1,0902,0.100,0.100,0.500,0.500,,0.95\nv1,0902,0.200,0.100,0.600,0.500,,0.5\n"


def test_detections_roundtrip_keeps_score_digits(tmp_path):
    df = pd.DataFrame({"video_id": ["v1", "v1"], "second": [902, 902], "x1": [0.1, 0.1], "y1": [0.1, 0.1],
                       "x2": [0.5, 0.5], "y2": [0.5, 0.5], "action_id": [1, 2],
                       "score": [0.123456789123, 0.123456788]})
    out = tmp_path / "det.csv"
    af.write_detections(out, df)
    back = af.read_detections(out)
    assert back["score"].iloc[0] != back["score"].iloc[1]  # no tie created by rounding
    assert abs(back["score"].iloc[0] - 0.123456789123) < 1e-9


def test_degenerate_detection_boxes_are_dropped_with_warning(tmp_path, caplog):
    p = write(tmp_path, "v1,0902,0.5,0.1,0.5,0.5,1,0.9\nv1,0902,0.1,0.1,0.5,0.5,1,0.9\nv1,0902,0.1,0.6,0.5,0.5,1,0.9\n")
    with caplog.at_level(logging.WARNING):
        df = af.read_detections(p)
    assert len(df) == 1
    assert any("dropped 2 rows" in r.getMessage() for r in caplog.records)


def test_exclusions(tmp_path, shared):
    keys = af.read_exclusions(EXCERPT / "excluded.csv")
    assert keys == {"1j20qq1JyX4,0910"}
    keys = af.read_exclusions(shared("fixtures/eval/synthetic_a/excluded.csv"))
    assert len(keys) == 15 and "Py4FDqVkJ3c,0902" in keys
    out = tmp_path / "ex.csv"
    af.write_exclusions(out, keys)
    assert af.read_exclusions(out) == keys


def test_frame_list_roundtrip(tmp_path):
    text = ('original_vido_id video_id frame_id path labels\n'
            '-5KQ66BBWC4 0 0 -5KQ66BBWC4/-5KQ66BBWC4_000001.jpg ""\n'
            '-5KQ66BBWC4 0 1 -5KQ66BBWC4/-5KQ66BBWC4_000002.jpg ""\n')
    p = write(tmp_path, text)
    df = af.read_frame_list(p)
    assert list(df["frame_id"]) == [0, 1] and df["path"].iloc[1] == "-5KQ66BBWC4/-5KQ66BBWC4_000002.jpg"
    out = tmp_path / "out.csv"
    af.write_frame_list(out, df)
    assert out.read_text() == text


def test_video_list(tmp_path):
    p = write(tmp_path, "-5KQ66BBWC4.mkv\n053oq2xB3oU.mkv\n\n", "names.txt")
    assert af.read_video_list(p) == {"-5KQ66BBWC4": "-5KQ66BBWC4.mkv", "053oq2xB3oU": "053oq2xB3oU.mkv"}


# ----------------------------------------------------------------------------- bad input

GOOD = "v1,0902,0.1,0.1,0.5,0.5,12,0\n"

BAD_GT_ROWS = [
    ("too few columns", "v1,0902,0.1,0.1,0.5,0.5\n", "columns"),
    ("too many columns", "v1,0902,0.1,0.1,0.5,0.5,12,0,7\n", "columns"),
    ("non-number coordinate", "v1,0902,0.1,abc,0.5,0.5,12,0\n", "not a number"),
    ("coordinate above 1", "v1,0902,0.1,0.1,1.2,0.5,12,0\n", "[0, 1]"),
    ("negative coordinate", "v1,0902,-0.01,0.1,0.5,0.5,12,0\n", "[0, 1]"),
    ("x2 <= x1", "v1,0902,0.5,0.1,0.4,0.5,12,0\n", "x2 > x1"),
    ("y2 == y1", "v1,0902,0.1,0.5,0.4,0.5,12,0\n", "y2 > y1"),
    ("fractional timestamp", "v1,0902.5,0.1,0.1,0.5,0.5,12,0\n", "timestamp"),
    ("negative timestamp", "v1,-3,0.1,0.1,0.5,0.5,12,0\n", "timestamp"),
    ("text timestamp", "v1,noon,0.1,0.1,0.5,0.5,12,0\n", "not a number"),
    ("fractional action id", "v1,0902,0.1,0.1,0.5,0.5,12.5,0\n", "action id"),
    ("missing action id", "v1,0902,0.1,0.1,0.5,0.5,,0\n", "action_id"),
    ("text action id", "v1,0902,0.1,0.1,0.5,0.5,walk,0\n", "not a number"),
    ("fractional person id", "v1,0902,0.1,0.1,0.5,0.5,12,1.5\n", "person id"),
    ("empty video id", ",0902,0.1,0.1,0.5,0.5,12,0\n", "video_id"),
    ("infinite coordinate", "v1,0902,0.1,0.1,inf,0.5,12,0\n", "finite"),
    ("header line", "video_id,timestamp,x1,y1,x2,y2,action_id,person_id\n", "not a number"),
]


@pytest.mark.parametrize("name,row,expected", BAD_GT_ROWS, ids=[b[0] for b in BAD_GT_ROWS])
def test_bad_ground_truth_row(tmp_path, name, row, expected):
    # the bad row is on line 3, after two good rows
    p = write(tmp_path, row if name == "header line" else GOOD + GOOD.replace("0902", "0903") + row)
    with pytest.raises(AvaDetectError) as e:
        af.read_ground_truth(p)
    err = e.value
    assert err.path == str(p)
    assert err.line == (1 if name == "header line" else 3), str(err)
    assert expected in str(err), str(err)
    assert str(err).startswith(f"{p}:{err.line}: ")


BAD_DET_ROWS = [
    ("NaN score", "v1,0902,0.1,0.1,0.5,0.5,12,nan\n", "finite"),
    ("infinite score", "v1,0902,0.1,0.1,0.5,0.5,12,inf\n", "finite"),
    ("missing score", "v1,0902,0.1,0.1,0.5,0.5,12\n", "columns"),
    ("text score", "v1,0902,0.1,0.1,0.5,0.5,12,high\n", "not a number"),
]


@pytest.mark.parametrize("name,row,expected", BAD_DET_ROWS, ids=[b[0] for b in BAD_DET_ROWS])
def test_bad_detection_row(tmp_path, name, row, expected):
    p = write(tmp_path, "v1,0902,0.1,0.1,0.5,0.5,12,0.5\n" + row)
    with pytest.raises(AvaDetectError) as e:
        af.read_detections(p)
    assert e.value.line == 2 and expected in str(e.value), str(e.value)


def test_predicted_box_missing_score(tmp_path):
    p = write(tmp_path, "v1,0902,0.1,0.1,0.5,0.5,,0.9\nv1,0902,0.1,0.1,0.5,0.5,,\n")
    with pytest.raises(AvaDetectError) as e:
        af.read_predicted_boxes(p)
    assert e.value.line == 2 and "score" in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(AvaDetectError, match="not found"):
        af.read_ground_truth(tmp_path / "nope.csv")


def test_binary_file(tmp_path):
    p = tmp_path / "bin.csv"
    p.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(AvaDetectError):
        af.read_ground_truth(p)


BAD_LABELMAPS = [
    ("duplicate id", 'item { name: "a" id: 1 }\nitem { name: "b" id: 1 }\n', 2, "duplicate"),
    ("no id", 'item { name: "a" }\n', 1, "no 'label_id'"),
    ("non-integer id", 'item { name: "a" id: x }\n', 1, "integer"),
    ("unclosed block", 'item { name: "a" id: 1\n', 1, "not closed"),
    ("no name", "label { label_id: 4 }\n", 1, "no 'name'"),
    ("stray text", 'item { name: "a" id: 1 }\nhello\n', 2, "expected a 'label"),
    ("empty", "", None, "no classes"),
]


@pytest.mark.parametrize("name,text,line,expected", BAD_LABELMAPS, ids=[b[0] for b in BAD_LABELMAPS])
def test_bad_labelmap(tmp_path, name, text, line, expected):
    p = write(tmp_path, text, "lm.pbtxt")
    with pytest.raises(AvaDetectError) as e:
        af.read_labelmap(p)
    assert e.value.line == line and expected in str(e.value), str(e.value)


BAD_EXCLUSIONS = [
    ("three columns", "v1,0902,x\n", "2 columns"),
    ("bad timestamp", "v1,09:02\n", "timestamp"),
    ("empty video id", ",0902\n", "video id"),
]


@pytest.mark.parametrize("name,text,expected", BAD_EXCLUSIONS, ids=[b[0] for b in BAD_EXCLUSIONS])
def test_bad_exclusions(tmp_path, name, text, expected):
    p = write(tmp_path, "v1,0903\n" + text)
    with pytest.raises(AvaDetectError) as e:
        af.read_exclusions(p)
    assert e.value.line == 2 and expected in str(e.value)


def test_bad_frame_list(tmp_path):
    p = write(tmp_path, "original_vido_id video_id frame_id path labels\nv 0 x v/v_000001.jpg \"\"\n")
    with pytest.raises(AvaDetectError) as e:
        af.read_frame_list(p)
    assert e.value.line == 2
    p = write(tmp_path, "vid frame\n")
    with pytest.raises(AvaDetectError, match="header"):
        af.read_frame_list(p)


def test_writers_are_atomic(tmp_path, monkeypatch):
    """A failure while writing leaves the previous file intact and no temporary file behind."""
    out = tmp_path / "gt.csv"
    out.write_text("previous\n")
    df = af.read_ground_truth(EXCERPT / "gt.csv")
    broken = df.assign(action_id=df["action_id"].astype(object))
    broken.loc[5, "action_id"] = "oops"
    with pytest.raises(ValueError):
        af.write_ground_truth(out, broken)
    assert out.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["gt.csv"]
