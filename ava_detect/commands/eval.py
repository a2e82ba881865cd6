"""Frame-mAP@0.5 of AVA-format detections, exactly as the official AVA evaluators compute it.

Protocols (--protocol): `activitynet` (default; the official challenge script: top 50 detections
per keyframe, keyframes absent from the ground truth ignored) and `pyslowfast` (PySlowFast's
evaluation: every detection, detections on keyframes without ground truth are false positives).

Prints the mAP, the official 60-class mAP when the label map has all 80 AVA classes, the mean AP
per label type and a per-class table. Example:

  ava-detect eval --gt ava_val_v2.2.csv --pred detections.csv \
      --exclusions ava_val_excluded_timestamps_v2.2.csv --json result.json --plots plots/
"""

from __future__ import annotations

import argparse

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


def run(args: argparse.Namespace) -> int:
    import time

    from ava_detect.evaluation.frame_map import frame_map, load_labelmap, read_inputs
    from ava_detect.evaluation.report import PLOT_FILES, format_report, is_full_ava_labelmap, write_json, write_plots
    from ava_detect.io_paths import IOPaths

    start = time.perf_counter()
    IOPaths().input("--gt", args.gt).input("--pred", args.pred).input("--labelmap", args.labelmap) \
        .input("--exclusions", args.exclusions).output("--json", args.json) \
        .folder("--plots", args.plots, writes=PLOT_FILES).check()
    labelmap = load_labelmap(args.labelmap)
    gt, det, excluded = read_inputs(gt_path=args.gt, pred_path=args.pred, exclusions_path=args.exclusions)
    result = frame_map(gt=gt, detections=det, labelmap=labelmap, protocol=args.protocol, excluded_keys=excluded)
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
    print(f"evaluated in {time.perf_counter() - start:.1f} s")
    return 0
