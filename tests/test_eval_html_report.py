"""The evaluation report page: its numbers (from the evaluator's own matching), thumbnails, the
``eval --html`` command and its bad input, and the page itself in a real headless Chromium."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from ava_detect.cli import main
from ava_detect.data.constants import labelmap_80_path
from ava_detect.evaluation.analysis import FP_KINDS, analyse
from ava_detect.evaluation.frame_map import (BoxRows, average_precision, frame_map, frame_map_matching, load_labelmap,
                                             read_inputs)

from chromium import Chromium, chromium_or_skip, find_chromium
from common import FIXTURES, subprocess_env

EXCERPT = FIXTURES / "eval" / "ava_val_excerpt"
TOL = 1e-12


def _matching(gt_path, pred_path, labelmap=None, protocol="activitynet", exclusions=None):
    gt, det, ex = read_inputs(gt_path=gt_path, pred_path=pred_path, exclusions_path=exclusions)
    return frame_map_matching(gt=gt, detections=det, labelmap=load_labelmap(labelmap), protocol=protocol,
                              excluded_keys=ex)


# --------------------------------------------------------------------------------------
# The analysis: the evaluator's matching, not a second evaluator
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["activitynet", "pyslowfast"])
def test_matching_reproduces_frame_map_and_each_class_ap(protocol):
    m = _matching(EXCERPT / "gt.csv", EXCERPT / "pred.csv", labelmap_80_path(), protocol)
    gt, det, ex = read_inputs(gt_path=EXCERPT / "gt.csv", pred_path=EXCERPT / "pred.csv")
    plain = frame_map(gt=gt, detections=det, labelmap=load_labelmap(labelmap_80_path()), protocol=protocol)
    assert m.result.mAP == plain.mAP
    scores = m.detections.scores[m.order]
    for c, cid in enumerate(m.class_ids.tolist()):
        mine = m.det_class == c
        n_gt = int((m.gt_class == c).sum())
        if n_gt:
            ap, _, _ = average_precision(scores[mine], m.tp[mine], n_gt)
            assert abs(ap - plain.per_class_ap[cid]) <= TOL
        # a true positive took the ground-truth box of its class at its key, with IoU >= 0.5
        for i in np.flatnonzero(mine & m.tp)[:5]:
            g, r = m.best_gt[i], m.order[i]
            assert m.gt_class[g] == c and m.gt.keys[g] == m.detections.keys[r]
    assert len(np.unique(m.best_gt[m.tp])) == int(m.tp.sum())  # each box taken once


def _brute_best_f1(scores, tp, n_gt):
    best = (-1.0, None)
    for t in sorted(set(scores.tolist()), reverse=True):
        kept = scores >= t
        n_tp = int(tp[kept].sum())
        if n_tp == 0:
            continue
        p, r = n_tp / int(kept.sum()), n_tp / n_gt
        f1 = 2 * p * r / (p + r)
        if f1 > best[0] + 1e-15:
            best = (f1, t)
    return best


def test_class_numbers_best_f1_and_false_positive_kinds():
    m = _matching(EXCERPT / "gt.csv", EXCERPT / "pred.csv", labelmap_80_path())
    a = analyse(m, max_examples=5)
    scores = m.detections.scores[m.order]
    checked = 0
    for c, cid in enumerate(m.class_ids.tolist()):
        ca = a.classes[cid]
        mine = m.det_class == c
        assert ca.num_det == int(mine.sum()) and ca.num_tp == int(m.tp[mine].sum())
        assert ca.num_gt == int((m.gt_class == c).sum())
        if ca.num_tp:
            f1, thr = _brute_best_f1(scores[mine], m.tp[mine], ca.num_gt)
            assert abs(ca.best_f1 - f1) <= 1e-12 and ca.threshold == thr
            checked += 1
        # kinds of false positive: exactly the false positives among the top-N detections
        top = np.sort(scores[mine])[::-1][:ca.num_gt]
        n_top = len(top)
        assert sum(ca.fp_kinds.values()) == n_top - (round(ca.top_n_precision * n_top) if n_top else 0)
        assert len(a.false_positives[cid]) <= 5 and len(a.misses[cid]) <= 5
        fp_scores = [e.score for e in a.false_positives[cid]]
        assert fp_scores == sorted(fp_scores, reverse=True)
        assert fp_scores == sorted(scores[mine & ~m.tp], reverse=True)[:len(fp_scores)]
        n_missed = ca.num_gt - ca.num_tp
        assert len(a.misses[cid]) == min(5, n_missed)
    assert checked >= 5


def _rows(gt: bool, rows):
    """BoxRows from ``(key, x1, y1, x2, y2, label, score)`` tuples."""
    a = np.array(rows, dtype=np.float64).reshape(-1, 7)
    return BoxRows(a[:, 0].astype(np.int64), a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 5].astype(np.int64), a[:, 6])


def test_false_positive_kinds_and_confusions_on_a_made_up_keyframe():
    lm = load_labelmap(labelmap_80_path())
    person_a = (0.1, 0.1, 0.4, 0.9)
    person_b = (0.6, 0.1, 0.9, 0.9)
    # keyframe 2: three more people who stand and sit, never detected (so N = 4 for both classes)
    others = [(2, 0.3 * k, 0.1, 0.3 * k + 0.2, 0.9, a, k) for k in range(3) for a in (11, 12)]
    gt = _rows(True, [(1, *person_a, 12, 1), (1, *person_a, 17, 1), (1, *person_b, 11, 2), *others])
    det = _rows(False, [
        (1, *person_a, 12, 0.9),          # stand on A: true positive
        (1, 0.12, 0.1, 0.41, 0.9, 12, 0.8),  # stand on A again: duplicate
        (1, *person_a, 11, 0.7),          # sit on A, who stands and carries: wrong action
        (1, *person_b, 12, 0.95),         # stand on B, who sits: wrong action
        (1, 0.6, 0.1, 0.9, 0.3, 11, 0.6),  # sit on a third of B: poor box
        (1, 0.45, 0.0, 0.55, 0.05, 11, 0.5),  # sit on nobody: background
        (1, *person_b, 11, 0.4),          # sit on B: true positive
    ])
    m = frame_map_matching(gt=gt, detections=det, labelmap=lm, protocol="pyslowfast")
    a = analyse(m)
    assert a.classes[12].fp_kinds == {"duplicate": 1, "wrong action": 1, "poor box": 0, "background": 0}
    assert a.classes[11].num_gt == 4
    assert a.classes[11].fp_kinds == {"duplicate": 0, "wrong action": 1, "poor box": 1, "background": 1}
    col = {int(c): i for i, c in enumerate(a.class_ids)}
    assert a.confusion[col[12], col[11]] == 1  # stand predicted on B, who sits
    assert a.confusion[col[11], col[12]] == 1 and a.confusion[col[11], col[17]] == 1  # sit on A: stand, carry
    assert int(a.confusion.sum()) == 3
    whys = {e.why.split(":")[0] for e in a.false_positives[11]}
    assert whys == {"wrong action", "poor box", "background"}
    assert a.num_persons == 5 and a.num_keyframes == 2
    assert len(a.misses[12]) == 3 and {e.why for e in a.misses[12]} == {"no detection at this keyframe"}


def test_per_video_map_is_frame_map_of_each_video(shared):
    """Per-video mAP: the evaluator run on the video's rows alone (distinct scores: no tie order)."""
    folder = shared("fixtures/eval/synthetic_a")
    gt_df = pd.read_csv(folder / "gt.csv", header=None)
    pred_df = pd.read_csv(folder / "pred.csv", header=None)
    m = _matching(folder / "gt.csv", folder / "pred.csv", None, "activitynet")
    a = analyse(m)
    videos = {v.video_id: v for v in a.videos}
    assert set(videos) >= set(gt_df[0].unique())
    for video in list(gt_df[0].unique())[:4]:
        gt, det, _ = read_inputs_from(gt_df[gt_df[0] == video], pred_df[pred_df[0] == video])
        alone = frame_map(gt=gt, detections=det, labelmap=load_labelmap(None), protocol="activitynet")
        assert abs(videos[video].mAP - alone.mAP) <= 1e-9, video
        assert videos[video].num_gt == sum(alone.num_gt.values())


