"""Validate a split's AVA annotation files against the videos, summarise them, and label detected boxes.

Reads the split's ground truth, predicted person boxes, excluded timestamps and label map (every
row is checked: a bad row stops with file:line and what was expected), checks them against the
prepared videos (or frame folders), and prints a summary: videos, keys, boxes, labels per
class, excluded keys, keys without video, keys past the end of their video.

Then writes the training file PySlowFast's recipes use (its
`ava_detection_train_boxes_and_labels_include_negative_v2.2.csv`), from any predicted-box CSV:
each detected person box takes the labels of the ground-truth box it overlaps most when their
IoU is >= --iou (0.9), one row per label `video_id,timestamp,x1,y1,x2,y2,action_id,score`;
other boxes are negatives, one row with an empty action `video_id,timestamp,x1,y1,x2,y2,,score`.

Videos missing for annotated keys are an error listing the first ids, unless
--skip-missing-videos (then they are counted in the summary).

Example:
  ava-detect prep annotations --split train --root data/ava
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Optional, Set

import numpy as np

from ava_detect.commands.common import bounded_float
from ava_detect.errors import AvaDetectError
from data_prep import step_main


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split", required=True, choices=("train", "val"), help="which split")
    parser.add_argument("--root", default=".", metavar="DIR",
                        help="dataset folder; the defaults below are relative to it (default: .)")
    parser.add_argument("--gt", metavar="CSV", help="ground truth (default: annotations/<split>.csv)")
    parser.add_argument("--boxes", metavar="CSV",
                        help="predicted person boxes (default: annotations/<split>_predicted_boxes.csv, if present)")
    parser.add_argument("--exclusions", metavar="CSV",
                        help="excluded timestamps (default: annotations/<split>_excluded_timestamps.csv, if present)")
    parser.add_argument("--labelmap", metavar="PBTXT",
                        help="label map (default: annotations/labelmap.pbtxt if present, else AVA v2.2's 80 classes)")
    parser.add_argument("--videos", metavar="DIR", help="prepared videos <video_id>.mp4 (default: videos)")
    parser.add_argument("--frames", metavar="DIR", help="check PySlowFast frame folders here instead of videos")
    parser.add_argument("--skip-missing-videos", action="store_true",
                        help="count keys whose video is missing instead of stopping with an error")
    parser.add_argument("--iou", type=float, default=0.9,
                        help="a box takes the labels of a ground-truth box with IoU >= this (default: 0.9)")
    parser.add_argument("--min-score", type=bounded_float(0, 1), default=0.0,
                        help="only write boxes with at least this score (default: 0, all; training filters later)")
    parser.add_argument("--out", metavar="CSV",
                        help="labelled boxes (default: annotations/<split>_boxes_and_labels_include_negative.csv)")


def _default(root: Path, given: Optional[str], relative: str, required: bool) -> Optional[Path]:
    if given:
        return Path(given)
    path = root / relative
    if path.is_file() or required:
        return path
    return None


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


def run(args: argparse.Namespace) -> int:
    from ava_detect.data.ava_files import (
        group_boxes,
        read_exclusions,
        read_ground_truth,
        read_labelmap,
        read_predicted_boxes,
    )
    from ava_detect.data.constants import (
        FIRST_KEYFRAME_SECOND,
        LAST_KEYFRAME_SECOND,
        SEGMENT_START_SECOND,
        labelmap_80_path,
    )
    from ava_detect.data.video import FrameFolder, VideoFolder
    from ava_detect.io import atomic_open
    from ava_detect.structures import image_key

    root = Path(args.root)
    split = args.split
    gt_path = _default(root, args.gt, f"annotations/{split}.csv", required=True)
    boxes_path = _default(root, args.boxes, f"annotations/{split}_predicted_boxes.csv", required=False)
    excl_path = _default(root, args.exclusions, f"annotations/{split}_excluded_timestamps.csv", required=False)
    labelmap_path = _default(root, args.labelmap, "annotations/labelmap.pbtxt", required=False) or labelmap_80_path()
    out_path = Path(args.out) if args.out else root / f"annotations/{split}_boxes_and_labels_include_negative.csv"
    inputs = [p for p in (gt_path, boxes_path, excl_path, labelmap_path) if p is not None]
    if any(out_path.resolve() == p.resolve() for p in inputs):
        raise AvaDetectError("--out would overwrite an input file; choose another name", out_path)
    if not 0 <= args.iou <= 1:
        raise AvaDetectError(f"--iou must be in [0, 1], got {args.iou}")

    labelmap = read_labelmap(labelmap_path)
    gt_rows = read_ground_truth(gt_path, labelmap)
    gt = group_boxes(gt_rows)
    excluded: Set[str] = read_exclusions(excl_path) if excl_path is not None else set()
    pred = group_boxes(read_predicted_boxes(boxes_path)) if boxes_path is not None else None

    source = FrameFolder(Path(args.frames)) if args.frames else VideoFolder(Path(args.videos) if args.videos else root / "videos")
    gt_keys = sorted({image_key(v, s) for v, s in zip(gt["video_id"].astype(str), gt["second"])})
    videos = sorted(set(gt["video_id"].astype(str)) | (set(pred["video_id"].astype(str)) if pred is not None else set()))
    missing = [v for v in videos if not source.exists(v)]
    frames: Dict[str, int] = {v: source.num_frames(v) for v in videos if v not in set(missing)}

    key_video = np.array([k.rpartition(",")[0] for k in gt_keys], dtype=object)
    key_second = np.array([int(k.rpartition(",")[2]) for k in gt_keys], dtype=np.int64)
    without_video = np.isin(key_video, np.array(missing, dtype=object)) if missing else np.zeros(len(gt_keys), bool)
    outside = (key_second < FIRST_KEYFRAME_SECOND) | (key_second > LAST_KEYFRAME_SECOND)
    beyond = np.array([v in frames and (s - SEGMENT_START_SECOND) * 30 >= frames[v] for v, s in zip(key_video, key_second)],
                      dtype=bool)
    excluded_in_gt = len(excluded & set(gt_keys))

    print(f"{split}: {gt_path}")
    print(f"  label map        {labelmap_path} ({len(labelmap)} classes)")
    print(f"  videos           {len(set(gt['video_id'].astype(str)))} annotated, {len(frames)} found in {source.root}")
    print(f"  keys             {len(gt_keys)} ({len(gt_keys) - excluded_in_gt} not excluded)")
    print(f"  boxes            {len(gt)} ground-truth boxes, {len(gt_rows)} labels "
          f"({len(gt_rows) / max(len(gt), 1):.2f} per box)")
    print(f"  excluded keys    {len(excluded)} in {excl_path if excl_path else '(no file)'}, {excluded_in_gt} of them annotated")
    print(f"  keys without video  {int(without_video.sum())} ({len(missing)} videos missing)")
    print(f"  keys outside {FIRST_KEYFRAME_SECOND}..{LAST_KEYFRAME_SECOND}  {int(outside.sum())} (skipped in training)")
    print(f"  keys past video end {int(beyond.sum())} (clamped to the last frame when read)")
    if pred is not None:
        print(f"  predicted boxes  {len(pred)} in {boxes_path} (score >= 0.8: {int((pred['score'] >= 0.8).sum())})")
    print("  labels per class:")
    counts = gt_rows["action_id"].value_counts()
    for class_id in labelmap.ids:
        print(f"    {class_id:>4}  {labelmap.name(class_id)[:40]:<40} {int(counts.get(class_id, 0)):>8}")

    if missing and not args.skip_missing_videos:
        shown = ", ".join(missing[:10]) + (", ..." if len(missing) > 10 else "")
        raise AvaDetectError(f"{len(missing)} videos of annotated keys are missing (first: {shown}); prepare them "
                             f"or pass --skip-missing-videos", source.root)

    if pred is None:
        print("no predicted boxes: no labelled training file written")
        return 0
    pred = pred[pred["score"].to_numpy() >= args.min_score].reset_index(drop=True)
    lines = labelled_box_lines(pred, gt.reset_index(drop=True), iou_threshold=args.iou)
    positives = sum(1 for line in lines if not line.split(",")[6] == "")
    with atomic_open(out_path, "w", encoding="utf-8", newline="") as f:
        f.writelines(lines)
    negatives = len(lines) - positives
    print(f"wrote {out_path}: {len(pred)} boxes, {len(pred) - negatives} labelled from ground truth "
          f"(IoU >= {args.iou:g}; {positives} label rows), {negatives} negatives")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    return step_main("annotations", __doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
