"""Frame-mAP@0.5 exactly as the official AVA evaluators compute it, vectorised.

The rules in which the official evaluators differ (the per-key cap, the order of the rows of a
key, detections on keys without ground truth) are a :class:`~ava_detect.evaluation.protocols.Protocol`
(``activitynet``, the default: the official challenge script; ``pyslowfast``: PySlowFast's
``ava_eval_helper``), each reproducing its reference to the last digit; :func:`frame_map` applies
whichever rules it is given and has no branch per protocol.

Shared rules: ground-truth rows and detections whose action is not in the label map are
dropped; excluded keys are dropped from both; detection boxes with x2 <= x1 or y2 <= y1 are
dropped (after the per-key cut, as the reference does). Per key and class, each detection in
turn takes the ground-truth box of highest IoU (the first one on ties, no +1 on widths); it is
a true positive when that IoU >= 0.5 and the box is still free. Per class, detections are
ranked with ``np.argsort(scores)[::-1]`` over the concatenation of the per-key lists in
first-appearance order (the same array the reference sorts, so ties fall the same way), and AP
is the PASCAL VOC all-point area. A class with ground truth but no detections has AP 0; one
without ground truth is NaN and left out of the mean.

Everything is array arithmetic over all rows at once; the only Python loops are over classes
and over the rare keys whose heap order cannot be derived from a sort (score ties at the
per-key cut, or equal scores for one class at one key, or equal IoUs with two ground-truth boxes).
"""

from __future__ import annotations

import heapq
import logging
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

import numpy as np
import pandas as pd

from ava_detect.data.ava_files import LabelMap
from ava_detect.errors import AvaDetectError
from ava_detect.evaluation.protocols import DEFAULT_PROTOCOL, Protocol, get_protocol
from ava_detect.structures import parse_image_key
from ava_detect.io import PathLike

logger = logging.getLogger(__name__)

#: A detection matches a ground-truth box at IoU >= this.
IOU_THRESHOLD = 0.5


