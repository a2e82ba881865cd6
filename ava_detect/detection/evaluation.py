"""Person-box quality against ground truth: COCO-style AP@0.5 and recall, with pycocotools.

Used by ``ava-detect detect --gt`` to compare detectors and score thresholds (PySlowFast quotes
93.9 AP@0.5 for the person detector behind its AVA boxes). Each keyframe is one COCO image;
the ground-truth boxes are the distinct boxes of each key (rows with identical coordinates are
one person), all of category "person". IoU is pycocotools' (no +1).

Which keyframes count: the keys that were detected, of videos that have ground truth, at
seconds inside that video's range of annotated seconds (so keyframes before or after the
annotated span do not add false positives); annotated keys that were not detected are left out
and counted in the report.
"""

from __future__ import annotations

import contextlib
import io
import math
import logging
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from ava_detect.data.ava_files import BOX_COLUMNS, group_boxes

logger = logging.getLogger(__name__)

#: Score thresholds of the precision / recall table (those below the lowest detected score are left out).
DEFAULT_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


@dataclass
class ThresholdRow:
    """Precision and recall at IoU 0.5 of the boxes with ``score >= threshold``."""

    threshold: float
    detections: int
    true_positives: int
    precision: float
    recall: float


@dataclass
class PersonBoxReport:
    """Result of :func:`evaluate_person_boxes`.

    Attributes:
        ap50: COCO AP at IoU 0.5 (101-point interpolated, up to 100 boxes per key), in [0, 1].
        recall50: COCO recall at IoU 0.5 (same limits), in [0, 1].
        keys: keyframes evaluated; gt_boxes / detections: boxes in them.
        missing_keys: annotated keys (of the evaluated videos) that were not detected, left out.
        table: precision / recall at several score thresholds.
    """

    ap50: float
    recall50: float
    keys: int
    gt_boxes: int
    detections: int
    missing_keys: int
    table: List[ThresholdRow] = field(default_factory=list)

    def format(self) -> str:
        """A readable multi-line summary."""
        lines = [f"person boxes vs ground truth: {self.keys} keyframes, {self.gt_boxes} ground-truth boxes, "
                 f"{self.detections} detections",
                 f"  AP@0.5 {100 * self.ap50:.1f}   recall@0.5 {100 * self.recall50:.1f}   (COCO evaluation, pycocotools)"]
        if self.missing_keys:
            lines.append(f"  {self.missing_keys} annotated keyframes were not detected and are left out")
        if self.table:
            lines.append("  score >=   boxes   precision@0.5   recall@0.5")
            for r in self.table:
                lines.append(f"  {r.threshold:8.2f} {r.detections:7d} {100 * r.precision:15.1f} {100 * r.recall:12.1f}")
        return "\n".join(lines)