def read_inputs_from(gt_df, pred_df):
    from ava_detect.evaluation.frame_map import rows_from_frames

    cols = ["video_id", "second", "x1", "y1", "x2", "y2", "action_id"]
    gt = gt_df.iloc[:, :7].set_axis(cols, axis=1)
    pred = pred_df.iloc[:, :8].set_axis(cols + ["score"], axis=1)
    return rows_from_frames(gt, pred)


# --------------------------------------------------------------------------------------
# Thumbnails
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["arm_wrestling_340x256_28fps.mp4", "carphone_176x144.mp4"])
def test_thumbnail_frames_are_the_frames_the_dataset_reads(shared, name):
    from ava_detect.data.video import read_video_frames
    from ava_detect.evaluation.thumbnails import read_frames_at

    path = shared(f"videos/{name}")
    indices = [0, 30, 61, 90, 119]
    expected = read_video_frames(path, indices, fps=30).numpy()
    got = read_frames_at(path, [i / 30 for i in indices])
    for k, i in enumerate(indices):
        assert np.array_equal(got[i / 30], expected[k]), i
    assert 3600.0 not in read_frames_at(path, [3600.0])  # past the end: left out


@pytest.fixture(scope="module")
def synthetic_eval(tmp_path_factory):
    """A small synthetic set (3 videos of 6 s at 160x120) and detections made from its predicted
    person boxes: the person's true actions score 0.35..1, the others 0..0.6 (seeded)."""
    from ava_detect.synthetic import make_synthetic_dataset

    root = tmp_path_factory.mktemp("synthetic_eval")
    make_synthetic_dataset(root / "data", seed=0, num_videos=3, seconds=6, size=(160, 120), val_fraction=0.67)
    ann = root / "data" / "annotations"
    gt = pd.read_csv(ann / "val.csv", header=None, names=["v", "s", "x1", "y1", "x2", "y2", "a", "p"])
    boxes = pd.read_csv(ann / "val_predicted_boxes.csv", header=None,
                        names=["v", "s", "x1", "y1", "x2", "y2", "a", "score"])
    classes = sorted(gt["a"].unique().tolist())
    rng = np.random.default_rng(0)
    lines = []
    for b in boxes.itertuples():
        same = gt[(gt.v == b.v) & (gt.s == b.s)]
        ih = np.maximum(0, np.minimum(same.y2, b.y2) - np.maximum(same.y1, b.y1))
        iw = np.maximum(0, np.minimum(same.x2, b.x2) - np.maximum(same.x1, b.x1))
        inter = ih * iw
        iou = inter / ((same.y2 - same.y1) * (same.x2 - same.x1) + (b.y2 - b.y1) * (b.x2 - b.x1) - inter)
        true = set(same[iou >= 0.5]["a"].tolist())
        for c in classes:
            score = rng.uniform(0.35, 1.0) if c in true else rng.uniform(0.0, 0.6)
            lines.append(f"{b.v},{b.s:04d},{b.x1:.3f},{b.y1:.3f},{b.x2:.3f},{b.y2:.3f},{c},{score:.6f}\n")
    pred = root / "pred.csv"
    pred.write_text("".join(lines))
    videos = sorted(gt["v"].unique().tolist())
    partial = root / "some_videos"  # all but the first video
    partial.mkdir()
    for v in videos[1:]:
        shutil.copy(root / "data" / "videos" / f"{v}.mp4", partial / f"{v}.mp4")
    return {"gt": ann / "val.csv", "pred": pred, "labelmap": ann / "labelmap.pbtxt", "videos": root / "data" / "videos",
            "partial": partial, "video_ids": videos, "root": root}


