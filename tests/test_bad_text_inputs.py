"""One text-reading policy for every text input (CSVs, label maps, YAML, frame and video lists):
a byte-order mark and CRLF line ends are read exactly like plain UTF-8; anything else that is not
UTF-8 text, and any file that cannot be read, is one error naming the file (and the line)."""

from __future__ import annotations

import json
import logging
import os

import pytest

from common import FIXTURES
from ava_detect import text as text_policy
from ava_detect.cli import main
from ava_detect.config import load_config
from ava_detect.data import ava_files as af
from ava_detect.data.constants import labelmap_60_path, labelmap_80_path
from ava_detect.errors import AvaDetectError

EXCERPT = FIXTURES / "eval" / "ava_val_excerpt"
BOM = b"\xef\xbb\xbf"


@pytest.fixture(autouse=True)
def _restore_logging():
    logger = logging.getLogger("ava_detect")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


def _variant(tmp_path, src, name, *, bom=False, crlf=False):
    """A copy of ``src`` with a byte-order mark and / or CRLF line ends."""
    data = src.read_bytes() if hasattr(src, "read_bytes") else src
    if crlf:
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    out = tmp_path / name
    out.write_bytes((BOM if bom else b"") + data)
    return out


def _cli(args, capsys):
    rc = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    return rc, err


# ---- accepted: BOM and CRLF read exactly like plain UTF-8 -------------------------------------


def test_exclusions_with_bom_exclude_their_first_key_and_map_is_unchanged(tmp_path, capsys):
    """The silent-mAP-change bug: the first key of a BOM-marked exclusions file must be excluded."""
    ex = _variant(tmp_path, EXCERPT / "excluded.csv", "excluded.csv", bom=True, crlf=True)
    assert af.read_exclusions(ex) == af.read_exclusions(EXCERPT / "excluded.csv") == {"1j20qq1JyX4,0910"}
    expected = {c["exclusions"]: c["mAP"] for c in json.loads((EXCERPT / "expected.json").read_text())
                if c["protocol"] == "activitynet" and c["labelmap"].endswith("activitynet_2019.pbtxt")}
    assert expected["excluded.csv"] != expected[None]  # the exclusion changes mAP: the test can fail
    out = tmp_path / "result.json"
    rc = main(["eval", "--gt", str(EXCERPT / "gt.csv"), "--pred", str(EXCERPT / "pred.csv"),
               "--labelmap", str(labelmap_60_path()), "--exclusions", str(ex), "--json", str(out)])
    assert rc == 0
    assert abs(json.loads(out.read_text())["mAP"] - expected["excluded.csv"]) <= 1e-12


@pytest.mark.parametrize("bom,crlf", [(True, False), (False, True), (True, True)])
def test_box_csvs_with_bom_or_crlf_read_like_plain(tmp_path, bom, crlf):
    for reader, name in ((af.read_ground_truth, "gt.csv"), (af.read_detections, "pred.csv")):
        plain = reader(EXCERPT / name)
        marked = reader(_variant(tmp_path, EXCERPT / name, name, bom=bom, crlf=crlf))
        assert list(marked["video_id"].astype(str)) == list(plain["video_id"].astype(str))
        assert marked.drop(columns=["video_id"]).equals(plain.drop(columns=["video_id"]))


def test_label_maps_with_bom_and_crlf(tmp_path):
    for path in (labelmap_80_path(), labelmap_60_path()):
        marked = af.read_labelmap(_variant(tmp_path, path, path.name, bom=True, crlf=True))
        plain = af.read_labelmap(path)
        assert (marked.ids, marked.names, marked.types) == (plain.ids, plain.names, plain.types)


def test_config_frame_list_and_video_list_with_bom_and_crlf(tmp_path):
    cfg = _variant(tmp_path, b"train:\n  epochs: 3\nmodel:\n  resnet:\n    depth: 18\n", "c.yaml", bom=True, crlf=True)
    loaded = load_config(cfg)
    assert (loaded.train.epochs, loaded.model.resnet.depth) == (3, 18)
    frames = _variant(tmp_path, b"original_vido_id video_id frame_id path labels\nv1 0 0 v1/v1_000001.jpg \"\"\n",
                      "frames.csv", bom=True, crlf=True)
    assert list(af.read_frame_list(frames)["original_vido_id"]) == ["v1"]
    videos = _variant(tmp_path, b"-5KQ66BBWC4.mkv\nabc.mp4\n", "list.txt", bom=True, crlf=True)
    assert af.read_video_list(videos) == {"-5KQ66BBWC4": "-5KQ66BBWC4.mkv", "abc": "abc.mp4"}


