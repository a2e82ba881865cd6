"""Frame-mAP@0.5 of AVA-format detections, exactly as the official AVA evaluators compute it.

Protocols (--protocol): `activitynet` (default; the official challenge script: top 50 detections
per keyframe, keyframes absent from the ground truth ignored) and `pyslowfast` (PySlowFast's
evaluation: every detection, detections on keyframes without ground truth are false positives).

Prints the mAP, the official 60-class mAP when the label map has all 80 AVA classes, the mean AP
per label type and a per-class table. Example:

  ava-detect eval --gt ava_val_v2.2.csv --pred detections.csv \
      --exclusions ava_val_excluded_timestamps_v2.2.csv --json result.json --plots plots/

With --html it also writes the report page (one self-contained file): per-class table and
curves, the highest-scoring false positives and the missed boxes of each class (on thumbnails of
their keyframes with --videos), label confusions, per-video mAP.
"""

from __future__ import annotations

import argparse

from ava_detect.commands.common import bounded_int
from ava_detect.data.constants import SEGMENT_START_SECOND
from ava_detect.evaluation.protocols import DEFAULT_PROTOCOL, PROTOCOLS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gt", required=True, metavar="GT.csv",
                        help="ground truth: video_id,timestamp,x1,y1,x2,y2,action_id[,person_id]")
    parser.add_argument("--pred", required=True, metavar="PRED.csv",
                        help="detections: video_id,timestamp,x1,y1,x2,y2,action_id,score")
    parser.add_argument("--labelmap", metavar="MAP",
                        help="label map (.pbtxt, either dialect); default: the official 60-class list")
    parser.add_argument("--exclusions", metavar="EX.csv", help="excluded timestamps: video_id,timestamp")
    parser.add_argument("--protocol", default=DEFAULT_PROTOCOL, choices=list(PROTOCOLS),
                        help=f"evaluation rules to reproduce (default: {DEFAULT_PROTOCOL})")
    parser.add_argument("--json", metavar="OUT.json", help="also write the result as JSON")
    parser.add_argument("--plots", metavar="DIR", help="also write per_class_ap.png and precision_recall.png here")
    parser.add_argument("--html", metavar="OUT.html", help="also write the report page (one self-contained file)")
    parser.add_argument("--videos", metavar="DIR",
                        help="videos <video_id>.mp4 (or .mkv, .webm, .avi, ...): thumbnails of the report's examples")
    parser.add_argument("--second-offset", type=bounded_int(0), default=SEGMENT_START_SECOND, metavar="S",
                        help=f"movie second at time 0 of each video (default: {SEGMENT_START_SECOND}, prepared AVA "
                             f"videos; 0: your own clips)")
    parser.add_argument("--max-examples", type=bounded_int(0, 10000), default=12, metavar="N",
                        help="false positives and misses shown per class on the report page (default: 12)")


def _check_arguments(args: argparse.Namespace) -> None:
    """Refuse outputs that are inputs or cannot be written (:class:`~ava_detect.io_paths.IOPaths`),
    and a --videos that is not a folder."""
    from pathlib import Path

    from ava_detect.errors import AvaDetectError
    from ava_detect.evaluation.report import PLOT_FILES
    from ava_detect.io_paths import IOPaths

    IOPaths().input("--gt", args.gt).input("--pred", args.pred).input("--labelmap", args.labelmap) \
        .input("--exclusions", args.exclusions).input("--videos", args.videos).output("--json", args.json) \
        .output("--html", args.html).folder("--plots", args.plots, writes=PLOT_FILES).check()
    if args.videos and not Path(args.videos).is_dir():
        raise AvaDetectError(f"--videos {args.videos}: expected a folder of videos, found none there")


def run(args: argparse.Namespace) -> int:
    import time

    from ava_detect.evaluation.frame_map import frame_map, frame_map_matching, load_labelmap, read_inputs
    from ava_detect.evaluation.report import format_report, is_full_ava_labelmap, write_json, write_plots

    _check_arguments(args)
    start = time.perf_counter()
    labelmap = load_labelmap(args.labelmap)
    gt, det, excluded = read_inputs(gt_path=args.gt, pred_path=args.pred, exclusions_path=args.exclusions)
    matching = frame_map_matching(gt=gt, detections=det, labelmap=labelmap, protocol=args.protocol,
                                  excluded_keys=excluded) if args.html else None
    result = matching.result if matching is not None else \
        frame_map(gt=gt, detections=det, labelmap=labelmap, protocol=args.protocol, excluded_keys=excluded)
    official = None
    if is_full_ava_labelmap(labelmap):
        official = frame_map(gt=gt, detections=det, labelmap=load_labelmap(None), protocol=args.protocol,
                             excluded_keys=excluded)
    print(format_report(result, official_60=official))
    if args.json:
        write_json(args.json, result, official_60=official)
        print(f"wrote {args.json}")
    if args.plots:
        for path in write_plots(args.plots, result):
            print(f"wrote {path}")
    if args.html:
        from ava_detect.evaluation.html_report import write_html_report

        page = write_html_report(args.html, matching, official_60=official,
                                 files={"ground truth": args.gt, "detections": args.pred, "exclusions": args.exclusions,
                                        "videos": args.videos},
                                 videos=args.videos, second_offset=args.second_offset, max_examples=args.max_examples)
        print(f"wrote {page.path} ({page.bytes / 1e6:.1f} MB, {page.thumbnails} thumbnails, {page.seconds:.1f} s)")
    print(f"evaluated in {time.perf_counter() - start:.1f} s")
    return 0