def test_thumbnails_of_present_videos_and_a_warning_naming_the_missing_one(synthetic_eval, tmp_path, capsys, caplog):
    s = synthetic_eval
    out = tmp_path / "new" / "folder" / "report.html"  # folders that do not exist yet
    gt_before, pred_before = s["gt"].read_bytes(), s["pred"].read_bytes()
    with caplog.at_level(logging.WARNING):
        rc = main(["eval", "--gt", str(s["gt"]), "--pred", str(s["pred"]), "--labelmap", str(s["labelmap"]),
                   "--html", str(out), "--videos", str(s["partial"]), "--max-examples", "4"])
    assert rc == 0
    printed = capsys.readouterr()
    missing = s["video_ids"][0]
    assert missing in printed.err and "not in" in printed.err  # the warning names it
    page = out.read_text()
    data = _page_data(page)
    assert any(missing in w for w in data["warnings"])
    keys = {e["key"] for ex in data["examples"].values() for kind in ("fp", "miss") for e in ex[kind]}
    assert keys
    with_thumb = {k for k in keys if k in data["thumbs"]}
    assert with_thumb == {k for k in keys if not k.startswith(missing + ",")}
    for thumb in data["thumbs"].values():
        assert thumb["src"].startswith("data:image/jpeg;base64,") and 0 < thumb["w"] <= 256 and thumb["h"] <= 192
    assert all(len(ex["fp"]) <= 4 and len(ex["miss"]) <= 4 for ex in data["examples"].values())
    assert s["gt"].read_bytes() == gt_before and s["pred"].read_bytes() == pred_before
    assert not list(out.parent.glob(".*tmp*"))