def evaluate_person_boxes(
    *,
    ground_truth: pd.DataFrame,
    detections: pd.DataFrame,
    detected_keys: Optional[Iterable[Tuple[str, int]]] = None,
    image_sizes: Optional[Dict[str, Tuple[int, int]]] = None,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> PersonBoxReport:
    """COCO AP@0.5 and recall of person boxes.

    Args:
        ground_truth: rows with ``video_id, second, x1, y1, x2, y2`` normalised (e.g. from
            :func:`~ava_detect.data.ava_files.read_ground_truth`; several rows of one box are one box).
        detections: rows with ``video_id, second, x1, y1, x2, y2, score`` normalised.
        detected_keys: ``(video_id, second)`` of every keyframe that went through the detector (also
            those where it found nobody); None: the keys of ``detections``.
        image_sizes: ``video_id -> (width, height)`` in pixels, to evaluate in pixel units (areas);
            missing videos use 1000 x 1000. IoU does not depend on it.
        thresholds: score thresholds of the precision / recall table.

    Returns:
        :class:`PersonBoxReport`.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = group_boxes(ground_truth[["video_id", "second", *BOX_COLUMNS]]) if len(ground_truth) else ground_truth
    key_id, missing = _evaluated_keys(gt, detections, detected_keys)
    sizes = image_sizes or {}
    gt_anns = _to_coco(gt, key_id, sizes, with_score=False)
    for i, a in enumerate(gt_anns, start=1):
        a["id"] = i
    det_anns = _to_coco(detections, key_id, sizes, with_score=True)
    report = PersonBoxReport(ap50=float("nan"), recall50=float("nan"), keys=len(key_id), gt_boxes=len(gt_anns),
                             detections=len(det_anns), missing_keys=missing)
    if not gt_anns:
        logger.warning("no ground-truth boxes at the detected keyframes: nothing to evaluate")
        return report

    log = io.StringIO()
    with contextlib.redirect_stdout(log):  # pycocotools prints its progress
        coco_gt = COCO()
        coco_gt.dataset = {"images": [{"id": i} for i in key_id.values()], "annotations": gt_anns,
                           "categories": [{"id": 1, "name": "person"}]}
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(det_anns) if det_anns else None
        if coco_dt is not None:
            ev = COCOeval(coco_gt, coco_dt, iouType="bbox")
            ev.params.iouThrs = np.array([0.5])
            ev.params.areaRng = [ev.params.areaRng[0]]
            ev.params.areaRngLbl = ["all"]
            ev.params.maxDets = [100]
            ev.evaluate()
            ev.accumulate()
    logger.debug("pycocotools: %s", log.getvalue().strip().replace("\n", "; "))
    if coco_dt is None:
        report.ap50 = report.recall50 = 0.0
        return report
    precision = ev.eval["precision"][0, :, 0, 0, 0]
    report.ap50 = float(np.mean(precision[precision > -1])) if (precision > -1).any() else 0.0
    recall = float(ev.eval["recall"][0, 0, 0, 0])
    report.recall50 = max(recall, 0.0)

    report.table = _threshold_table(ev, thresholds, len(gt_anns))
    return report


def _evaluated_keys(gt: pd.DataFrame, detections: pd.DataFrame,
                    detected_keys: Optional[Iterable[Tuple[str, int]]]) -> Tuple[Dict[Tuple[str, int], int], int]:
    """The keyframes evaluated: detected ones of videos with ground truth, within each video's annotated
    span -> ``({(video_id, second): COCO image id}, number of annotated keyframes of those videos not detected)``."""
    gt_videos = set(gt["video_id"].astype(str)) if len(gt) else set()
    span: Dict[str, Tuple[int, int]] = {}
    if len(gt):
        g = gt.assign(video_id=gt["video_id"].astype(str)).groupby("video_id")["second"]
        span = {v: (int(lo), int(hi)) for v, lo, hi in zip(g.min().index, g.min().to_numpy(), g.max().to_numpy())}
    if detected_keys is None:
        detected_keys = zip(detections["video_id"].astype(str), detections["second"].astype(int))
    keys = sorted({(str(v), int(s)) for v, s in detected_keys
                   if str(v) in gt_videos and span[str(v)][0] <= int(s) <= span[str(v)][1]})
    key_id = {k: i + 1 for i, k in enumerate(keys)}
    gt_keys = set(zip(gt["video_id"].astype(str), gt["second"].astype(int))) if len(gt) else set()
    missing = len({k for k in gt_keys if k[0] in {v for v, _ in keys} and k not in key_id})
    return key_id, missing


def _to_coco(df: pd.DataFrame, key_id: Dict[Tuple[str, int], int], sizes: Dict[str, Tuple[int, int]], *,
             with_score: bool) -> List[dict]:
    """Rows of ``df`` at the evaluated keys as COCO annotations (``bbox`` in pixels of ``sizes``, 1000 x 1000
    for videos it lacks); ``with_score``: detections (``score``), else ground truth (``area``, ``iscrowd``)."""
    out: List[dict] = []
    if not len(df):
        return out
    ids = [key_id.get((str(v), int(s)), 0) for v, s in zip(df["video_id"].astype(str), df["second"])]
    coords = df[BOX_COLUMNS].to_numpy(np.float64)
    scores = df["score"].to_numpy(np.float64) if with_score else None
    for n, (image_id, c, v) in enumerate(zip(ids, coords, df["video_id"].astype(str))):
        if not image_id:
            continue
        w, h = sizes.get(v, (1000, 1000))
        x, y, bw, bh = c[0] * w, c[1] * h, (c[2] - c[0]) * w, (c[3] - c[1]) * h
        item = {"image_id": image_id, "category_id": 1, "bbox": [x, y, bw, bh]}
        if with_score:
            item["score"] = float(scores[n])
        else:
            item.update(area=bw * bh, iscrowd=0)
        out.append(item)
    return out


def _threshold_table(ev, thresholds: Sequence[float], num_gt: int) -> List[ThresholdRow]:
    """Precision and recall at each score threshold, from one ``COCOeval``'s matches at IoU 0.5."""
    rows: List[ThresholdRow] = []
    # Matches at IoU 0.5 in score order: a box's match does not depend on lower-scored boxes,
    # so the table at each threshold comes from the same matching.
    scores, matched = [], []
    for e in ev.evalImgs:
        if e is None:
            continue
        keep = ~np.asarray(e["dtIgnore"][0], dtype=bool)
        scores.append(np.asarray(e["dtScores"], dtype=np.float64)[keep])
        matched.append(np.asarray(e["dtMatches"][0])[keep] > 0)
    scores_a = np.concatenate(scores) if scores else np.zeros(0)
    matched_a = np.concatenate(matched) if matched else np.zeros(0, dtype=bool)
    lowest = math.floor(float(scores_a.min()) * 1e4) / 1e4 if len(scores_a) else 1.0
    for t in sorted({float(x) for x in thresholds if x > lowest} | {lowest}):
        sel = scores_a >= t
        n, tp = int(sel.sum()), int(matched_a[sel].sum())
        rows.append(ThresholdRow(threshold=t, detections=n, true_positives=tp,
                                         precision=tp / n if n else float("nan"), recall=tp / num_gt))
    return rows
