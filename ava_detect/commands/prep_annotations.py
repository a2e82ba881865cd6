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

The time axis (which seconds are keyframes, where a video's time 0 is) is AVA's unless --config
names a dataset config with its own (data.start_second, data.keyframe_range, data.fps).

Example:
  ava-detect prep annotations --split train --root data/ava
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ava_detect.commands.common import add_config_arguments, bounded_float
from ava_detect.errors import AvaDetectError


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
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ava_detect.commands.common import config_from_args
    from ava_detect.data.layout import DatasetLayout
    from ava_detect.data.time_axis import TimeAxis
    from ava_detect.data.video import FrameFolder, VideoFolder
    from ava_detect.prep.annotations import check_split, split_files, write_labelled_boxes

    root = Path(args.root)
    split = args.split
    files = split_files(root, split, gt=args.gt, boxes=args.boxes, exclusions=args.exclusions, labelmap=args.labelmap,
                        out=args.out)
    if not 0 <= args.iou <= 1:
        raise AvaDetectError(f"--iou must be in [0, 1], got {args.iou}")
    source = FrameFolder(Path(args.frames)) if args.frames else VideoFolder(
        Path(args.videos) if args.videos else DatasetLayout(root).videos_dir)
    time_axis = TimeAxis.from_config(config_from_args(args).data)
    c = check_split(files, source, time_axis)
    gt, gt_rows, labelmap = c.gt, c.gt_rows, c.labelmap

    print(f"{split}: {files.gt}")
    print(f"  label map        {files.labelmap} ({len(labelmap)} classes)")
    print(f"  videos           {len(set(gt['video_id'].astype(str)))} annotated, {len(c.frames)} found in {source.root}")
    print(f"  keys             {len(c.keys)} ({len(c.keys) - c.excluded_in_gt} not excluded)")
    print(f"  boxes            {len(gt)} ground-truth boxes, {len(gt_rows)} labels "
          f"({len(gt_rows) / max(len(gt), 1):.2f} per box)")
    print(f"  excluded keys    {len(c.excluded)} in {files.exclusions if files.exclusions else '(no file)'}, "
          f"{c.excluded_in_gt} of them annotated")
    print(f"  keys without video  {int(c.without_video.sum())} ({len(c.missing)} videos missing)")
    print(f"  keys outside {time_axis.describe_range()}  {int(c.outside.sum())} (skipped in training)")
    print(f"  keys past video end {int(c.beyond.sum())} (clamped to the last frame when read)")
    if c.pred is not None:
        print(f"  predicted boxes  {len(c.pred)} in {files.boxes} (score >= 0.8: {int((c.pred['score'] >= 0.8).sum())})")
    print("  labels per class:")
    counts = gt_rows["action_id"].value_counts()
    for class_id in labelmap.ids:
        print(f"    {class_id:>4}  {labelmap.name(class_id)[:40]:<40} {int(counts.get(class_id, 0)):>8}")

    if c.missing and not args.skip_missing_videos:
        shown = ", ".join(c.missing[:10]) + (", ..." if len(c.missing) > 10 else "")
        raise AvaDetectError(f"{len(c.missing)} videos of annotated keys are missing (first: {shown}); prepare them "
                             f"or pass --skip-missing-videos", source.root)

    if c.pred is None:
        print("no predicted boxes: no labelled training file written")
        return 0
    n = write_labelled_boxes(c.pred, gt, files.out, iou_threshold=args.iou, min_score=args.min_score)
    print(f"wrote {files.out}: {n['boxes']} boxes, {n['boxes'] - n['negatives']} labelled from ground truth "
          f"(IoU >= {args.iou:g}; {n['label_rows']} label rows), {n['negatives']} negatives")
    return 0