def test_thumbnail_budget_bounds_the_total(synthetic_eval):
    from ava_detect.evaluation.thumbnails import make_thumbnails

    s = synthetic_eval
    keys = [(v, sec) for v in s["video_ids"] for sec in range(902, 905)]
    full = make_thumbnails(s["videos"], keys)
    assert len(full.jpeg) == len(keys) and not full.missing_videos
    one = len(next(iter(full.jpeg.values())))
    small = make_thumbnails(s["videos"], keys, max_bytes=2 * one)
    assert 0 < len(small.jpeg) < len(keys) and small.skipped == len(keys) - len(small.jpeg)
    assert small.total_bytes < 2 * one + max(len(b) for b in full.jpeg.values())


def _page_data(page: str) -> dict:
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    return json.loads(found.group(1))


# --------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--gt", "--pred", "--exclusions", "--labelmap"])
def test_html_refuses_to_overwrite_an_input(tmp_path, capsys, flag):
    files = {"--gt": EXCERPT / "gt.csv", "--pred": EXCERPT / "pred.csv", "--exclusions": EXCERPT / "excluded.csv",
             "--labelmap": labelmap_80_path()}
    copies = {}
    for f, path in files.items():
        copies[f] = tmp_path / path.name
        shutil.copy(path, copies[f])
    before = copies[flag].read_bytes()
    args = ["eval"] + [x for f in files for x in (f, str(copies[f]))] + ["--html", str(copies[flag])]
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and flag in err, err
    assert copies[flag].read_bytes() == before


