"""Every CSV we write is read back unchanged by our readers and by Python's ``csv`` module (what
the official AVA evaluator uses). Video ids that a CSV cell cannot hold unquoted (comma, quote,
newline) or that are not names are refused by the writer before anything is written."""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest

from ava_detect.annotate.labels import LabelPolicy
from ava_detect.annotate.results import ResultWriter
from ava_detect.data import ava_files as af
from ava_detect.errors import AvaDetectError

ODD_BUT_VALID = ["-5KQ66BBWC4", "my clip 2", "été", "a.b", "x(1)'s", "tab-free;semi"]
UNWRITABLE = ["a,b", 'say "hi"', "two\nlines", "cr\rhere", "../up", "a/b", " lead", "trail ", "", "nul\x00"]


def _rows(ids):
    n = len(ids)
    return pd.DataFrame({
        "video_id": ids, "second": np.arange(902, 902 + n),
        "x1": np.full(n, 0.1), "y1": np.full(n, 0.2), "x2": np.full(n, 0.6), "y2": np.full(n, 0.7),
        "action_id": np.arange(1, n + 1), "person_id": np.arange(n), "score": np.linspace(0.5, 0.9, n),
    })


WRITERS = [
    ("ground truth", af.write_ground_truth, af.read_ground_truth),
    ("predicted boxes", af.write_predicted_boxes, af.read_predicted_boxes),
    ("detections", af.write_detections, af.read_detections),
]


@pytest.mark.parametrize("name,write,read", WRITERS, ids=[w[0] for w in WRITERS])
def test_box_csvs_round_trip_through_our_readers_and_the_csv_module(tmp_path, name, write, read):
    p = tmp_path / "out.csv"
    write(p, _rows(ODD_BUT_VALID))
    back = read(p)
    assert list(back["video_id"].astype(str)) == ODD_BUT_VALID
    with open(p, newline="", encoding="utf-8") as f:
        cells = list(csv.reader(f))
    assert [c[0] for c in cells] == ODD_BUT_VALID and {len(c) for c in cells} <= {7, 8}


@pytest.mark.parametrize("name,write,read", WRITERS, ids=[w[0] for w in WRITERS])
@pytest.mark.parametrize("bad", UNWRITABLE, ids=[repr(b) for b in UNWRITABLE])
def test_box_writers_refuse_unwritable_ids_before_writing(tmp_path, name, write, read, bad):
    p = tmp_path / "out.csv"
    p.write_text("previous content\n")
    with pytest.raises(AvaDetectError, match="cannot write") as e:
        write(p, _rows(["fine", bad]))
    assert e.value.path == str(p) and "\n" not in str(e.value)
    assert p.read_text() == "previous content\n"  # untouched, no temporary file left
    assert [q.name for q in tmp_path.iterdir()] == ["out.csv"]


def test_exclusions_round_trip_and_refuse_bad_keys(tmp_path):
    p = tmp_path / "ex.csv"
    keys = {f"{v},0902" for v in ODD_BUT_VALID}
    af.write_exclusions(p, keys)
    assert af.read_exclusions(p) == keys
    with open(p, newline="", encoding="utf-8") as f:
        assert {",".join(row) for row in csv.reader(f)} == keys
    for bad in ("a,b", "../up", 'q"uote'):
        with pytest.raises(AvaDetectError, match="cannot write"):
            af.write_exclusions(tmp_path / "other.csv", keys | {f"{bad},0903"})
        assert not (tmp_path / "other.csv").exists()


def test_frame_list_and_video_list_round_trip_and_refuse_blanks(tmp_path):
    frames = pd.DataFrame({"original_vido_id": ["-5KQ66BBWC4", "été"], "video_id": [0, 1], "frame_id": [0, 0],
                           "path": ["-5KQ66BBWC4/-5KQ66BBWC4_000001.jpg", "été/été_000001.jpg"], "labels": ['""', '""']})
    af.write_frame_list(tmp_path / "f.csv", frames)
    assert af.read_frame_list(tmp_path / "f.csv").equals(frames)
    spaced = frames.assign(original_vido_id=["my clip", "x"])
    with pytest.raises(AvaDetectError, match="space separated"):
        af.write_frame_list(tmp_path / "g.csv", spaced)
    assert not (tmp_path / "g.csv").exists()


def _result_writer(video_id, csv_file, json_file=None):
    return ResultWriter(csv_file=csv_file, json_file=json_file, video_id=video_id, header={"video": "v"},
                        class_ids=[1, 2], names={1: "a", 2: "b"}, labels=LabelPolicy(threshold=0.1))


def test_annotate_results_round_trip_through_the_detection_reader(tmp_path):
    for video_id in ODD_BUT_VALID:
        buf = io.StringIO()
        w = _result_writer(video_id, buf)
        w.write_keyframe(time=2.0, second=902, frame=60, boxes_norm=np.array([[0.1, 0.1, 0.5, 0.6]]),
                         boxes_px=np.array([[10.0, 10.0, 50.0, 60.0]]), det_scores=np.array([0.9]),
                         person_ids=np.array([3]), probs=np.array([[0.8, 0.4]]))
        rows = list(csv.reader(io.StringIO(buf.getvalue())))
        assert [r[0] for r in rows] == [video_id, video_id]
        p = tmp_path / "annotate.csv"  # without the person-id column the rows are ``eval --pred`` input
        p.write_text("".join(",".join(r[:8]) + "\n" for r in rows), encoding="utf-8")
        assert list(af.read_detections(p)["video_id"].astype(str)) == [video_id, video_id]


@pytest.mark.parametrize("bad", ["clip,take 2", 'say "hi"', "line\nbreak"])
def test_annotate_results_refuse_an_unwritable_video_name_before_any_row(bad):
    buf = io.StringIO()
    with pytest.raises(AvaDetectError, match="rename the video"):
        _result_writer(bad, buf)
    assert buf.getvalue() == ""
    _result_writer(bad, None, io.StringIO())  # JSON alone holds any name
