"""``ava-detect eval``: report, JSON, plots, and bad input."""

from __future__ import annotations

import json
import logging
import math

import pytest

from ava_detect.cli import main
from ava_detect.data.constants import labelmap_80_path
from ava_detect.evaluation.frame_map import evaluate_files

from common import FIXTURES

EXCERPT = FIXTURES / "eval" / "ava_val_excerpt"
TOL = 1e-12


@pytest.fixture(autouse=True)
def _restore_logging():
    """The CLI installs its own handler on the package logger; put things back afterwards."""
    logger = logging.getLogger("ava_detect")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


def _expected(protocol, labelmap_name, exclusions):
    for case in json.loads((EXCERPT / "expected.json").read_text()):
        if (case["protocol"], case["labelmap"], case["exclusions"]) == (protocol, labelmap_name, exclusions):
            return case
    raise LookupError


def test_cli_report_json_and_plots(tmp_path, capsys):
    out_json = tmp_path / "out" / "result.json"
    rc = main(["eval", "--gt", str(EXCERPT / "gt.csv"), "--pred", str(EXCERPT / "pred.csv"),
               "--labelmap", str(labelmap_80_path()), "--json", str(out_json), "--plots", str(tmp_path / "plots")])
    assert rc == 0
    text = capsys.readouterr().out
    full = _expected("activitynet", "ava_action_list_v2.2.pbtxt", None)
    official = _expected("activitynet", "ava_action_list_v2.2_for_activitynet_2019.pbtxt", None)
    assert f"frame-mAP@0.5: {100 * full['mAP']:.2f}" in text
    assert f"official 60-class frame-mAP@0.5: {100 * official['mAP']:.2f}" in text
    assert "person movement" in text and "object manipulation" in text and "person interaction" in text
    # per-class table: id, name, AP, number of ground-truth boxes (class 12 'stand': 16 rows in the excerpt)
    gt_rows = [line.split(",") for line in (EXCERPT / "gt.csv").read_text().splitlines()]
    n12 = sum(1 for r in gt_rows if r[6] == "12")
    line12 = next(line for line in text.splitlines() if line.strip().startswith("12 "))
    assert line12.split()[-1] == str(n12)
    assert f"{100 * full['per_class_ap']['12']:.2f}" in line12

    data = json.loads(out_json.read_text())
    assert data["protocol"] == "activitynet"
    assert data["labelmap"].endswith("ava_action_list_v2.2.pbtxt")
    assert abs(data["mAP"] - full["mAP"]) <= TOL
    assert abs(data["official_60_mAP"] - official["mAP"]) <= TOL
    for cid, ap in full["per_class_ap"].items():
        assert (data["per_class_ap"][cid] is None) == (ap is None)
        if ap is not None:
            assert abs(data["per_class_ap"][cid] - ap) <= TOL
    for name in ("per_class_ap.png", "precision_recall.png"):
        png = (tmp_path / "plots" / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert not [p for p in tmp_path.rglob("*.tmp*")]


def test_cli_default_labelmap_pyslowfast_and_exclusions(capsys):
    rc = main(["eval", "--gt", str(EXCERPT / "gt.csv"), "--pred", str(EXCERPT / "pred.csv"),
               "--exclusions", str(EXCERPT / "excluded.csv"), "--protocol", "pyslowfast"])
    assert rc == 0
    text = capsys.readouterr().out
    case = _expected("pyslowfast", "ava_action_list_v2.2_for_activitynet_2019.pbtxt", "excluded.csv")
    assert f"frame-mAP@0.5: {100 * case['mAP']:.2f}" in text
    assert "official 60-class" not in text  # the 60-class list is the label map itself
    assert "(60 classes)" in text


def _run_error(args, capsys):
    rc = main(["eval"] + [str(a) for a in args])
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_malformed_row_names_file_and_line(tmp_path, capsys):
    pred = tmp_path / "pred.csv"
    pred.write_text("1j20qq1JyX4,0902,0.1,0.1,0.5,0.5,12,0.9\n1j20qq1JyX4,0902,0.1,0.1,0.5\n")
    err = _run_error(["--gt", EXCERPT / "gt.csv", "--pred", pred], capsys)
    assert f"{pred}:2:" in err and "columns" in err


@pytest.mark.parametrize("score", ["nan", "inf", "-inf"])
def test_nan_or_infinite_score_is_an_error(tmp_path, capsys, score):
    pred = tmp_path / "pred.csv"
    pred.write_text(f"1j20qq1JyX4,0902,0.1,0.1,0.5,0.5,12,0.9\n1j20qq1JyX4,0903,0.1,0.1,0.5,0.5,12,{score}\n")
    err = _run_error(["--gt", EXCERPT / "gt.csv", "--pred", pred], capsys)
    assert f"{pred}:2:" in err and "finite" in err


def test_duplicate_labelmap_id_is_an_error(tmp_path, capsys):
    lm = tmp_path / "lm.pbtxt"
    lm.write_text('item {\n  name: "stand"\n  id: 12\n}\nitem {\n  name: "sit"\n  id: 12\n}\n')
    err = _run_error(["--gt", EXCERPT / "gt.csv", "--pred", EXCERPT / "pred.csv", "--labelmap", lm], capsys)
    assert f"{lm}:7:" in err and "duplicate" in err


def test_unknown_json_directory_leaves_no_partial_file(tmp_path, capsys):
    bad_pred = tmp_path / "pred.csv"
    bad_pred.write_text("1j20qq1JyX4,0902,0.1,0.1,0.5,0.5,12,high\n")
    out = tmp_path / "r.json"
    _run_error(["--gt", EXCERPT / "gt.csv", "--pred", bad_pred, "--json", out], capsys)
    assert not out.exists() and not list(tmp_path.glob(".r.*"))


def test_empty_predictions_give_zero_with_a_warning(tmp_path, caplog):
    pred = tmp_path / "pred.csv"
    pred.write_text("")
    with caplog.at_level(logging.WARNING):
        result = evaluate_files(gt_path=EXCERPT / "gt.csv", pred_path=pred)
    assert result.mAP == 0.0
    assert all(ap == 0.0 or math.isnan(ap) for ap in result.per_class_ap.values())
    assert any(not math.isnan(ap) for ap in result.per_class_ap.values())
    assert any("no detections" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_degenerate_boxes_are_dropped_with_one_counting_warning(tmp_path, caplog):
    lines = (EXCERPT / "pred.csv").read_text().splitlines()
    extra = ["1j20qq1JyX4,0902,0.500,0.100,0.500,0.900,12,0.99",  # x1 == x2
             "1j20qq1JyX4,0903,0.100,0.700,0.600,0.300,12,0.98",  # y1 > y2
             "1j20qq1JyX4,0904,0.300,0.300,0.200,0.900,17,0.97"]  # x1 > x2
    pred = tmp_path / "pred.csv"
    pred.write_text("\n".join(extra + lines) + "\n")
    with caplog.at_level(logging.WARNING):
        with_bad = evaluate_files(gt_path=EXCERPT / "gt.csv", pred_path=pred)
    clean = evaluate_files(gt_path=EXCERPT / "gt.csv", pred_path=EXCERPT / "pred.csv")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "ignored 3 detections" in warnings[0]
    for cid, ap in clean.per_class_ap.items():
        assert (math.isnan(ap) and math.isnan(with_bad.per_class_ap[cid])) or abs(ap - with_bad.per_class_ap[cid]) <= TOL


def test_eval_command_imports_neither_torch_nor_torchvision(tmp_path):
    """``ava-detect eval`` (parser building included) runs without loading torch: importing it is
    most of the command's time on a large input."""
    import os
    import subprocess
    import sys

    from common import ROOT

    out_json = tmp_path / "result.json"
    script = (
        "import sys\n"
        "from ava_detect import cli\n"
        f"code = cli.main(['eval', '--gt', {str(EXCERPT / 'gt.csv')!r}, '--pred', {str(EXCERPT / 'pred.csv')!r}, "
        f"'--exclusions', {str(EXCERPT / 'excluded.csv')!r}, '--labelmap', {str(labelmap_80_path())!r}, "
        f"'--json', {str(out_json)!r}])\n"
        "heavy = sorted(m for m in ('torch', 'torchvision') if m in sys.modules)\n"
        "print('loaded:', ','.join(heavy) or 'none')\n"
        "sys.exit(code)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "loaded: none" in proc.stdout, proc.stdout
    assert json.loads(out_json.read_text())["protocol"] == "activitynet"
