"""Checking a split's AVA annotation files against its videos, and labelling detected boxes from
the ground truth (the library behind ``ava-detect prep annotations``).

The labelled file is the one PySlowFast's recipes train on (its
``ava_detection_train_boxes_and_labels_include_negative_v2.2.csv``): each detected person box takes
the labels of the ground-truth box it overlaps most when their IoU is at least a threshold, one row
per label ``video_id,timestamp,x1,y1,x2,y2,action_id,score``; other boxes are negatives, one row with
an empty action ``video_id,timestamp,x1,y1,x2,y2,,score``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Set

import numpy as np

from ava_detect.data.layout import DatasetLayout
from ava_detect.io_paths import IOPaths


@dataclass(frozen=True)
class SplitFiles:
    """The files of one split: ground truth, optional predicted boxes and exclusions, the label map,
    and where the labelled boxes go."""

    gt: Path
    boxes: Optional[Path]
    exclusions: Optional[Path]
    labelmap: Path
    out: Path


def split_files(root: Path, split: str, *, gt: Optional[str] = None, boxes: Optional[str] = None,
                exclusions: Optional[str] = None, labelmap: Optional[str] = None,
                out: Optional[str] = None) -> SplitFiles:
    """The files of ``split``: those given, else the dataset layout's under ``root`` (predicted boxes,
    exclusions and label map only if present; without a label map, AVA v2.2's 80 classes).

    Raises:
        AvaDetectError: ``out`` would overwrite one of the inputs.
    """
    from ava_detect.data.constants import labelmap_80_path

    layout = DatasetLayout(root)

    def given_or_present(value: Optional[str], default: Path) -> Optional[Path]:
        return Path(value) if value else (default if default.is_file() else None)

    files = SplitFiles(
        gt=Path(gt) if gt else layout.ground_truth(split),
        boxes=given_or_present(boxes, layout.predicted_boxes(split)),
        exclusions=given_or_present(exclusions, layout.exclusions(split)),
        labelmap=given_or_present(labelmap, layout.labelmap) or labelmap_80_path(),
        out=Path(out) if out else layout.labelled_boxes(split),
    )
    IOPaths().input("--gt", files.gt).input("--boxes", files.boxes).input("--exclusions", files.exclusions) \
        .input("--labelmap", files.labelmap).output("--out", files.out).check()
    return files


@dataclass
class SplitCheck:
    """What :func:`check_split` found.

    Attributes:
        labelmap: the split's label map.
        gt_rows: ground-truth rows (one per label), ``gt``: one row per box (``labels`` tuples).
        excluded: excluded keys; ``pred``: predicted boxes, one row per box, or None.
        keys: the annotated image keys, sorted.
        videos: ids of the annotated videos and of the videos with predicted boxes, sorted.
        missing: those of ``videos`` without a video (or frame folder).
        frames: video id -> frames, for the videos found.
        without_video, outside, beyond: ``bool[len(keys)]``: keys of a missing video; keys outside
            AVA's keyframe seconds 902..1798; keys past the end of their video.
        excluded_in_gt: annotated keys that are excluded.
    """

    labelmap: object
    gt_rows: object
    gt: object
    excluded: Set[str]
    pred: object
    keys: List[str]
    videos: List[str]
    missing: List[str]
    frames: Dict[str, int]
    without_video: np.ndarray
    outside: np.ndarray
    beyond: np.ndarray
    excluded_in_gt: int


def check_split(files: SplitFiles, source, time_axis=None) -> SplitCheck:
    """Read ``files`` (every row checked: a bad row raises with file:line) and check the keys
    against ``source`` (a :class:`~ava_detect.data.video.VideoFolder` or ``FrameFolder``) and the
    dataset's ``time_axis`` (:class:`~ava_detect.data.time_axis.TimeAxis`; default AVA's)."""
    from ava_detect.data.ava_files import group_boxes, read_exclusions, read_ground_truth, read_labelmap, read_predicted_boxes
    from ava_detect.data.time_axis import AVA
    from ava_detect.structures import image_key

    time_axis = time_axis or AVA
    labelmap = read_labelmap(files.labelmap)
    gt_rows = read_ground_truth(files.gt, labelmap)
    gt = group_boxes(gt_rows)
    excluded: Set[str] = read_exclusions(files.exclusions) if files.exclusions is not None else set()
    pred = group_boxes(read_predicted_boxes(files.boxes)) if files.boxes is not None else None

    gt_keys = sorted({image_key(v, s) for v, s in zip(gt["video_id"].astype(str), gt["second"])})
    videos = sorted(set(gt["video_id"].astype(str)) | (set(pred["video_id"].astype(str)) if pred is not None else set()))
    missing = [v for v in videos if not source.exists(v)]
    frames: Dict[str, int] = {v: source.num_frames(v) for v in videos if v not in set(missing)}

    key_video = np.array([k.rpartition(",")[0] for k in gt_keys], dtype=object)
    key_second = np.array([int(k.rpartition(",")[2]) for k in gt_keys], dtype=np.int64)
    without_video = np.isin(key_video, np.array(missing, dtype=object)) if missing else np.zeros(len(gt_keys), bool)
    outside = ~time_axis.is_keyframe(key_second)
    beyond = np.array([v in frames and time_axis.frame_index(int(s)) >= frames[v] for v, s in zip(key_video, key_second)],
                      dtype=bool)
    return SplitCheck(labelmap=labelmap, gt_rows=gt_rows, gt=gt, excluded=excluded, pred=pred, keys=gt_keys,
                      videos=videos, missing=missing, frames=frames, without_video=without_video, outside=outside,
                      beyond=beyond, excluded_in_gt=len(excluded & set(gt_keys)))


def labelled_box_lines(boxes, ground_truth, *, iou_threshold: float) -> List[str]:
    """Predicted boxes (one row per box) + ground truth (one row per box, with ``labels``) -> CSV lines.

    A box with a ground-truth box of IoU >= ``iou_threshold`` (the best one) gets one line per
    label of it; other boxes get one line with an empty action (a negative).
    """
    from ava_detect.data.dataset import match_to_ground_truth

    best, iou = match_to_ground_truth(boxes, ground_truth)
    gt_labels = ground_truth["labels"].to_numpy() if len(ground_truth) else np.array([], dtype=object)
    coords = boxes[["x1", "y1", "x2", "y2"]].to_numpy(np.float64)
    lines = []
    for k, (vid, sec, score) in enumerate(zip(boxes["video_id"].astype(str), boxes["second"], boxes["score"])):
        head = f"{vid},{int(sec):04d}," + ",".join(f"{c:.3f}" for c in coords[k])
        if best[k] >= 0 and iou[k] >= iou_threshold:
            lines.extend(f"{head},{int(a)},{float(score):.9g}\n" for a in gt_labels[best[k]])
        else:
            lines.append(f"{head},,{float(score):.9g}\n")
    return lines


def write_labelled_boxes(pred, ground_truth, out: Path, *, iou_threshold: float,
                         min_score: float = 0.0) -> Dict[str, int]:
    """Write the labelled boxes of ``pred`` (predicted boxes with at least ``min_score``, one row per
    box) against ``ground_truth`` (one row per box) to ``out``, atomically (:func:`labelled_box_lines`).

    Returns:
        ``{"boxes", "label_rows", "negatives"}``: boxes written, rows with an action, negatives.
    """
    from ava_detect.io import atomic_open

    pred = pred[pred["score"].to_numpy() >= min_score].reset_index(drop=True)
    lines = labelled_box_lines(pred, ground_truth.reset_index(drop=True), iou_threshold=iou_threshold)
    positives = sum(1 for line in lines if not line.split(",")[6] == "")
    with atomic_open(out, "w", encoding="utf-8", newline="") as f:
        f.writelines(lines)
    return {"boxes": len(pred), "label_rows": positives, "negatives": len(lines) - positives}
