"""Where a detector is wrong: per-class error analysis from the matching of one frame-mAP evaluation.

Everything here is computed from the :class:`~ava_detect.evaluation.frame_map.Matching` that
:func:`~ava_detect.evaluation.frame_map.frame_map_matching` returns (the evaluator's own true
positives and matched boxes), never by matching again:

- per class: the score threshold with the best F1 (and its precision and recall), the
  precision-recall curve, and what the false positives among the class's top-N detections are
  (N = its number of ground-truth boxes, where a perfect detector would have exactly its ground
  truth): ``duplicate`` (the person has the action, another detection took it), ``wrong action``
  (IoU >= 0.5 with a ground-truth person who does not have it), ``poor box`` (best IoU with a
  person in [0.1, 0.5)) or ``background`` (no person there);
- label confusions: for those false positives on a ground-truth person, the person's real actions,
  as a ``predicted x true`` table of counts;
- per class, the highest-scoring false positives and some missed ground-truth boxes (spread over
  videos), with what the model did there;
- per video, the mean AP over the classes with ground truth in it (AP of each class restricted to
  the video's detections and ground truth; descriptive, ties in score order as the evaluation ranks them).

A "person" is a distinct ground-truth box at one keyframe (its rows give its actions).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from ava_detect.evaluation.frame_map import IOU_THRESHOLD, BoxRows, Matching

logger = logging.getLogger(__name__)

#: A false positive whose best IoU with any ground-truth person is at least this (and below
#: :data:`IOU_THRESHOLD`) is a ``poor box``; below it, ``background``.
POOR_BOX_IOU = 0.1
#: Kinds of false positives, in report order.
FP_KINDS = ("duplicate", "wrong action", "poor box", "background")
#: Points kept per precision-recall curve (evenly spread over its corners).
CURVE_POINTS = 200


@dataclass
class ClassAnalysis:
    """One class.

    Attributes:
        class_id: the action id; ``ap``: its AP (NaN without ground truth).
        num_gt, num_det, num_tp: ground-truth boxes, detections that took part, true positives.
        best_f1, threshold, precision_at, recall_at: the best F1 over score thresholds, the
            score of the detection where it is reached (detections with score >= it are kept),
            and the precision and recall there; NaN without a true positive.
        fp_kinds: :data:`FP_KINDS` -> count among the false positives in the top-N detections.
        top_n_precision: precision of the top-N detections (N = ``num_gt``; NaN without ground truth).
        curve: ``(recall float[P], precision float[P])``, the curve's corners (at most
            :data:`CURVE_POINTS`).
    """

    class_id: int
    ap: float
    num_gt: int
    num_det: int
    num_tp: int
    best_f1: float
    threshold: float
    precision_at: float
    recall_at: float
    top_n_precision: float
    fp_kinds: Dict[str, int]
    curve: Tuple[np.ndarray, np.ndarray] = field(repr=False)


@dataclass
class Example:
    """A detection or ground-truth box to show on its keyframe.

    Attributes:
        kind: ``"fp"`` (a false positive) or ``"miss"`` (a ground-truth box no detection took).
        class_id: the action; ``video_id``, ``second``: the keyframe.
        det_box: the detection ``(x1, y1, x2, y2)`` normalised, or None; ``score`` its score for ``class_id``.
        gt_box: the ground-truth box shown, or None; ``gt_actions``: that person's actions.
        iou: IoU of ``det_box`` and ``gt_box`` (NaN when one is missing).
        why: one line saying what happened.
    """

    kind: str
    class_id: int
    video_id: str
    second: int
    det_box: Optional[Tuple[float, float, float, float]]
    score: float
    gt_box: Optional[Tuple[float, float, float, float]]
    gt_actions: Tuple[int, ...]
    iou: float
    why: str


@dataclass
class VideoAnalysis:
    """One video: ``mAP`` over the classes with ground truth in it (NaN: none), its ground-truth
    boxes, detections, true positives and keyframes with ground truth."""

    video_id: str
    mAP: float
    num_gt: int
    num_det: int
    num_tp: int
    num_classes: int


@dataclass
class Analysis:
    """The error analysis of one evaluation (see the module docstring).

    Attributes:
        classes: class id -> :class:`ClassAnalysis`, in label-map order.
        false_positives, misses: class id -> examples, best first (at most ``max_examples`` each).
        confusion: ``int64[C,C]``: ``[i, j]`` = false positives of class ``class_ids[i]`` in its
            top-N on a person whose actions include ``class_ids[j]``.
        class_ids: ``int64[C]`` the label map's ids (rows and columns of ``confusion``).
        videos: per-video results, in the order videos first appear in the ground truth.
        num_keyframes: keyframes with ground truth; ``num_persons``: distinct ground-truth boxes.
    """

    classes: Dict[int, ClassAnalysis]
    false_positives: Dict[int, List[Example]]
    misses: Dict[int, List[Example]]
    confusion: np.ndarray
    class_ids: np.ndarray
    videos: List[VideoAnalysis]
    num_keyframes: int
    num_persons: int

    def top_confusions(self, n: int = 20) -> List[Tuple[int, int, int]]:
        """The ``n`` largest confusion counts as ``(predicted id, true id, count)``, largest first."""
        flat = self.confusion.ravel()
        top = np.argsort(-flat, kind="stable")[:n]
        c = len(self.class_ids)
        return [(int(self.class_ids[i // c]), int(self.class_ids[i % c]), int(flat[i])) for i in top if flat[i] > 0]


# --------------------------------------------------------------------------------------
# Boxes by key
# --------------------------------------------------------------------------------------


def _iou(ax1, ay1, ax2, ay2, bx1, by1, bx2, by2) -> np.ndarray:
    """IoU of paired boxes (arrays), no +1 on widths."""
    ih = np.maximum(0.0, np.minimum(ay2, by2) - np.maximum(ay1, by1))
    iw = np.maximum(0.0, np.minimum(ax2, bx2) - np.maximum(ax1, bx1))
    inter = ih * iw
    union = (ay2 - ay1) * (ax2 - ax1) + (by2 - by1) * (bx2 - bx1) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


class _ByKey:
    """Boxes grouped by key, for "best overlap at the same keyframe" queries.

    Args:
        rows: the boxes; ``index``: ``int64[M]`` which rows take part (any order).
    """

    def __init__(self, rows: BoxRows, index: np.ndarray):
        by_key = index[np.argsort(rows.keys[index], kind="stable")]
        self.rows, self.index = rows, by_key
        self.keys = rows.keys[by_key]

    def best(self, keys: np.ndarray, x1, y1, x2, y2, *, labels: Optional[np.ndarray] = None
             ) -> Tuple[np.ndarray, np.ndarray]:
        """For each query box (``keys``, corners ``float[Q]``): the highest IoU with a box of the
        same key (and the same label when ``labels`` is given) and that box's row (-1: none)."""
        lo = np.searchsorted(self.keys, keys, side="left")
        hi = np.searchsorted(self.keys, keys, side="right")
        per = hi - lo
        q = len(keys)
        best_iou, best_row = np.zeros(q), np.full(q, -1, dtype=np.int64)
        if per.sum() == 0:
            return best_iou, best_row
        has = np.flatnonzero(per)
        starts = np.r_[0, np.cumsum(per[has])[:-1]]
        pair_q = np.repeat(has, per[has])
        pair_t = self.index[np.repeat(lo[has] - starts, per[has]) + np.arange(int(per[has].sum()))]
        r = self.rows
        iou = _iou(x1[pair_q], y1[pair_q], x2[pair_q], y2[pair_q], r.x1[pair_t], r.y1[pair_t], r.x2[pair_t], r.y2[pair_t])
        if labels is not None:
            iou = np.where(r.labels[pair_t] == labels[pair_q], iou, -1.0)
        # highest IoU per query, first pair on ties
        order = np.lexsort((-iou, pair_q))
        first = np.r_[True, pair_q[order][1:] != pair_q[order][:-1]]
        chosen = order[first]
        ok = iou[chosen] >= 0
        best_iou[pair_q[chosen][ok]] = iou[chosen][ok]
        best_row[pair_q[chosen][ok]] = pair_t[chosen][ok]
        return best_iou, best_row


