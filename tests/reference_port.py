"""A line-by-line port of the reference evaluators' algorithms (the official script's ``read_csv``
with its heap, dicts of keys in insertion order, the per-image and per-class loops of
``per_image_evaluation``, ``np.argmax`` matching and ``metrics.compute_precision_recall``), shared by
the tests that compare the vectorised evaluator with it."""

from __future__ import annotations

import csv
import heapq
import math
from collections import defaultdict

import numpy as np

from ava_detect.evaluation.protocols import get_protocol



def _key(video, second):
    return "%s,%04d" % (video, int(second))


def _read_csv(path, whitelist, capacity, with_scores, input_order=False):
    """official: capacity-limited heap, sorted by -score; pyslowfast: capacity 0 means plain lists.
    ``input_order`` (a protocol of other rules): the heap's choice, handed over in file order."""
    entries = defaultdict(list)
    plain = defaultdict(list)
    with open(path) as f:
        for line, row in enumerate(csv.reader(f)):
            key = _key(row[0], row[1])
            x1, y1, x2, y2 = [float(n) for n in row[2:6]]
            action = int(row[6])
            if action not in whitelist:
                continue
            score = 1.0
            if capacity is not None:  # official reader: 8 columns give a score (person id for GT)
                if len(row) == 8:
                    score = float(row[7])
                item = (score, action, y1, x1, y2, x2) + ((line,) if input_order else ())
                if capacity < 1 or len(entries[key]) < capacity:
                    heapq.heappush(entries[key], item)
                elif score > entries[key][0][0]:
                    heapq.heapreplace(entries[key], item)
            else:
                if with_scores:
                    score = float(row[7])
                plain[key].append((score, action, y1, x1, y2, x2))
    if capacity is None:
        return plain
    if input_order:
        return {k: [t[:6] for t in sorted(v, key=lambda t: t[6])] for k, v in entries.items()}
    return {k: sorted(v, key=lambda t: -t[0]) for k, v in entries.items()}


def _iou(boxes1, boxes2):
    y_min1, x_min1, y_max1, x_max1 = np.split(boxes1, 4, axis=1)
    y_min2, x_min2, y_max2, x_max2 = np.split(boxes2, 4, axis=1)
    h = np.maximum(np.zeros((len(boxes1), len(boxes2))), np.minimum(y_max1, y_max2.T) - np.maximum(y_min1, y_min2.T))
    w = np.maximum(np.zeros((len(boxes1), len(boxes2))), np.minimum(x_max1, x_max2.T) - np.maximum(x_min1, x_min2.T))
    inter = h * w
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    return inter / (area1[:, None] + area2[None, :] - inter)


def reference_ap(gt_path, pred_path, ex_path, labelmap, protocol, ranked=None):
    """Per-class AP ``{class_id: ap}`` (NaN without ground truth) as the reference computes it.

    ``ranked``: a dict to fill with ``class_id -> (scores, tp, num_gt)``, the arrays the reference
    ranks with ``np.argsort(scores)[::-1]`` (for tests about the order of equal scores)."""
    ids = set(labelmap.ids)
    num_class = max(ids)
    excluded = set()
    if ex_path is not None:
        with open(ex_path) as f:
            excluded = {_key(r[0], r[1]) for r in csv.reader(f) if r}
    rules = get_protocol(protocol)
    by_score = rules.order == "score"
    gt = _read_csv(gt_path, ids, 0 if by_score else None, False)
    if by_score or rules.max_per_key is not None:
        det = _read_csv(pred_path, ids, rules.max_per_key or 0, True, input_order=not by_score)
    else:
        det = _read_csv(pred_path, ids, None, True)
    gt = {k: v for k, v in gt.items() if k not in excluded}
    num_gt = np.zeros(num_class, dtype=int)
    for items in gt.values():
        for t in items:
            num_gt[t[1] - 1] += 1
    scores_per_class = [[] for _ in range(num_class)]
    tp_per_class = [[] for _ in range(num_class)]
    with open(gt_path) as f:
        gt_file_keys = {_key(r[0], r[1]) for r in csv.reader(f) if r}
    for key, items in det.items():
        if key in excluded or (rules.keys_without_gt == "ignore" and key not in gt_file_keys):
            continue
        boxes = np.array([t[2:] for t in items], dtype=float).reshape(-1, 4)
        scores = np.array([t[0] for t in items], dtype=float)
        labels = np.array([t[1] for t in items], dtype=int) - 1
        valid = np.logical_and(boxes[:, 0] < boxes[:, 2], boxes[:, 1] < boxes[:, 3])
        boxes, scores, labels = boxes[valid], scores[valid], labels[valid]
        g = gt.get(key, [])
        g_boxes = np.array([t[2:] for t in g], dtype=float).reshape(-1, 4)
        g_labels = np.array([t[1] for t in g], dtype=int) - 1
        for c in range(num_class):
            d_boxes, d_scores = boxes[labels == c], scores[labels == c]
            if d_boxes.size == 0:
                continue
            c_gt = g_boxes[g_labels == c]
            tp = np.zeros(len(d_boxes), dtype=bool)
            if c_gt.size:
                iou = _iou(d_boxes, c_gt)
                best = np.argmax(iou, axis=1)
                taken = np.zeros(len(c_gt), dtype=bool)
                for i in range(len(d_boxes)):
                    if iou[i, best[i]] >= 0.5 and not taken[best[i]]:
                        tp[i] = taken[best[i]] = True
            scores_per_class[c].append(d_scores)
            tp_per_class[c].append(tp)
    aps = {}
    for c in range(num_class):
        if c + 1 not in ids:
            continue
        if num_gt[c] == 0:
            aps[c + 1] = math.nan
            continue
        if not scores_per_class[c]:
            aps[c + 1] = 0.0
            continue
        s = np.concatenate(scores_per_class[c])
        if ranked is not None:
            ranked[c + 1] = (s, np.concatenate(tp_per_class[c]), int(num_gt[c]))
        t = np.concatenate(tp_per_class[c]).astype(int)[np.argsort(s)[::-1]]
        ctp, cfp = np.cumsum(t), np.cumsum(1 - t)
        precision = ctp.astype(float) / (ctp + cfp)
        recall = ctp.astype(float) / num_gt[c]
        recall = np.concatenate([[0], recall, [1]])
        precision = np.concatenate([[0], precision, [0]])
        for i in range(len(precision) - 2, -1, -1):
            precision[i] = np.maximum(precision[i], precision[i + 1])
        idx = np.where(recall[1:] != recall[:-1])[0] + 1
        aps[c + 1] = float(np.sum((recall[idx] - recall[idx - 1]) * precision[idx]))
    return aps