def test_missing_videos_folder_is_an_error(tmp_path, capsys):
    rc = main(["eval", "--gt", str(EXCERPT / "gt.csv"), "--pred", str(EXCERPT / "pred.csv"), "--html",
               str(tmp_path / "r.html"), "--videos", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err
    assert rc == 2 and "nowhere" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r.html").exists()


def test_html_page_content_and_no_torch(tmp_path):
    """The command with --html loads no torch, and the page holds the numbers the text report prints."""
    out = tmp_path / "r.html"
    script = (
        "import sys\nfrom ava_detect import cli\n"
        f"code = cli.main(['eval', '--gt', {str(EXCERPT / 'gt.csv')!r}, '--pred', {str(EXCERPT / 'pred.csv')!r}, "
        f"'--labelmap', {str(labelmap_80_path())!r}, '--html', {str(out)!r}])\n"
        "print('loaded:', ','.join(m for m in ('torch', 'torchvision') if m in sys.modules) or 'none')\n"
        "sys.exit(code)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=subprocess_env(),
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "loaded: none" in proc.stdout
    page = out.read_text()
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page
    assert "<link" not in page and "src=\"http" not in page
    data = _page_data(page)
    expected = {(c["protocol"], c["labelmap"], c["exclusions"]): c
                for c in json.loads((EXCERPT / "expected.json").read_text())}
    full = expected[("activitynet", "ava_action_list_v2.2.pbtxt", None)]
    official = expected[("activitynet", "ava_action_list_v2.2_for_activitynet_2019.pbtxt", None)]
    assert abs(data["headline"]["map"] - full["mAP"]) <= 1e-4
    assert abs(data["headline"]["official_60"] - official["mAP"]) <= 1e-4
    assert len(data["classes"]) == 80 and sum(c["official"] for c in data["classes"]) == 60
    for c in data["classes"]:
        ap = full["per_class_ap"][str(c["id"])]
        assert (c["ap"] is None) == (ap is None) and (ap is None or abs(c["ap"] - ap) <= 1e-4)
    assert data["protocol"] == "activitynet" and set(data["fp_kinds"]) == set(FP_KINDS)


# --------------------------------------------------------------------------------------
# In a real browser
# --------------------------------------------------------------------------------------




_ROW_ORDER = "[...document.querySelectorAll('#classes tbody tr')].map(r => r.dataset.id)"


def test_report_page_in_headless_chromium(synthetic_eval, tmp_path):
    """Loaded from disk with JavaScript on: no console errors, every image loads, sorting by AP
    reorders the table, selecting a class highlights its curve, and it fits a phone's width."""
    executable = chromium_or_skip()
    s = synthetic_eval
    out = tmp_path / "report.html"
    assert main(["eval", "--gt", str(s["gt"]), "--pred", str(s["pred"]), "--labelmap", str(s["labelmap"]),
                 "--html", str(out), "--videos", str(s["videos"])]) == 0
    data = _page_data(out.read_text())
    assert data["thumbs"], "the page should have thumbnails"
    start = time.monotonic()
    with Chromium(executable) as browser:
        browser.navigate(out.as_uri())
        assert browser.evaluate("document.body.dataset.ready") == "1"
        # every image of every class loads
        n_images = 0
        for c in data["classes"]:
            browser.evaluate(f"document.querySelector('#classes tbody tr[data-id=\"{c['id']}\"]').click()")
            assert str(c["id"]) in browser.evaluate("document.querySelector('#selname').textContent")
            images = browser.evaluate(
                "Promise.all([...document.images].map(i => i.decode().then(() => [i.naturalWidth, i.naturalHeight],"
                " () => [0, 0])))", await_promise=True)
            assert all(w > 0 and h > 0 for w, h in images), c["name"]
            n_images += len(images)
        assert n_images >= len(data["thumbs"])

        # sorting by AP reorders the rows, descending then ascending
        before = browser.evaluate(_ROW_ORDER)
        browser.evaluate("document.querySelector('#classes th[data-key=\"ap\"]').click()")
        after = browser.evaluate(_ROW_ORDER)
        aps = {str(c["id"]): c["ap"] for c in data["classes"]}
        shown = [aps[i] for i in after if aps[i] is not None]
        assert after != before and shown == sorted(shown, reverse=True)
        assert all(aps[i] is None for i in after[len(shown):])  # classes without AP last
        browser.evaluate("document.querySelector('#classes th[data-key=\"ap\"]').click()")
        shown = [aps[i] for i in browser.evaluate(_ROW_ORDER) if aps[i] is not None]
        assert shown == sorted(shown)

        # selecting a class (a click on its row) highlights its curve, and only its
        for c in [c for c in data["classes"] if c["ap"] is not None][:3]:
            browser.evaluate(f"document.querySelector('#classes tbody tr[data-id=\"{c['id']}\"]').click()")
            highlighted = browser.evaluate("[...document.querySelectorAll('#allcurves .curve.selected')].map(e => e.dataset.id)")
            assert highlighted == [str(c["id"])]
            assert browser.evaluate("document.querySelector('#classes tr.selected').dataset.id") == str(c["id"])
            assert browser.evaluate("getComputedStyle(document.querySelector('#allcurves .curve.selected')).strokeWidth") == "3px"
            assert str(c["id"]) in browser.evaluate("document.querySelector('#selname').textContent")

        # a phone's width: nothing wider than the screen except inside the scrolling tables
        browser.set_viewport(390, 844, mobile=True, scale=2)
        browser.navigate(out.as_uri())
        assert browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        assert browser.console_errors == [], browser.console_errors
    assert time.monotonic() - start < 30


def test_browser_driver_sees_console_errors_and_broken_images(tmp_path):
    """The checks above can fail: the driver reports errors and a broken image reads as width 0."""
    executable = chromium_or_skip()
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><img id="bad" src="data:image/jpeg;base64,AAAA">'
                    '<script>console.error("logged error"); throw new Error("uncaught boom");</script></body></html>')
    with Chromium(executable) as browser:
        browser.navigate(page.as_uri())
        width = browser.evaluate("document.getElementById('bad').decode().then(() => -1, () => "
                                 "document.getElementById('bad').naturalWidth)", await_promise=True)
        assert width == 0
        assert any("logged error" in e for e in browser.console_errors)
        assert any("uncaught boom" in e for e in browser.console_errors)


def test_test_command_writes_the_report_page_beside_report_json(quickstart_run):
    """``ava-detect test`` (here inside the shortened quickstart) writes report.html with the same
    numbers as report.json and thumbnails from the split's videos, and it loads cleanly."""
    out = quickstart_run / "test"
    report = json.loads((out / "report.json").read_text())
    page = (out / "report.html").read_text()
    data = _page_data(page)
    assert abs(data["headline"]["map"] - report["mAP"]) <= 1e-4
    assert {str(c["id"]): c["ap"] for c in data["classes"]} == pytest.approx(
        {k: (None if v is None else round(v, 4)) for k, v in report["per_class_ap"].items()}, abs=1e-4)
    assert data["thumbs"] and not data["warnings"]
    assert len(page.encode()) < 3_000_000
    executable = find_chromium()
    if executable is None:
        return  # the page's behaviour is checked in a browser above; this run's page needs one too
    with Chromium(executable) as browser:
        browser.navigate((out / "report.html").as_uri())
        assert browser.evaluate("document.body.dataset.ready") == "1"
        images = browser.evaluate("Promise.all([...document.images].map(i => i.decode().then(() => i.naturalWidth,"
                                  " () => 0)))", await_promise=True)
        assert images and all(w > 0 for w in images)
        assert browser.console_errors == []