# --------------------------------------------------------------------------------------
# Inputs and result
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyCoding:
    """How :func:`encode_keys` codes image keys: ``code = video index * stride + second``.

    Attributes:
        videos: ``object[V]`` video ids by index.
        stride: one more than the largest second coded.
    """

    videos: np.ndarray
    stride: int

    def decode(self, codes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """``int64[N]`` key codes -> ``(object[N] video ids, int64[N] seconds)``."""
        codes = np.asarray(codes, dtype=np.int64)
        return self.videos[codes // self.stride], codes % self.stride


@dataclass(frozen=True)
class BoxRows:
    """Rows of a ground-truth or detection file as arrays, in file order.

    Attributes:
        keys: ``int64[N]`` image-key codes (one coding shared by ground truth, detections and
            exclusions; see :func:`encode_keys`).
        x1, y1, x2, y2: ``float64[N]`` box corners, normalised to [0, 1].
        labels: ``int64[N]`` action ids.
        scores: ``float64[N]`` detection scores; for ground truth, the official reader's sort
            key (the person id of 8-column rows, 1.0 for 7-column rows), which only decides the
            order of ground-truth boxes with exactly equal IoU to a detection.
        coding: how ``keys`` decode to ``(video_id, second)`` (None when unknown).
    """

    keys: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    x2: np.ndarray
    y2: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    coding: Optional[KeyCoding] = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.keys)

    def take(self, index: np.ndarray) -> "BoxRows":
        return BoxRows(self.keys[index], self.x1[index], self.y1[index], self.x2[index], self.y2[index],
                       self.labels[index], self.scores[index], self.coding)


@dataclass
class FrameMAPResult:
    """Frame-mAP of one evaluation.

    Attributes:
        mAP: mean of ``per_class_ap`` over classes with ground truth (NaN when none has any).
        per_class_ap: class id -> AP in [0, 1]; NaN for classes without ground truth.
        num_gt: class id -> number of ground-truth rows (boxes with that action).
        num_detections: class id -> number of detections that took part (after the top-50 cut,
            exclusions and dropped boxes).
        protocol: the name of the protocol (:data:`~ava_detect.evaluation.protocols.PROTOCOLS`).
        labelmap: the label map the classes come from.
        precision, recall: class id -> ``float64[T]`` precision and recall at each true
            positive, in score order (the corners of the precision-recall curve); empty
            arrays for classes without true positives, absent for classes without ground truth.
    """

    mAP: float
    per_class_ap: Dict[int, float]
    num_gt: Dict[int, int]
    num_detections: Dict[int, int]
    protocol: str
    labelmap: LabelMap
    precision: Dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    recall: Dict[int, np.ndarray] = field(default_factory=dict, repr=False)


# --------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------


def encode_keys(parts: Sequence[Tuple[object, np.ndarray]]) -> List[np.ndarray]:
    """Give image keys ``(video_id, second)`` one shared ``int64`` coding.

    Args:
        parts: ``(video_ids, seconds)`` pairs; ``video_ids`` is a pandas categorical (Series or
            ``Categorical``) or a sequence of strings of length N, ``seconds`` ``int[N]``.

    Returns:
        One ``int64[N]`` array per part; equal keys get equal codes across all parts.
    """
    return encode_keys_with_coding(parts)[0]


def encode_keys_with_coding(parts: Sequence[Tuple[object, np.ndarray]]) -> Tuple[List[np.ndarray], KeyCoding]:
    """:func:`encode_keys`, and the :class:`KeyCoding` that decodes its codes."""
    cats = []
    for video, _ in parts:
        if isinstance(video, pd.Series) and isinstance(video.dtype, pd.CategoricalDtype):
            video = video.array
        if not isinstance(video, pd.Categorical):
            video = pd.Categorical(np.asarray(video, dtype=object).astype(str)) if len(video) else pd.Categorical([])
        cats.append(video)
    names = pd.Index(pd.unique(np.concatenate([np.asarray(c.categories, dtype=object) for c in cats]))
                     if cats else np.array([], dtype=object))
    seconds = [np.asarray(s, dtype=np.int64) for _, s in parts]
    top = max((int(s.max()) for s in seconds if len(s)), default=0) + 1
    out = []
    for cat, sec in zip(cats, seconds):
        lookup = names.get_indexer(cat.categories).astype(np.int64)
        codes = np.asarray(cat.codes, dtype=np.int64)
        out.append(lookup[codes] * top + sec if len(codes) else np.zeros(0, np.int64))
    return out, KeyCoding(np.asarray(names, dtype=object), top)


def exclusion_arrays(excluded: Optional[Iterable[str]]) -> Tuple[List[str], np.ndarray]:
    """Image keys ``"video,SSSS"`` -> ``(video_ids, seconds)`` for :func:`encode_keys`."""
    videos, seconds = [], []
    for key in excluded or ():
        video, second = parse_image_key(key)
        videos.append(video)
        seconds.append(second)
    return videos, np.asarray(seconds, dtype=np.int64)


# --------------------------------------------------------------------------------------
# The official reader's heap (exact, for the keys where a sort cannot stand in for it)
# --------------------------------------------------------------------------------------


def _heap_order(rows: BoxRows, index: np.ndarray, capacity: int) -> np.ndarray:
    """Rows of one key, as the official reader hands them over.

    ``index`` are the key's rows in file order. The reader pushes ``(score, action_id, y1, x1,
    y2, x2)`` tuples on a min-heap (with ``capacity > 0``: at most ``capacity``, a new tuple
    replacing the smallest only when its score is strictly higher), then returns the heap's
    array stably sorted by descending score. Returns the kept rows (indices into ``rows``) in
    that order; equal tuples are interchangeable.
    """
    tuples = list(zip(rows.scores[index].tolist(), rows.labels[index].tolist(), rows.y1[index].tolist(),
                      rows.x1[index].tolist(), rows.y2[index].tolist(), rows.x2[index].tolist()))
    heap: list = []
    for item in tuples:
        if capacity < 1 or len(heap) < capacity:
            heapq.heappush(heap, item)
        elif item[0] > heap[0][0]:
            heapq.heapreplace(heap, item)
    where: Dict[tuple, List[int]] = defaultdict(list)
    for i in range(len(tuples) - 1, -1, -1):
        where[tuples[i]].append(int(index[i]))
    return np.array([where[item].pop() for item in sorted(heap, key=lambda t: -t[0])], dtype=np.int64)


def _group_bounds(sorted_values: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Start index and length of each run of equal values in a sorted array."""
    n = len(sorted_values)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    return starts, np.diff(np.r_[starts, n])


def _descending_bits(scores: np.ndarray) -> np.ndarray:
    """``uint64`` keys whose ascending order is the descending order of the float ``scores``."""
    u = np.add(scores, 0.0).view(np.uint64)  # a copy; + 0.0 turns -0.0 into 0.0
    negative = scores < 0
    if negative.any():
        u[negative] = ~u[negative]
        u[~negative] |= np.uint64(1 << 63)
    else:
        u |= np.uint64(1 << 63)
    np.invert(u, out=u)
    return u


def _score_selection(det: BoxRows, rows: np.ndarray, ranks_all: np.ndarray, capacity: Optional[int]
                     ) -> Tuple[np.ndarray, np.ndarray]:
    """The detections the official reader keeps, in the order it hands them over.

    Args:
        det: all detections, file order.
        rows: ``int64[M]`` indices (ascending) of the rows to consider.
        ranks_all: ``int64[M]`` rank of each such row's key in first-appearance order.
        capacity: the reader's heap size (detections kept per key), None for no cut.

    Returns:
        ``(rows, ranks)``: indices into ``det`` and their key ranks; keys in first-appearance
        order, per key the (at most ``capacity``) kept detections by descending score, ties in
        the reader's order where it matters.
    """
    if len(rows) == 0:
        return rows, ranks_all
    scores_all = det.scores[rows]
    n_keys = int(ranks_all.max()) + 1
    key_bits = max(1, (n_keys - 1).bit_length())
    suspect: Set[int] = set()
    if key_bits <= 40:
        # one uint64 per row: key rank in the high bits, descending score in the rest (its low
        # bits cut off; rows whose scores differ only there are replayed exactly below)
        composite = (ranks_all.astype(np.uint64) << np.uint64(64 - key_bits)) | (
            _descending_bits(scores_all) >> np.uint64(key_bits))
        order = np.argsort(composite)
        composite = composite[order]
        s = scores_all[order]
        collide = (composite[1:] == composite[:-1]) & (s[1:] != s[:-1])
        if collide.any():
            suspect.update(ranks_all[order[1:][collide]].tolist())
        del composite
    else:
        order = np.lexsort((-scores_all, ranks_all))
        s = scores_all[order]
    ranks = ranks_all[order]
    if capacity is None:
        kept = np.ones(len(rows), dtype=bool)
    else:
        starts, counts = _group_bounds(ranks)
        position = np.arange(len(rows), dtype=np.int64) - np.repeat(starts, counts)
        kept = position < capacity
        # Keys where the sort and the heap may disagree: a score tie at the cut ...
        over = counts > capacity
        cut = starts[over] + capacity
        suspect.update(ranks[cut][s[cut - 1] == s[cut]].tolist())
    # ... or two kept detections of one class with one score (their order is the heap's).
    k_ranks, k_scores = ranks[kept], s[kept]
    k_rows = rows[order[kept]]
    equal = np.flatnonzero((k_ranks[1:] == k_ranks[:-1]) & (k_scores[1:] == k_scores[:-1]))
    if len(equal):
        cand = np.unique(np.r_[equal, equal + 1])
        frame = pd.DataFrame({"k": k_ranks[cand], "c": det.labels[k_rows[cand]], "s": k_scores[cand]})
        suspect.update(frame["k"].to_numpy()[frame.duplicated(keep=False).to_numpy()].tolist())
    if not suspect:
        return k_rows, k_ranks
    return _replay_heap(det, rows, ranks_all, k_rows, k_ranks, suspect, capacity)


def _replay_heap(det: BoxRows, rows: np.ndarray, ranks_all: np.ndarray, k_rows: np.ndarray, k_ranks: np.ndarray,
                 suspect: Set[int], capacity: Optional[int]) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`_score_selection`'s result with the keys ``suspect`` (key ranks) replaced by the
    reference heap's exact choice and order (:func:`_heap_order`)."""
    exact = np.fromiter(suspect, dtype=np.int64, count=len(suspect))
    in_exact = np.isin(k_ranks, exact)
    pieces = [k_rows[~in_exact]]
    piece_ranks = [k_ranks[~in_exact]]
    in_key = np.isin(ranks_all, exact)
    exact_rows, exact_ranks = rows[in_key], ranks_all[in_key]  # file order
    by_key = np.argsort(exact_ranks, kind="stable")
    exact_rows, exact_ranks = exact_rows[by_key], exact_ranks[by_key]
    r_starts, r_counts = _group_bounds(exact_ranks)
    for st, c in zip(r_starts.tolist(), r_counts.tolist()):
        chosen = _heap_order(det, exact_rows[st:st + c], capacity or 0)
        pieces.append(chosen)
        piece_ranks.append(np.full(len(chosen), exact_ranks[st], dtype=np.int64))
    logger.debug("top-%s cut replayed with the reference heap for %d keys", capacity or "all", len(r_starts))
    selected = np.concatenate(pieces)
    selected_ranks = np.concatenate(piece_ranks)
    # each piece is in per-key order; a stable sort by key keeps it
    by_key = np.argsort(selected_ranks, kind="stable")
    return selected[by_key], selected_ranks[by_key]


# --------------------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------------------


def _pair_iou(det: "BoxRows", gt: "BoxRows") -> np.ndarray:
    """IoU of paired boxes (row i of ``det`` with row i of ``gt``), with the reference's
    arithmetic (``np_box_ops.iou`` on ``[y1, x1, y2, x2]`` boxes: heights times widths, no +1)."""
    ih = np.maximum(0.0, np.minimum(det.y2, gt.y2) - np.maximum(det.y1, gt.y1))
    iw = np.maximum(0.0, np.minimum(det.x2, gt.x2) - np.maximum(det.x1, gt.x1))
    inter = ih * iw
    area_d = (det.y2 - det.y1) * (det.x2 - det.x1)
    area_g = (gt.y2 - gt.y1) * (gt.x2 - gt.x1)
    union = area_d + area_g - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / union


def _match(det_boxes: np.ndarray, det_group: np.ndarray, gt_sorted: BoxRows, gt_group_sorted: np.ndarray
           ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True positives of detections in processing order.

    Args:
        det_boxes: the detections in processing order (anything with ``take(index) -> BoxRows``);
            ``det_group`` ``int64[D]`` their (key, class) group codes.
        gt_sorted: ground truth sorted by group, each group in the reference's box order;
            ``gt_group_sorted`` their group codes (sorted).

    Returns:
        ``(tp bool[D], tied_dets int64[...], best_gt int64[D])``: tied_dets are detections whose
        highest IoU is shared by two or more ground-truth boxes (their choice is the first box).
    """
    n = len(det_group)
    tp = np.zeros(n, dtype=bool)
    best_gt = np.full(n, -1, dtype=np.int64)
    if n == 0 or len(gt_group_sorted) == 0:
        return tp, np.zeros(0, np.int64), best_gt
    g_starts, g_counts = _group_bounds(gt_group_sorted)
    g_keys = gt_group_sorted[g_starts]
    pos = np.searchsorted(g_keys, det_group)
    pos_c = np.minimum(pos, len(g_keys) - 1)
    has = (pos < len(g_keys)) & (g_keys[pos_c] == det_group)
    dets = np.flatnonzero(has)
    if len(dets) == 0:
        return tp, np.zeros(0, np.int64), best_gt
    per = g_counts[pos_c[dets]]
    pair_start = np.r_[0, np.cumsum(per)[:-1]]
    total = int(per.sum())
    pair_det = np.repeat(dets, per)
    pair_gt = np.repeat(g_starts[pos_c[dets]] - pair_start, per) + np.arange(total, dtype=np.int64)
    iou = _pair_iou(det_boxes.take(pair_det), gt_sorted.take(pair_gt))
    iou_max = np.maximum.reduceat(iou, pair_start)
    is_max = iou == np.repeat(iou_max, per)
    # first ground-truth box (in the group's order) reaching the maximum, like np.argmax
    max_pairs = np.flatnonzero(is_max)
    owner, first = np.unique(pair_det[max_pairs], return_index=True)
    chosen = pair_gt[max_pairs[first]]
    # equal highest IoUs only matter when they can make a true positive
    ties = (np.bincount(pair_det[max_pairs], minlength=n)[dets] > 1) & (iou_max >= IOU_THRESHOLD)
    best_gt[dets] = chosen
    ok = iou_max >= IOU_THRESHOLD
    candidates = dets[ok]
    if len(candidates):
        _, first_claim = np.unique(chosen[ok], return_index=True)
        tp[candidates[first_claim]] = True
    return tp, dets[ties], best_gt


# --------------------------------------------------------------------------------------
# Average precision (the reference's arithmetic)
# --------------------------------------------------------------------------------------


def average_precision(scores: np.ndarray, tp: np.ndarray, num_gt: int) -> Tuple[float, np.ndarray, np.ndarray]:
    """PASCAL VOC all-point AP of one class, as ``metrics.compute_precision_recall`` and
    ``metrics.compute_average_precision`` of the reference compute it.

    Args:
        scores: ``float64[K]`` detection scores, in the reference's concatenation order (the
            order decides how equal scores are ranked).
        tp: ``bool[K]`` true-positive flags.
        num_gt: number of ground-truth boxes of the class (> 0).

    Returns:
        ``(ap, precision, recall)``: AP in [0, 1] (0.0 without detections); precision and
        recall ``float64[K]`` in rank order.
    """
    if len(scores) == 0:
        return 0.0, np.zeros(0), np.zeros(0)
    order = np.argsort(scores)[::-1]
    tp_sorted = tp.astype(int)[order]
    cum_tp = np.cumsum(tp_sorted)
    cum_fp = np.cumsum(1 - tp_sorted)
    precision = cum_tp.astype(float) / (cum_tp + cum_fp)
    recall = cum_tp.astype(float) / num_gt
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    idx = np.where(r[1:] != r[:-1])[0] + 1
    return float(np.sum((r[idx] - r[idx - 1]) * p[idx])), precision, recall


# --------------------------------------------------------------------------------------
# The evaluation
# --------------------------------------------------------------------------------------


def check_protocol(protocol: Union[str, Protocol]) -> None:
    """Raise :class:`AvaDetectError` unless ``protocol`` is a :class:`Protocol` or a name in :data:`PROTOCOLS`."""
    get_protocol(protocol)


class _Classes:
    """The label map's class ids and a vectorised ``action id -> column`` lookup.

    Attributes:
        ids: ``int64[C]`` class ids in label-map order; ``order``: ``argsort(ids)`` (stable);
            ``sorted_ids``: ``ids[order]``.
    """

    def __init__(self, labelmap: LabelMap):
        self.ids = np.asarray(labelmap.ids, dtype=np.int64)
        self.order = np.argsort(self.ids, kind="stable")
        self.sorted_ids = self.ids[self.order]
        self.n = len(self.ids)
        self._lut = None
        if self.n and self.sorted_ids[0] >= 0 and self.sorted_ids[-1] < 10_000_000:
            self._lut = np.full(int(self.sorted_ids[-1]) + 1, -1, dtype=np.int64)
            self._lut[self.ids] = np.arange(self.n)

    def index(self, labels: np.ndarray) -> np.ndarray:
        """``int64[N]`` action ids -> ``int64[N]`` column in ``ids``, -1 for actions outside the label map."""
        if self._lut is not None:
            lut = self._lut
            inside = (labels >= 0) & (labels < len(lut))
            return np.where(inside, lut[np.where(inside, labels, 0)], -1)
        pos = np.minimum(np.searchsorted(self.sorted_ids, labels), self.n - 1)
        return np.where(self.sorted_ids[pos] == labels, self.order[pos], -1).astype(np.int64)


def frame_map(
    *,
    gt: BoxRows,
    detections: BoxRows,
    labelmap: LabelMap,
    protocol: Union[str, Protocol] = DEFAULT_PROTOCOL,
    excluded_keys: Optional[np.ndarray] = None,
) -> FrameMAPResult:
    """Frame-mAP@0.5 of ``detections`` against ``gt``.

    Args:
        gt: ground-truth rows in file order (one row per box and action), all of them: rows with
            actions outside ``labelmap`` are ignored here, but their keys still count as keys of
            the ground-truth file (a protocol may ignore detections on other keys).
        detections: detection rows in file order (one row per box and action, with scores),
            boxes with x2 <= x1 or y2 <= y1 included: they are dropped here, after the per-key
            cut, as the reference drops them.
        labelmap: the classes to evaluate; rows with other actions are ignored.
        protocol: a :class:`~ava_detect.evaluation.protocols.Protocol` or its name in
            :data:`~ava_detect.evaluation.protocols.PROTOCOLS` (see the module docstring).
        excluded_keys: ``int64[E]`` key codes (same coding as ``gt.keys``) to leave out.

    Returns:
        :class:`FrameMAPResult`.
    """
    return frame_map_matching(gt=gt, detections=detections, labelmap=labelmap, protocol=protocol,
                              excluded_keys=excluded_keys).result


@dataclass
class Matching:
    """What :func:`frame_map` decided for each detection: the result and the matching behind it.

    Attributes:
        result: the :class:`FrameMAPResult`.
        detections: the detection rows given (all of them).
        order: ``int64[D]`` indices into ``detections`` of the detections that took part (after
            the label map, exclusions, the protocol's cut and dropped boxes), in processing order.
        det_class: ``int64[D]`` their columns in ``class_ids``.
        tp: ``bool[D]`` true positives.
        best_gt: ``int64[D]`` index into ``gt`` of the ground-truth box of the same key and class
            with the highest IoU (the one a true positive took); -1 when the key has none of that class.
        gt: the ground-truth rows that took part (label-map classes, excluded keys left out);
            ``gt_class`` ``int64[G]`` their columns in ``class_ids``.
        class_ids: ``int64[C]`` the label map's class ids, in label-map order.
    """

    result: FrameMAPResult
    detections: BoxRows
    order: np.ndarray
    det_class: np.ndarray
    tp: np.ndarray
    best_gt: np.ndarray
    gt: BoxRows
    gt_class: np.ndarray
    class_ids: np.ndarray


def frame_map_matching(
    *,
    gt: BoxRows,
    detections: BoxRows,
    labelmap: LabelMap,
    protocol: Union[str, Protocol] = DEFAULT_PROTOCOL,
    excluded_keys: Optional[np.ndarray] = None,
) -> Matching:
    """:func:`frame_map` (same arguments), keeping the per-detection matching (:class:`Matching`)
    for reports that look at individual detections."""
    rules = get_protocol(protocol)
    classes = _Classes(labelmap)
    excluded = np.asarray(excluded_keys if excluded_keys is not None else [], dtype=np.int64)
    # keys of the ground-truth file, whatever their actions (see Protocol.keys_without_gt)
    gt_keys_all = np.unique(gt.keys)
    gt, gt_cls = _ground_truth_to_evaluate(gt, classes, excluded)
    order, det_key, det_cls, key_values = _detections_to_evaluate(detections, classes, excluded, gt_keys_all, rules)
    tp, best_gt = _true_positives(detections, order, det_key, det_cls, gt, gt_cls, key_values, classes.n, rules)
    del det_key
    result = _summarise(detections.scores[order], tp, det_cls, gt_cls, classes, rules, labelmap)
    return Matching(result=result, detections=detections, order=order, det_class=det_cls, tp=tp, best_gt=best_gt,
                    gt=gt, gt_class=gt_cls, class_ids=classes.ids)


def _ground_truth_to_evaluate(gt: BoxRows, classes: _Classes, excluded: np.ndarray) -> Tuple[BoxRows, np.ndarray]:
    """Ground-truth rows of the label map's classes outside excluded keys, and their class columns."""
    gt_cls = classes.index(gt.labels)
    keep = gt_cls >= 0
    if not keep.all():
        logger.info("%d ground-truth rows whose action is not in the label map are ignored", int((~keep).sum()))
    if len(excluded):
        keep &= ~np.isin(gt.keys, excluded)
    return gt.take(np.flatnonzero(keep)), gt_cls[keep]


def _detections_to_evaluate(detections: BoxRows, classes: _Classes, excluded: np.ndarray, gt_keys_all: np.ndarray,
                            rules: Protocol) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The detections that take part, in processing order.

    Returns:
        ``(order, det_key, det_cls, key_values)``: ``order`` ``int64[D]`` indices into
        ``detections`` (keys in first-appearance order, then the protocol's order per key);
        ``det_key`` ``int64[D]`` their key ranks, ``det_cls`` their class columns;
        ``key_values`` ``int64[K]`` the key code of each rank.
    """
    det_cls_all = classes.index(detections.labels)
    known = det_cls_all >= 0
    rows = np.arange(len(detections), dtype=np.int64) if known.all() else np.flatnonzero(known)
    if len(rows) < len(detections):
        logger.info("%d detections whose action is not in the label map are ignored", len(detections) - len(rows))
    del known

    # Keys in first-appearance order among the label map's rows (the order the reference
    # adds images in).
    if len(rows):
        keys = detections.keys if len(rows) == len(detections) else detections.keys[rows]
        ranks, key_values = pd.factorize(keys, sort=False)
        ranks = ranks.astype(np.int64, copy=False)
        del keys
    else:
        ranks, key_values = np.zeros(0, np.int64), np.zeros(0, np.int64)
    key_values = np.asarray(key_values, dtype=np.int64)
    key_ok = np.ones(len(key_values), dtype=bool)
    if len(excluded):
        key_ok &= ~np.isin(key_values, excluded)
    ignore_other_keys = rules.keys_without_gt == "ignore"
    if ignore_other_keys:
        key_ok &= np.isin(key_values, gt_keys_all)
    if not key_ok.all():
        row_ok = np.flatnonzero(key_ok[ranks])
        logger.info("%d detections on excluded keys%s are ignored", len(rows) - len(row_ok),
                    " or keys absent from the ground truth" if ignore_other_keys else "")
        rows, ranks = rows[row_ok], ranks[row_ok]
        del row_ok

    # Processing order: keys in first-appearance order, then the protocol's order per key.
    if rules.order == "score" or rules.max_per_key is not None:
        order, det_key = _score_selection(detections, rows, ranks, rules.max_per_key)
        if rules.order == "input":  # the kept rows, back in file order per key
            back = np.lexsort((order, det_key))
            order, det_key = order[back], det_key[back]
    else:
        by_key = np.argsort(ranks, kind="stable")
        order, det_key = rows[by_key], ranks[by_key]
        del by_key
    del rows, ranks
    valid = (detections.x1[order] < detections.x2[order]) & (detections.y1[order] < detections.y2[order])
    if not valid.all():
        logger.warning("ignored %d detections whose box has x2 <= x1 or y2 <= y1 (as the reference does)",
                       int((~valid).sum()))
        order, det_key = order[valid], det_key[valid]
    return order, det_key, det_cls_all[order], key_values


def _true_positives(detections: BoxRows, order: np.ndarray, det_key: np.ndarray, det_cls: np.ndarray, gt: BoxRows,
                    gt_cls: np.ndarray, key_values: np.ndarray, n_classes: int, rules: Protocol
                    ) -> Tuple[np.ndarray, np.ndarray]:
    """``(tp bool[D], best_gt int64[D])``: which detections (in processing order) are true
    positives, and the index into ``gt`` of each one's highest-IoU box of its key and class (-1: none)."""
    # Ground-truth keys in the detections' coding (keys without detections after them).
    gt_key = pd.Index(key_values).get_indexer(gt.keys).astype(np.int64) if len(key_values) else \
        np.full(len(gt), -1, dtype=np.int64)
    missing = gt_key < 0
    if missing.any():
        gt_key[missing] = len(key_values) + pd.factorize(gt.keys[missing])[0]

    # Ground-truth boxes per (key, class), in the protocol's order (file order; for the
    # official reader, a stable sort by descending 'score' of its heap's array, which matters
    # only for equal IoUs and is replayed for those keys below).
    by_score = rules.order == "score"
    gt_rank = np.arange(len(gt), dtype=np.int64)
    if by_score and len(gt):
        gt_rank = np.lexsort((gt_rank, -gt.scores, gt_key)).argsort()  # per key: -score, file order
    det_boxes = _LazyRows(detections, order)
    tp, tied, best_gt = _match_all(det_boxes, det_key, det_cls, gt, gt_key, gt_cls, gt_rank, n_classes)
    if by_score and len(tied):
        keys_to_replay = np.unique(det_key[tied])
        for k in keys_to_replay.tolist():
            rows = np.flatnonzero(gt_key == k)
            ordered = _heap_order(gt, rows, 0)
            gt_rank[ordered] = gt_rank[rows].min() + np.arange(len(ordered))
        logger.debug("ground-truth order replayed with the reference heap for %d keys", len(keys_to_replay))
        tp, _, best_gt = _match_all(det_boxes, det_key, det_cls, gt, gt_key, gt_cls, gt_rank, n_classes)
    return tp, best_gt


def _summarise(det_scores: np.ndarray, tp: np.ndarray, det_cls: np.ndarray, gt_cls: np.ndarray, classes: _Classes,
               rules: Protocol, labelmap: LabelMap) -> FrameMAPResult:
    """Per-class AP (the reference's concatenation: processing order restricted to the class) and the mean."""
    n_classes = classes.n
    num_gt_arr = np.bincount(gt_cls, minlength=n_classes)
    by_class = np.argsort(det_cls.astype(np.int16 if n_classes < 32000 else np.int64), kind="stable")
    c_starts = np.searchsorted(det_cls[by_class], np.arange(n_classes + 1))
    per_class_ap: Dict[int, float] = {}
    num_gt: Dict[int, int] = {}
    num_det: Dict[int, int] = {}
    precision: Dict[int, np.ndarray] = {}
    recall: Dict[int, np.ndarray] = {}
    ap_by_id = np.full(n_classes, np.nan)
    for ci, cid in enumerate(classes.ids.tolist()):
        idx = by_class[c_starts[ci]:c_starts[ci + 1]]
        num_gt[cid] = int(num_gt_arr[ci])
        num_det[cid] = int(len(idx))
        if num_gt_arr[ci] == 0:
            per_class_ap[cid] = math.nan
            continue
        ap, p, r = average_precision(det_scores[idx], tp[idx], int(num_gt_arr[ci]))
        per_class_ap[cid] = ap
        ap_by_id[ci] = ap
        corners = np.flatnonzero(np.r_[True, r[1:] != r[:-1]] & (r > 0)) if len(r) else np.zeros(0, np.int64)
        precision[cid] = p[corners]
        recall[cid] = r[corners]
    if len(det_scores) == 0:
        logger.warning("there are no detections to evaluate: every class with ground truth gets AP 0")
    if not np.isfinite(ap_by_id).any():
        logger.warning("no class of the label map has ground truth: mAP is NaN")
        m = math.nan
    else:
        # np.nanmean over the reference's array, indexed by class id - 1 (same summation order)
        sorted_ids = classes.sorted_ids
        if len(sorted_ids) and sorted_ids[0] >= 1 and sorted_ids[-1] <= 100_000:
            by_id = np.full(int(sorted_ids[-1]), np.nan)
            by_id[classes.ids - 1] = ap_by_id
        else:
            by_id = ap_by_id[classes.order]
        m = float(np.nanmean(by_id))
    return FrameMAPResult(mAP=m, per_class_ap=per_class_ap, num_gt=num_gt, num_detections=num_det,
                          protocol=rules.name, labelmap=labelmap, precision=precision, recall=recall)


class _LazyRows:
    """``rows.take(order[index])`` on demand: detections in processing order without copying
    all of them."""

    def __init__(self, rows: BoxRows, order: np.ndarray):
        self.rows = rows
        self.order = order

    def take(self, index: np.ndarray) -> BoxRows:
        return self.rows.take(self.order[index])


def _match_all(det_boxes, det_key: np.ndarray, det_cls: np.ndarray, gt: BoxRows, gt_key: np.ndarray,
               gt_cls: np.ndarray, gt_rank: np.ndarray, n_classes: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_match` with ``best_gt`` as indices into ``gt``."""
    gt_group = gt_key * n_classes + gt_cls
    gt_sort = np.lexsort((gt_rank, gt_group))
    det_group = det_key * n_classes + det_cls
    tp, tied, best = _match(det_boxes, det_group, gt.take(gt_sort), gt_group[gt_sort])
    found = best >= 0
    best[found] = gt_sort[best[found]]
    return tp, tied, best


# --------------------------------------------------------------------------------------
# From files
# --------------------------------------------------------------------------------------


def rows_from_frames(gt: pd.DataFrame, detections: pd.DataFrame, excluded: Optional[Iterable[str]] = None
                     ) -> Tuple[BoxRows, BoxRows, np.ndarray]:
    """Reader DataFrames (:func:`~ava_detect.data.ava_files.read_ground_truth` and
    :func:`~ava_detect.data.ava_files.read_detections`) and excluded image keys -> the inputs of
    :func:`frame_map` (``gt``, ``detections``, ``excluded_keys``), with one key coding."""
    ex_videos, ex_seconds = exclusion_arrays(excluded)
    (gt_keys, det_keys, ex_keys), coding = encode_keys_with_coding([
        (gt["video_id"], gt["second"].to_numpy()),
        (detections["video_id"], detections["second"].to_numpy()),
        (ex_videos, ex_seconds),
    ])
    if "person_id" in gt.columns:
        pid = gt["person_id"].to_numpy()
        gt_scores = np.where(pid < 0, 1.0, pid.astype(np.float64))
    else:
        gt_scores = np.ones(len(gt))

    def col(df: pd.DataFrame, name: str, dtype) -> np.ndarray:
        return df[name].to_numpy(dtype=dtype)

    gt_rows = BoxRows(gt_keys, *(col(gt, c, np.float64) for c in ("x1", "y1", "x2", "y2")),
                      col(gt, "action_id", np.int64), gt_scores, coding)
    det_rows = BoxRows(det_keys, *(col(detections, c, np.float64) for c in ("x1", "y1", "x2", "y2")),
                       col(detections, "action_id", np.int64), col(detections, "score", np.float64), coding)
    return gt_rows, det_rows, ex_keys


def read_inputs(
    *,
    gt_path: PathLike,
    pred_path: PathLike,
    exclusions_path: Optional[PathLike] = None,
) -> Tuple[BoxRows, BoxRows, np.ndarray]:
    """Read the files of an evaluation once -> ``(gt, detections, excluded_keys)`` for
    :func:`frame_map` (which can then run with several label maps or protocols).

    Every row is kept as written (no clipping, no merging of duplicate rows, degenerate
    detection boxes included): the reference evaluators see them that way.

    Raises:
        AvaDetectError: a malformed row (with file:line), a NaN or infinite score, a missing file,
            ground truth without rows.
    """
    from ava_detect.data.ava_files import read_detections, read_exclusions, read_ground_truth

    excluded = read_exclusions(exclusions_path) if exclusions_path is not None else set()
    # all ground-truth rows: their keys matter even for actions outside the label map (see frame_map)
    gt_df = read_ground_truth(gt_path, None, raw=True)
    if len(gt_df) == 0:
        raise AvaDetectError("the ground-truth file has no rows: there is nothing to evaluate against", gt_path)
    # all detection rows, degenerate boxes included: frame_map drops them where the reference does
    det_df = read_detections(pred_path, None, degenerate="keep", raw=True)
    if len(det_df) == 0:
        logger.warning("%s: the predictions file has no detections", pred_path)
    return rows_from_frames(gt_df, det_df, excluded)


def load_labelmap(labelmap: Optional[Union[LabelMap, PathLike]]) -> LabelMap:
    """A :class:`LabelMap`, a label-map file, or None for the packaged 60-class official list."""
    from ava_detect.data.labelmaps import resolve_labelmap

    if isinstance(labelmap, LabelMap):
        return labelmap
    return resolve_labelmap(None if labelmap is None else os.fspath(labelmap), kind="evaluated")


def evaluate_files(
    *,
    gt_path: PathLike,
    pred_path: PathLike,
    labelmap: Optional[Union[LabelMap, PathLike]] = None,
    exclusions_path: Optional[PathLike] = None,
    protocol: Union[str, Protocol] = DEFAULT_PROTOCOL,
) -> FrameMAPResult:
    """Frame-mAP of an AVA detection CSV against a ground-truth CSV.

    Args:
        gt_path: ground truth, ``video_id,timestamp,x1,y1,x2,y2,action_id[,person_id]``.
        pred_path: detections, ``video_id,timestamp,x1,y1,x2,y2,action_id,score``.
        labelmap: a :class:`LabelMap` or a label-map file; default: the packaged 60-class list
            of the official evaluation.
        exclusions_path: optional excluded timestamps, ``video_id,timestamp``.
        protocol: a :class:`~ava_detect.evaluation.protocols.Protocol` or its name
            (``"activitynet"``, the default, or ``"pyslowfast"``).

    Raises:
        AvaDetectError: a malformed row (with file:line), a NaN or infinite score, a label map
            with a duplicate id, a missing file, an unknown protocol.
    """
    check_protocol(protocol)
    labelmap = load_labelmap(labelmap)
    gt, det, excluded = read_inputs(gt_path=gt_path, pred_path=pred_path, exclusions_path=exclusions_path)
    return frame_map(gt=gt, detections=det, labelmap=labelmap, protocol=protocol, excluded_keys=excluded)