def test_old_mac_line_ends_keep_line_numbers(tmp_path):
    p = tmp_path / "gt.csv"
    p.write_bytes(b"v1,0902,0.1,0.1,0.5,0.5,1\rv1,0903,0.1,0.1,0.5,0.5,1\rv1,0904,0.1,0.1,0.5,2.5,1\r")
    with pytest.raises(AvaDetectError) as e:
        af.read_ground_truth(p)
    assert e.value.line == 3


# ---- refused: one error naming the file and the line ----------------------------------------


def test_latin1_byte_in_ground_truth_names_its_line_through_the_cli(tmp_path, capsys):
    rows = (EXCERPT / "gt.csv").read_bytes().split(b"\n")
    rows[4] = rows[4].replace(b"1j20qq1JyX4", b"1j20qq1Jy\xe94")
    gt = tmp_path / "gt.csv"
    gt.write_bytes(b"\n".join(rows))
    out = tmp_path / "r.json"
    rc, err = _cli(["eval", "--gt", str(gt), "--pred", str(EXCERPT / "pred.csv"), "--json", str(out)], capsys)
    assert rc == 2 and len(err) == 1 and f"{gt}:5:" in err[0] and "0xe9" in err[0] and "UTF-8" in err[0]
    assert not out.exists()


def test_non_utf8_prediction_csv_error_has_a_line_number(tmp_path, capsys):
    pred = tmp_path / "pred.csv"
    pred.write_bytes((EXCERPT / "pred.csv").read_bytes() + b"\xff\xfe,0902,0.1,0.1,0.2,0.2,1,0.5\n")
    n = (EXCERPT / "pred.csv").read_bytes().count(b"\n") + 1
    rc, err = _cli(["eval", "--gt", str(EXCERPT / "gt.csv"), "--pred", str(pred)], capsys)
    assert rc == 2 and len(err) == 1 and f"{pred}:{n}:" in err[0]


@pytest.mark.parametrize("encoding,name", [("utf-16", "UTF-16"), ("utf-32", "UTF-32")])
def test_utf16_and_utf32_files_are_named_as_such(tmp_path, encoding, name):
    p = tmp_path / "ex.csv"
    p.write_bytes("v1,0902\n".encode(encoding))
    with pytest.raises(AvaDetectError, match=name) as e:
        af.read_exclusions(p)
    assert e.value.path == str(p) and e.value.line == 1


def test_nul_byte_is_a_binary_file_with_its_line(tmp_path):
    p = tmp_path / "lm.pbtxt"
    p.write_bytes(b'item {\n  name: "a"\n  id: 1\x00\n}\n')
    with pytest.raises(AvaDetectError, match="NUL") as e:
        af.read_labelmap(p)
    assert e.value.line == 3


def test_non_utf8_config_through_the_cli(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(b"train:\n  output_dir: r\xe9sultats\n")
    rc, err = _cli(["train", "--config", str(cfg), f"train.output_dir={tmp_path / 'run'}"], capsys)
    assert rc == 2 and len(err) == 1 and f"{cfg}:2:" in err[0] and "UTF-8" in err[0]
    assert not (tmp_path / "run").exists()


def test_folder_and_missing_file_are_one_line_naming_them(tmp_path, capsys):
    folder = tmp_path / "pred.csv"
    folder.mkdir()
    rc, err = _cli(["eval", "--gt", str(EXCERPT / "gt.csv"), "--pred", str(folder)], capsys)
    assert rc == 2 and len(err) == 1 and str(folder) in err[0] and "folder" in err[0]
    missing = tmp_path / "nope.csv"
    rc, err = _cli(["eval", "--gt", str(missing), "--pred", str(EXCERPT / "pred.csv")], capsys)
    assert rc == 2 and len(err) == 1 and str(missing) in err[0] and "not found" in err[0]


def test_permission_denied_is_one_error_naming_the_file(tmp_path, monkeypatch):
    p = tmp_path / "lm.pbtxt"
    p.write_bytes(labelmap_60_path().read_bytes())
    if os.geteuid() != 0:  # a real unreadable file where the test is not run as root
        p.chmod(0)
        try:
            with pytest.raises(AvaDetectError, match="permission denied") as e:
                af.read_labelmap(p)
            assert e.value.path == str(p)
        finally:
            p.chmod(0o644)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(text_policy, "open", denied, raising=False)
    for read in (af.read_labelmap, af.read_ground_truth, af.read_exclusions, af.read_frame_list,
                 af.read_video_list, load_config):
        with pytest.raises(AvaDetectError, match="permission denied") as e:
            read(p)
        assert e.value.path == str(p) and "\n" not in str(e.value)
