"""Detect people at the keyframes of videos and write AVA predicted-box rows (the input of `test` and `train`).
The work is :func:`ava_detect.detection.detect_videos`; this command maps its flags onto it.

Rows: video_id,second,x1,y1,x2,y2,,score (coordinates normalised to [0, 1], no header). The
video id is the file name without its suffix. Keyframe second s is file time s - --second-offset
(default 900: prepared AVA videos start at movie second 900); its picture is the frame shown at
that time. Keyframes: every --every seconds from the start of each video (default 1; as in
`annotate`, seconds, here a whole number since AVA keys are whole seconds), or the seconds
--seconds A-B (AVA: 902-1798), those inside the video.

Resumable: each finished video is kept in a folder beside the output (.OUT.parts/); run the same
command again after an interruption and finished videos are skipped. The output appears only
when all videos are done.

With --gt the boxes are compared with ground-truth boxes (COCO AP@0.5 and recall, pycocotools),
with a precision / recall table over score thresholds, to choose a detector and a threshold
(run with a low --box-threshold, e.g. 0.5, to see the whole table). Config overrides
(section.key=value) may go anywhere on the line. Examples:

  ava-detect detect --videos data/videos --out val_boxes.csv --seconds 902-1798 --gt ava_val_v2.2.csv
  ava-detect detect --videos clip1.mp4 clip2.mp4 --out boxes.csv --second-offset 0 --box-threshold 0.5
"""

from __future__ import annotations

import argparse

from ava_detect.commands.common import add_config_arguments, add_detector_argument, bounded_float, bounded_int



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--videos", nargs="+", required=True, metavar="PATH",
                        help="video files and / or folders of videos")
    parser.add_argument("--out", required=True, metavar="BOXES.csv", help="output AVA predicted-box CSV")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--every", type=bounded_float(0, lo_open=True), metavar="SECONDS",
                      help="seconds between keyframes, from file time 0 (default 1; a whole number: AVA keys are "
                           "whole seconds)")
    when.add_argument("--seconds", metavar="A-B", help="keyframe seconds A..B inclusive, e.g. 902-1798")
    parser.add_argument("--second-offset", type=bounded_int(0), default=900, metavar="S",
                        help="the second of file time 0 (default 900, prepared AVA videos; 0 for plain clips)")
    parser.add_argument("--gt", metavar="GT.csv", help="ground truth to report person-box AP@0.5 and recall against")
    add_detector_argument(parser)
    parser.add_argument("--detector-weights", metavar="FILE",
                        help="detector weights file (default: the backend's COCO weights, downloaded)")
    parser.add_argument("--boxes", metavar="BOXES.csv", help="box CSV for --detector csv")
    parser.add_argument("--box-threshold", type=float, metavar="P", help="minimum person score (default 0.8)")
    parser.add_argument("--min-size", type=int, metavar="PX", help="detector input short side (default 800)")
    parser.add_argument("--batch-size", type=int, metavar="N", help="frames per detector pass (default 4)")
    parser.add_argument("--restart", action="store_true", help="discard finished videos of an earlier run")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    add_config_arguments(parser)


def _overrides(args: argparse.Namespace) -> list:
    pairs = [("detector.backend", args.detector), ("detector.weights", args.detector_weights),
             ("detector.boxes_csv", args.boxes), ("detector.score_threshold", args.box_threshold),
             ("detector.min_size", args.min_size), ("detector.batch_size", args.batch_size)]
    return [f"{k}={v}" for k, v in pairs if v is not None]


class _Progress:
    """Prints what :func:`~ava_detect.detection.detect_videos` reports, with a progress bar."""

    def __init__(self):
        self.bar = None

    def start(self, *, videos: int, resumed: int, keyframes: int, detector) -> None:
        from tqdm import tqdm

        if resumed:
            print(f"resuming: {resumed} of {videos} videos already done")
        if detector is not None:
            print(f"person detector: {detector}")
            self.bar = tqdm(total=keyframes, unit="keyframe", dynamic_ncols=True)

    def keyframe(self, video) -> None:
        self.bar.set_postfix_str(video.name, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run(args: argparse.Namespace) -> int:
    import os

    from ava_detect.cli import OVERRIDE
    from ava_detect.commands.common import resolve_device
    from ava_detect.config import load_config
    from ava_detect.detection import detect_videos
    from ava_detect.detection.keyframes import parse_second_range
    from ava_detect.io_paths import IOPaths

    # `--videos a.mp4 detector.min_size=128`: overrides caught by --videos' nargs
    paths = [p for p in args.videos if not (OVERRIDE.match(p) and not os.path.exists(p))]
    extra = [p for p in args.videos if p not in paths]
    cfg = load_config(args.config, list(args.overrides) + extra + _overrides(args))
    IOPaths().input("--config", args.config).output("--out", args.out).check()
    progress = _Progress()
    try:
        result = detect_videos(paths, args.out, detector=cfg.detector, device=resolve_device(args.device),
                               every=args.every, seconds=parse_second_range(args.seconds) if args.seconds else None,
                               second_offset=args.second_offset, ground_truth=args.gt, restart=args.restart,
                               progress=progress)
    finally:
        progress.close()
    print(f"wrote {result.out}: {result.boxes} boxes at {result.keyframes} keyframes of {result.videos} videos")
    if result.report is not None:
        print(result.report.format())
    return 0
