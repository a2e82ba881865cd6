"""The vectorised evaluator against a line-by-line port of the reference algorithms.

The port (``tests/reference_port.py``) follows the reference code paths literally (the official script's ``read_csv``
with its heap, dicts of keys in insertion order, the per-image and per-class loops of
``per_image_evaluation``, ``np.argmax`` matching and ``metrics.compute_precision_recall``), on
seeded files built to hit every tie rule: 2-decimal scores (many equal scores), more than 50
detections per key, duplicate rows, degenerate boxes, detection-only keys, ground-truth rows
outside the label map, duplicated ground-truth boxes, excluded keys.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ava_detect.data.ava_files import read_labelmap
from ava_detect.data.constants import labelmap_60_path, labelmap_80_path
from ava_detect.evaluation.frame_map import evaluate_files
from ava_detect.evaluation.protocols import PROTOCOLS, Protocol, get_protocol
from reference_port import reference_ap

TOL = 1e-12


# ------------------------------------------------------------------ adversarial seeded files


def make_files(tmp_path, seed):
    rng = np.random.default_rng(seed)
    videos = ["vidA_xx", "vidB_yy", "0123"]
    keys = [(v, s) for v in videos for s in range(902, 902 + 12)]
    gt_lines, pred_lines = [], []
    classes = [1, 2, 3, 11, 12, 14, 17, 79, 80]  # 2 is not in the 60-class list
    for n, (v, s) in enumerate(keys):
        persons = rng.integers(0, 4)
        boxes = []
        for p in range(persons):
            x1, y1 = rng.uniform(0, 0.5, 2).round(2)
            box = (x1, y1, round(x1 + rng.uniform(0.2, 0.5), 2), round(y1 + rng.uniform(0.2, 0.5), 2))
            boxes.append(box)
            for a in rng.choice(classes, size=rng.integers(1, 3), replace=False):
                gt_lines.append(f"{v},{s:04d},{box[0]:.2f},{box[1]:.2f},{box[2]:.2f},{box[3]:.2f},{a},{p}")
                if rng.random() < 0.1:  # duplicated ground-truth row
                    gt_lines.append(gt_lines[-1])
        # detections: jittered GT boxes, a copy of a box (equal IoUs), random boxes, a degenerate one
        det_boxes = [tuple(np.clip(np.array(b) + rng.normal(0, 0.03, 4), 0, 1).round(2)) for b in boxes]
        det_boxes += [boxes[0]] if boxes and rng.random() < 0.3 else []
        for _ in range(rng.integers(0, 3)):
            xs, ys = np.sort(rng.uniform(0, 1, 2)).round(2), np.sort(rng.uniform(0, 1, 2)).round(2)
            det_boxes.append((xs[0], ys[0], xs[1], ys[1]))
        if rng.random() < 0.2:
            det_boxes.append((0.5, 0.2, 0.5, 0.6))  # x1 == x2
        if n % 7 == 3:  # a detection-only key
            v2, s2 = v, 1500 + n
        else:
            v2, s2 = v, s
        for b in det_boxes:
            for a in classes:
                score = round(float(rng.choice([rng.uniform(), 0.5, 0.25])), 2)
                pred_lines.append(f"{v2},{s2:04d},{b[0]:.2f},{b[1]:.2f},{b[2]:.2f},{b[3]:.2f},{a},{score:.2f}")
                if rng.random() < 0.03:  # duplicated detection row
                    pred_lines.append(pred_lines[-1])
    order = rng.permutation(len(pred_lines)) if seed % 2 else np.arange(len(pred_lines))
    pred_lines = [pred_lines[i] for i in order]  # odd seeds: keys interleaved in the file
    ex = [f"{v},{s:04d}" for v, s in [keys[1], keys[5], (videos[2], 1500 + 10)]]
    gt_path, pred_path, ex_path = tmp_path / "gt.csv", tmp_path / "pred.csv", tmp_path / "ex.csv"
    gt_path.write_text("\n".join(gt_lines) + "\n")
    pred_path.write_text("\n".join(pred_lines) + "\n")
    ex_path.write_text("\n".join(ex) + "\n")
    return gt_path, pred_path, ex_path


@pytest.mark.parametrize("protocol", ["activitynet", "pyslowfast"])
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("labelmap_name", ["60", "80"])
@pytest.mark.parametrize("use_exclusions", [True, False])
def test_matches_reference_port(tmp_path, protocol, seed, labelmap_name, use_exclusions):
    gt_path, pred_path, ex_path = make_files(tmp_path, seed)
    labelmap = read_labelmap(labelmap_60_path() if labelmap_name == "60" else labelmap_80_path())
    ex = ex_path if use_exclusions else None
    expected = reference_ap(gt_path, pred_path, ex, labelmap, protocol)
    got = evaluate_files(gt_path=gt_path, pred_path=pred_path, labelmap=labelmap, exclusions_path=ex, protocol=protocol)
    assert set(got.per_class_ap) == set(labelmap.ids)
    for cid, ap in expected.items():
        if math.isnan(ap):
            assert math.isnan(got.per_class_ap[cid]), cid
        else:
            assert abs(got.per_class_ap[cid] - ap) <= TOL, (cid, got.per_class_ap[cid], ap)
    finite = [a for a in expected.values() if not math.isnan(a)]
    assert abs(got.mAP - float(np.mean(finite))) <= TOL


#: Protocols that are neither reference's: each rule of a protocol works in any combination.
OTHER_RULES = [
    Protocol(name="uncapped_official", max_per_key=None, order="score", keys_without_gt="ignore"),
    Protocol(name="capped_file_order", max_per_key=50, order="input", keys_without_gt="false_positive"),
    Protocol(name="top3_scored_fp", max_per_key=3, order="score", keys_without_gt="false_positive"),
]


@pytest.mark.parametrize("rules", OTHER_RULES, ids=[r.name for r in OTHER_RULES])
@pytest.mark.parametrize("seed", range(4))
def test_any_combination_of_rules_matches_the_port(tmp_path, rules, seed):
    gt_path, pred_path, ex_path = make_files(tmp_path, seed)
    labelmap = read_labelmap(labelmap_80_path())
    expected = reference_ap(gt_path, pred_path, ex_path, labelmap, rules)
    got = evaluate_files(gt_path=gt_path, pred_path=pred_path, labelmap=labelmap, exclusions_path=ex_path,
                         protocol=rules)
    assert got.protocol == rules.name
    for cid, ap in expected.items():
        if math.isnan(ap):
            assert math.isnan(got.per_class_ap[cid]), cid
        else:
            assert abs(got.per_class_ap[cid] - ap) <= TOL, (cid, got.per_class_ap[cid], ap)
    # these rules give numbers of their own on these files (the test would notice a rule being ignored)
    for name in PROTOCOLS:
        assert got.mAP != evaluate_files(gt_path=gt_path, pred_path=pred_path, labelmap=labelmap,
                                         exclusions_path=ex_path, protocol=name).mAP, name


def test_protocol_table_and_unknown_name():
    from ava_detect.errors import AvaDetectError

    assert list(PROTOCOLS) == ["activitynet", "pyslowfast"]
    assert PROTOCOLS["activitynet"] == Protocol("activitynet", 50, "score", "ignore",
                                                PROTOCOLS["activitynet"].description)
    assert (PROTOCOLS["pyslowfast"].max_per_key, PROTOCOLS["pyslowfast"].order,
            PROTOCOLS["pyslowfast"].keys_without_gt) == (None, "input", "false_positive")
    with pytest.raises(AvaDetectError, match="unknown evaluation protocol 'mmaction2'"):
        get_protocol("mmaction2")
    with pytest.raises(ValueError, match="order"):
        Protocol(name="x", max_per_key=None, order="random", keys_without_gt="ignore")


def _write(tmp_path, gt_lines, pred_lines):
    (tmp_path / "gt.csv").write_text("\n".join(gt_lines) + "\n")
    (tmp_path / "pred.csv").write_text("\n".join(pred_lines) + "\n")
    return tmp_path / "gt.csv", tmp_path / "pred.csv"


def test_top50_cut_evicts_equal_scores_in_heap_order(tmp_path):
    """50 detections with score 0.5 fill the heap, then 5 with 0.9 evict five of them: the
    heap evicts the smallest (action_id, y1, ...) tuples - here the five true positives, which
    come first in the file - so AP is 0 (a cut by file order would keep them)."""
    gt = [f"v,0902,{0.1 * p:.2f},0.01,{0.1 * p + 0.1:.2f},0.50,12,{p}" for p in range(5)]
    pred = [f"v,0902,{0.1 * p:.2f},0.01,{0.1 * p + 0.1:.2f},0.50,12,0.5" for p in range(5)]
    pred += [f"v,0902,0.{p % 9 + 1}0,0.60,0.95,0.90,12,0.5" for p in range(45)]
    pred += [f"v,0902,0.0{p + 1},0.70,0.50,0.95,12,0.9" for p in range(5)]
    gt_path, pred_path = _write(tmp_path, gt, pred)
    labelmap = read_labelmap(labelmap_60_path())
    expected = reference_ap(gt_path, pred_path, None, labelmap, "activitynet")
    got = evaluate_files(gt_path=gt_path, pred_path=pred_path, labelmap=labelmap)
    assert expected[12] == 0.0
    assert got.num_detections[12] == 50
    assert abs(got.per_class_ap[12] - expected[12]) <= TOL
    # the other protocol keeps every detection: the five true positives count
    assert evaluate_files(gt_path=gt_path, pred_path=pred_path, labelmap=labelmap,
                          protocol="pyslowfast").per_class_ap[12] > 0.05


def test_equal_iou_takes_the_official_first_ground_truth_box(tmp_path):
    """A detection exactly between two ground-truth boxes (equal IoU >= 0.5) takes the first
    one in the reader's order: the official reader sorts ground-truth rows by their last column
    (person id), descending, so person 1 comes before person 0; PySlowFast keeps file order."""
    # binary fractions, so that both IoUs are exactly 7/9
    gt = ["v,0902,0.125,0.125,0.625,0.875,12,0", "v,0902,0.25,0.125,0.75,0.875,12,1"]
    pred = ["v,0902,0.1875,0.125,0.6875,0.875,12,0.9",  # IoU 7/9 with both
            "v,0902,0.25,0.125,0.75,0.875,12,0.8"]  # only person 1's box
    gt_path, pred_path = _write(tmp_path, gt, pred)
    labelmap = read_labelmap(labelmap_60_path())
    for protocol in ("activitynet", "pyslowfast"):
        expected = reference_ap(gt_path, pred_path, None, labelmap, protocol)
        got = evaluate_files(gt_path=gt_path, pred_path=pred_path, labelmap=labelmap, protocol=protocol)
        assert abs(got.per_class_ap[12] - expected[12]) <= TOL, protocol
    assert reference_ap(gt_path, pred_path, None, labelmap, "activitynet")[12] == 0.5
    assert reference_ap(gt_path, pred_path, None, labelmap, "pyslowfast")[12] == 1.0
