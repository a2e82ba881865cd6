"""Video ids are names, never paths: a row whose id could leave the dataset folder (``../x``,
``a/b``, an absolute path), is empty, or holds a control character, comma or quote is an error
naming the file and the line, in every reader (one check)."""

from __future__ import annotations


import pytest

from common import FIXTURES
from ava_detect.cli import main
from ava_detect.data import ava_files as af
from ava_detect.errors import AvaDetectError

EXCERPT = FIXTURES / "eval" / "ava_val_excerpt"



# (id as written in a CSV cell, what the message says)
BAD_IDS = [
    ("../../x", "is a path"),
    ("..", "is a path"),
    (".", "is a path"),
    ("a/b", "is a path"),
    ("/etc/passwd", "is a path"),
    ("..\\\\windows", "is a path"),
    ('"a,b"', "a comma"),
    ('"a""b"', "a double quote"),
    ("a\tb", "control character"),
    ("a\x1bb", "control character"),
    ('" "', "empty"),
]
GOOD_IDS = ["-5KQ66BBWC4", "_a9SWtcaNj8", "my clip 2", "a.b", "...", "été", "x-y_z(1)"]

GT_ROW = "{v},0902,0.1,0.1,0.5,0.5,12,0\n"
PRED_ROW = "{v},0902,0.1,0.1,0.5,0.5,,0.9\n"
DET_ROW = "{v},0902,0.1,0.1,0.5,0.5,12,0.9\n"


def _file(tmp_path, name, first, row, bad):
    p = tmp_path / name
    p.write_text(first.format(v="ok") + first.format(v="ok2") + row.format(v=bad), encoding="utf-8")
    return p


@pytest.mark.parametrize("bad,fragment", BAD_IDS, ids=[b[0] for b in BAD_IDS])
def test_box_csv_readers_refuse_path_like_ids_with_file_and_line(tmp_path, bad, fragment):
    for reader, row in ((af.read_ground_truth, GT_ROW), (af.read_predicted_boxes, PRED_ROW),
                        (af.read_detections, DET_ROW)):
        p = _file(tmp_path, "rows.csv", row, row, bad)
        with pytest.raises(AvaDetectError) as e:
            reader(p)
        assert (e.value.path, e.value.line) == (str(p), 3) and fragment in e.value.message, str(e.value)


@pytest.mark.parametrize("bad,fragment", BAD_IDS, ids=[b[0] for b in BAD_IDS])
def test_exclusions_refuse_path_like_ids(tmp_path, bad, fragment):
    p = _file(tmp_path, "ex.csv", "{v},0902\n", "{v},0903\n", bad)
    with pytest.raises(AvaDetectError) as e:
        af.read_exclusions(p)
    assert (e.value.path, e.value.line) == (str(p), 3) and fragment in e.value.message, str(e.value)


@pytest.mark.parametrize("bad", ["../x", "/abs", "..", "a\\b", "a,b", 'a"b'])
def test_frame_list_and_video_list_refuse_path_like_ids(tmp_path, bad):
    frames = tmp_path / "frames.csv"
    frames.write_text(f"original_vido_id video_id frame_id path labels\nok 0 0 ok/ok_000001.jpg \"\"\n"
                      f"{bad} 1 0 x/x_000001.jpg \"\"\n")
    with pytest.raises(AvaDetectError) as e:
        af.read_frame_list(frames)
    assert (e.value.path, e.value.line) == (str(frames), 3)
    if bad in ("a\\b", 'a"b'):  # ("..".mkv is the name "...mkv"; "/" and "," have their own message)
        videos = tmp_path / "list.txt"
        videos.write_text(f"ok.mkv\n{bad}.mkv\n")
        with pytest.raises(AvaDetectError) as e:
            af.read_video_list(videos)
        assert (e.value.path, e.value.line) == (str(videos), 2)


def test_names_that_look_odd_but_are_names_are_accepted(tmp_path):
    p = tmp_path / "gt.csv"
    p.write_text("".join(GT_ROW.format(v=v) for v in GOOD_IDS), encoding="utf-8")
    assert sorted(af.read_ground_truth(p)["video_id"].astype(str)) == sorted(GOOD_IDS)
    ex = tmp_path / "ex.csv"
    ex.write_text("".join(f"{v},0902\n" for v in GOOD_IDS), encoding="utf-8")
    assert len(af.read_exclusions(ex)) == len(GOOD_IDS)


def test_eval_refuses_an_escaping_id_in_one_line(tmp_path, capsys):
    gt = tmp_path / "gt.csv"
    gt.write_text((EXCERPT / "gt.csv").read_text() + GT_ROW.format(v="../../../etc/x"))
    line = gt.read_text().count("\n")
    out = tmp_path / "r.json"
    rc = main(["eval", "--gt", str(gt), "--pred", str(EXCERPT / "pred.csv"), "--json", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and f"{gt}:{line}:" in err[0] and "is a path" in err[0]
    assert not out.exists()


def test_prep_annotations_never_looks_outside_the_dataset(tmp_path, capsys):
    root = tmp_path / "data"
    (root / "annotations").mkdir(parents=True)
    (root / "videos").mkdir()
    outside = tmp_path / "secret.mp4"
    outside.write_bytes(b"not a video")
    (root / "annotations" / "val.csv").write_text(GT_ROW.format(v="ok") + GT_ROW.format(v="../../secret"))
    (root / "annotations" / "val_predicted_boxes.csv").write_text(PRED_ROW.format(v="ok"))
    rc = main(["prep", "annotations", "--split", "val", "--root", str(root)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "val.csv:2:" in err[0] and "is a path" in err[0], err
    assert sorted(p.name for p in (root / "annotations").iterdir()) == ["val.csv", "val_predicted_boxes.csv"]