class _Persons:
    """Distinct ground-truth boxes per key (people) and their actions."""

    def __init__(self, gt: BoxRows):
        if len(gt):
            order = np.lexsort((gt.y2, gt.x2, gt.y1, gt.x1, gt.keys))
            cols = [a[order] for a in (gt.keys, gt.x1, gt.y1, gt.x2, gt.y2)]
            new = np.r_[True, np.any([c[1:] != c[:-1] for c in cols], axis=0)]
            person_sorted = np.cumsum(new) - 1
            self.of_row = np.empty(len(gt), dtype=np.int64)
            self.of_row[order] = person_sorted
            self.first_row = order[new]
            # actions of each person: gt rows sorted by person
            self.row_order = order
            self.starts = np.flatnonzero(new)
            self.ends = np.r_[self.starts[1:], len(gt)]
        else:
            self.of_row = self.first_row = self.row_order = self.starts = self.ends = np.zeros(0, np.int64)
        self.gt = gt
        self.lookup = _ByKey(gt, self.first_row)

    def __len__(self) -> int:
        return len(self.first_row)

    def actions(self, person: int) -> Tuple[int, ...]:
        rows = self.row_order[self.starts[person]:self.ends[person]]
        return tuple(sorted(set(self.gt.labels[rows].tolist())))

    def action_pairs(self, persons: np.ndarray, predicted: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """``(predicted[k], action)`` for every action of ``persons[k]`` (vectorised)."""
        counts = self.ends[persons] - self.starts[persons]
        starts = np.r_[0, np.cumsum(counts)[:-1]]
        rows = self.row_order[np.repeat(self.starts[persons] - starts, counts) + np.arange(int(counts.sum()))]
        return np.repeat(predicted, counts), self.gt.labels[rows]


# --------------------------------------------------------------------------------------
# The analysis
# --------------------------------------------------------------------------------------


def analyse(matching: Matching, *, max_examples: int = 12) -> Analysis:
    """The error analysis of one evaluation (see the module docstring).

    Args:
        matching: from :func:`~ava_detect.evaluation.frame_map.frame_map_matching`.
        max_examples: false positives and misses kept per class.
    """
    det, gt = matching.detections, matching.gt
    order, det_cls, tp = matching.order, matching.det_class, matching.tp
    class_ids = matching.class_ids
    n_cls = len(class_ids)
    scores = det.scores[order]
    persons = _Persons(gt)
    # detections by class, each in descending score (stable: the evaluation's order on ties)
    by_class = np.argsort(det_cls.astype(np.int16 if n_cls < 32767 else np.int64), kind="stable")
    c_starts = np.searchsorted(det_cls[by_class], np.arange(n_cls + 1))
    for c in range(n_cls):
        idx = by_class[c_starts[c]:c_starts[c + 1]]
        idx[:] = idx[np.argsort(-scores[idx], kind="stable")]
    gt_by_class = np.bincount(matching.gt_class, minlength=n_cls)

    top_n = [by_class[c_starts[c]:c_starts[c] + min(int(gt_by_class[c]), c_starts[c + 1] - c_starts[c])]
             for c in range(n_cls)]
    top_idx = np.concatenate(top_n) if top_n else np.zeros(0, np.int64)
    fp_top = top_idx[~tp[top_idx]]
    kinds, person_of, _, _ = _fp_kinds(matching, persons, fp_top)

    classes: Dict[int, ClassAnalysis] = {}
    fp_examples: Dict[int, List[Example]] = {}
    miss_examples: Dict[int, List[Example]] = {}
    kind_counts = np.zeros((n_cls, len(FP_KINDS)), dtype=np.int64)
    np.add.at(kind_counts, (det_cls[fp_top], kinds), 1)
    for c, cid in enumerate(class_ids.tolist()):
        idx = by_class[c_starts[c]:c_starts[c + 1]]
        classes[cid] = _class_analysis(matching, c, idx, int(gt_by_class[c]), kind_counts[c])
        fp_examples[cid] = _fp_examples(matching, persons, idx[~tp[idx]][:max_examples])
    taken = np.zeros(len(gt), dtype=bool)
    taken[matching.best_gt[tp]] = True
    missed = np.flatnonzero(~taken)
    missed = missed[np.argsort(matching.gt_class[missed], kind="stable")]
    m_starts = np.searchsorted(matching.gt_class[missed], np.arange(n_cls + 1))
    shown = [_spread_over_videos(gt, missed[m_starts[c]:m_starts[c + 1]])[:max_examples] for c in range(n_cls)]
    examples = _miss_examples(matching, persons, np.concatenate(shown) if shown else np.zeros(0, np.int64))
    for c, cid in enumerate(class_ids.tolist()):
        miss_examples[cid], examples = examples[:len(shown[c])], examples[len(shown[c]):]

    confusion = np.zeros((n_cls, n_cls), dtype=np.int64)
    wrong = kinds == FP_KINDS.index("wrong action")
    pred_cls, true_ids = persons.action_pairs(person_of[wrong], det_cls[fp_top[wrong]])
    true_cls = _columns(class_ids, true_ids)
    ok = true_cls >= 0
    np.add.at(confusion, (pred_cls[ok], true_cls[ok]), 1)
    return Analysis(classes=classes, false_positives=fp_examples, misses=miss_examples, confusion=confusion,
                    class_ids=class_ids, videos=_per_video(matching, by_class, c_starts),
                    num_keyframes=int(len(np.unique(gt.keys))), num_persons=len(persons))


def _columns(class_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``int64[N]`` action ids -> their columns in ``class_ids`` (-1: not there)."""
    if len(class_ids) == 0:
        return np.full(len(ids), -1, dtype=np.int64)
    sorter = np.argsort(class_ids, kind="stable")
    pos = np.minimum(np.searchsorted(class_ids, ids, sorter=sorter), len(class_ids) - 1)
    col = sorter[pos]
    return np.where(class_ids[col] == ids, col, -1).astype(np.int64)


def _nan_if(cond: bool, value: float) -> float:
    return math.nan if cond else float(value)


def _class_analysis(matching: Matching, c: int, idx: np.ndarray, num_gt: int, kind_counts: np.ndarray) -> ClassAnalysis:
    """One class from its detections ``idx`` (positions in processing order, by descending score)."""
    cid = int(matching.class_ids[c])
    result = matching.result
    t = matching.tp[idx]
    s = matching.detections.scores[matching.order[idx]]
    cum = np.cumsum(t)
    n_tp = int(cum[-1]) if len(cum) else 0
    best_f1 = threshold = p_at = r_at = math.nan
    if n_tp and num_gt:
        p = cum / np.arange(1, len(t) + 1)
        r = cum / num_gt
        with np.errstate(divide="ignore", invalid="ignore"):
            f1 = np.where(cum > 0, 2 * p * r / (p + r), 0.0)
        # a threshold keeps every detection with that score: only the last of equal scores counts
        f1[np.r_[s[1:] == s[:-1], False]] = -1.0
        k = int(np.argmax(f1))
        best_f1, threshold, p_at, r_at = float(f1[k]), float(s[k]), float(p[k]), float(r[k])
    top = min(num_gt, len(t))
    recall, precision = result.recall.get(cid, np.zeros(0)), result.precision.get(cid, np.zeros(0))
    if len(recall) > CURVE_POINTS:
        keep = np.unique(np.linspace(0, len(recall) - 1, CURVE_POINTS).round().astype(np.int64))
        recall, precision = recall[keep], precision[keep]
    return ClassAnalysis(
        class_id=cid, ap=float(result.per_class_ap[cid]), num_gt=num_gt, num_det=len(idx), num_tp=n_tp,
        best_f1=best_f1, threshold=threshold, precision_at=p_at, recall_at=r_at,
        top_n_precision=_nan_if(top == 0, cum[top - 1] / top if top else 0.0),
        fp_kinds={k: int(v) for k, v in zip(FP_KINDS, kind_counts)}, curve=(recall, precision))


def _det_corners(matching: Matching, idx: np.ndarray):
    rows = matching.order[idx]
    d = matching.detections
    return rows, d.keys[rows], d.x1[rows], d.y1[rows], d.x2[rows], d.y2[rows]


def _fp_kinds(matching: Matching, persons: _Persons, idx: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For false positives ``idx`` (positions in processing order): ``(kind int[F] into FP_KINDS,
    person int[F] (best-overlapping person, -1: none), iou_same float[F] (IoU with the best
    ground-truth box of the class), iou_person float[F])``."""
    _, keys, x1, y1, x2, y2 = _det_corners(matching, idx)
    gt = matching.gt
    bg = matching.best_gt[idx]
    has = bg >= 0
    g = np.where(has, bg, 0)
    iou_same = np.where(has, _iou(x1, y1, x2, y2, gt.x1[g], gt.y1[g], gt.x2[g], gt.y2[g]) if len(gt) else 0.0, 0.0)
    iou_p, row_p = persons.lookup.best(keys, x1, y1, x2, y2)
    person = np.where(row_p >= 0, persons.of_row[np.maximum(row_p, 0)] if len(persons) else -1, -1)
    kind = np.full(len(idx), FP_KINDS.index("background"), dtype=np.int64)
    kind[iou_p >= POOR_BOX_IOU] = FP_KINDS.index("poor box")
    kind[iou_p >= IOU_THRESHOLD] = FP_KINDS.index("wrong action")
    kind[iou_same >= IOU_THRESHOLD] = FP_KINDS.index("duplicate")
    return kind, person, iou_same, iou_p


def _box(rows: BoxRows, i: int) -> Tuple[float, float, float, float]:
    return float(rows.x1[i]), float(rows.y1[i]), float(rows.x2[i]), float(rows.y2[i])


def _key_parts(rows: BoxRows, key: int) -> Tuple[str, int]:
    if rows.coding is None:
        return str(key), -1
    video, second = rows.coding.decode(np.array([key]))
    return str(video[0]), int(second[0])


def _names(matching: Matching, ids) -> str:
    names = matching.result.labelmap.names
    return ", ".join(names.get(int(i), str(i)) for i in ids) or "nothing in the label map"


def _fp_examples(matching: Matching, persons: _Persons, idx: np.ndarray) -> List[Example]:
    """The false positives ``idx`` (positions in processing order, best first) as examples."""
    kind, person, iou_same, iou_p = _fp_kinds(matching, persons, idx)
    rows = matching.order[idx]
    det, gt = matching.detections, matching.gt
    out = []
    for k, i in enumerate(idx.tolist()):
        cid = int(matching.class_ids[matching.det_class[i]])
        name = matching.result.labelmap.names[cid]
        what = FP_KINDS[kind[k]]
        gt_box, actions, iou = None, (), math.nan
        if what == "duplicate":
            g = int(matching.best_gt[i])
            gt_box, actions, iou = _box(gt, g), persons.actions(int(persons.of_row[g])), float(iou_same[k])
            why = f"duplicate: this person's {name} was taken by a higher-scoring detection"
        elif what == "background":
            why = f"background: no annotated person here (best IoU {iou_p[k]:.2f})"
        else:
            p = int(person[k])
            gt_box, actions, iou = _box(gt, int(persons.first_row[p])), persons.actions(p), float(iou_p[k])
            why = (f"wrong action: the person does {_names(matching, actions)}" if what == "wrong action"
                   else f"poor box: IoU {iou:.2f} with a person who does {_names(matching, actions)}")
        video, second = _key_parts(det, int(det.keys[rows[k]]))
        out.append(Example(kind="fp", class_id=cid, video_id=video, second=second, det_box=_box(det, int(rows[k])),
                           score=float(det.scores[rows[k]]), gt_box=gt_box, gt_actions=actions, iou=iou, why=why))
    return out


def _spread_over_videos(gt: BoxRows, rows: np.ndarray) -> np.ndarray:
    """``rows`` (ground-truth indices) reordered: the first of each video, then the second of
    each video, ...; videos in order of first appearance, keyframes in time order."""
    if len(rows) == 0:
        return rows
    keys = gt.keys[rows]
    video = keys // gt.coding.stride if gt.coding is not None else keys
    by = np.lexsort((rows, keys, video))
    v_sorted = video[by]
    starts = np.flatnonzero(np.r_[True, v_sorted[1:] != v_sorted[:-1]])
    rank = np.arange(len(by)) - np.repeat(starts, np.diff(np.r_[starts, len(by)]))
    return rows[by][np.lexsort((np.arange(len(by)), rank))]


def _miss_examples(matching: Matching, persons: _Persons, rows: np.ndarray) -> List[Example]:
    """The missed ground-truth rows ``rows`` as examples, with the best detection near each."""
    if len(rows) == 0:
        return []
    det, gt = matching.detections, matching.gt
    keys = gt.keys[rows]
    near = matching.order[np.isin(det.keys[matching.order], np.unique(keys))]
    lookup = _ByKey(det, near)
    corners = (gt.x1[rows], gt.y1[rows], gt.x2[rows], gt.y2[rows])
    iou_c, row_c = lookup.best(keys, *corners, labels=gt.labels[rows])
    iou_a, row_a = lookup.best(keys, *corners)
    out = []
    for k, g in enumerate(rows.tolist()):
        cid = int(gt.labels[g])
        name = matching.result.labelmap.names[cid]
        if row_c[k] >= 0 and iou_c[k] >= IOU_THRESHOLD:
            d, iou = int(row_c[k]), float(iou_c[k])
            why = f"{name} at score {det.scores[d]:.2f} on this person, but that detection took another person"
        elif row_a[k] >= 0 and iou_a[k] >= IOU_THRESHOLD:
            d, iou = int(row_a[k]), float(iou_a[k])
            why = (f"person detected (IoU {iou:.2f}) but no {name} score for the box took part "
                   f"({matching.result.protocol} protocol)")
        elif row_a[k] >= 0:
            d, iou = int(row_a[k]), float(iou_a[k])
            why = f"person not detected (best box IoU {iou:.2f})"
        else:
            d, iou = -1, math.nan
            why = "no detection at this keyframe"
        video, second = _key_parts(gt, int(gt.keys[g]))
        out.append(Example(kind="miss", class_id=cid, video_id=video, second=second,
                           det_box=_box(det, d) if d >= 0 else None,
                           score=float(det.scores[d]) if d >= 0 and int(det.labels[d]) == cid else math.nan,
                           gt_box=_box(gt, g), gt_actions=persons.actions(int(persons.of_row[g])), iou=iou, why=why))
    return out


def _per_video(matching: Matching, by_class: np.ndarray, c_starts: np.ndarray) -> List[VideoAnalysis]:
    """Per-video mean AP (see the module docstring)."""
    det, gt = matching.detections, matching.gt
    coding = gt.coding if gt.coding is not None else det.coding
    if coding is None:
        return []
    n_vid = len(coding.videos)
    d_vid = det.keys[matching.order] // coding.stride
    g_vid = gt.keys // coding.stride
    n_cls = len(matching.class_ids)
    gt_cv = np.bincount(matching.gt_class * n_vid + g_vid, minlength=n_cls * n_vid).reshape(n_cls, n_vid)
    ap_sum = np.zeros(n_vid)
    small = np.int16 if n_vid < 32767 else np.int64
    for c in range(n_cls):
        idx = by_class[c_starts[c]:c_starts[c + 1]]
        if len(idx) == 0 or not gt_cv[c].any():
            continue
        sub = idx[np.argsort(d_vid[idx].astype(small), kind="stable")]  # by video, each by score
        v, t = d_vid[sub], matching.tp[sub].astype(np.int64)
        starts = np.flatnonzero(np.r_[True, v[1:] != v[:-1]])
        counts = np.diff(np.r_[starts, len(v)])
        group = np.repeat(np.arange(len(starts)), counts)
        cum = np.cumsum(t)
        before = np.r_[0, cum[starts[1:] - 1]] if len(starts) > 1 else np.zeros(1, np.int64)
        cum_in = cum - np.repeat(before, counts)
        rank = np.arange(len(v)) - np.repeat(starts, counts) + 1
        precision = cum_in / rank
        # precision envelope (max over the rest of the group): reversed running max, groups kept apart
        offset = 2.0 * (len(starts) - 1 - group[::-1])
        envelope = (np.maximum.accumulate(precision[::-1] + offset) - offset)[::-1]
        ap_num = np.bincount(group, weights=envelope * t, minlength=len(starts))
        vids = v[starts]
        n_gt = gt_cv[c, vids]
        ap_sum[vids[n_gt > 0]] += ap_num[n_gt > 0] / n_gt[n_gt > 0]
    n_classes = (gt_cv > 0).sum(axis=0)
    n_det = np.bincount(d_vid, minlength=n_vid)
    n_tp = np.bincount(d_vid[matching.tp], minlength=n_vid)
    n_gt_v = gt_cv.sum(axis=0)
    seen = list(dict.fromkeys(np.r_[g_vid, np.unique(d_vid)].tolist()))
    return [VideoAnalysis(video_id=str(coding.videos[v]), mAP=_nan_if(n_classes[v] == 0, ap_sum[v] / max(n_classes[v], 1)),
                          num_gt=int(n_gt_v[v]), num_det=int(n_det[v]), num_tp=int(n_tp[v]), num_classes=int(n_classes[v]))
            for v in seen]
