"""Detect people at the keyframes of videos and write AVA predicted-box rows (the input of `test` and `train`),
and / or pre-labels for CVAT. The work is :func:`ava_detect.detection.detect_videos`; this command maps
its flags onto it.

Rows: video_id,second,x1,y1,x2,y2,,score (coordinates normalised to [0, 1], no header). The
video id is the file name without its suffix. Keyframe second s is file time s - --second-offset
(default: the config's data.start_second, 900 for AVA: prepared AVA videos start at movie second
900); its picture is the frame shown at that time. Keyframes: every --every seconds from the start
of each video (a whole number, since AVA keys are whole seconds), or the seconds --seconds A-B
(AVA: 902-1798), those inside the video. Without either: the config's data.keyframe_range (AVA:
902-1798) when --second-offset is the config's data.start_second, else every second.

--cvat DIR writes, per video, DIR/<video_id>.xml in the "CVAT for video 1.1" format, to import into a
CVAT task made from that video: one `person` track per tracked person, a keyframe box at the video's
own frame shown at each keyframe, `outside` where a track ends, and one checkbox attribute per action
of the label map (--labelmap; default the config's). DIR/labels.json is the label definition to
paste into CVAT's label constructor (Raw) first. With --weights (an action model: a file or a
published name, with --config describing it) the checkboxes are pre-filled with the actions the model
scores at least --action-threshold; without, all are unchecked.

Resumable: each finished video is kept in a folder beside the output (.OUT.parts/), and each XML is
recorded with its settings; run the same command again after an interruption and finished videos are
skipped. The box CSV appears only when all videos are done. Under torchrun (torchrun --nproc_per_node N
-m ava_detect.cli detect ...) each process does every N-th video (sorted by path) on its own device;
the first process joins the box CSV and prints the summary.

With --gt the boxes are compared with ground-truth boxes (COCO AP@0.5 and recall, pycocotools),
with a precision / recall table over score thresholds, to choose a detector and a threshold
(run with a low --box-threshold, e.g. 0.5, to see the whole table). Config overrides
(section.key=value) may go anywhere on the line. Examples:

  ava-detect detect --videos data/videos --out val_boxes.csv --seconds 902-1798 --gt ava_val_v2.2.csv
  ava-detect detect --videos clip1.mp4 clip2.mp4 --out boxes.csv --second-offset 0 --box-threshold 0.5
  ava-detect detect --videos my_videos --cvat prelabels --second-offset 0 --config my.yaml --weights model.pth
"""

from __future__ import annotations

import argparse

from ava_detect.commands.common import (add_config_arguments, add_detector_argument, add_detector_model_argument,
                                        bounded_float, bounded_int)



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--videos", nargs="+", required=True, metavar="PATH",
                        help="video files and / or folders of videos")
    parser.add_argument("--out", metavar="BOXES.csv", help="output AVA predicted-box CSV (this and / or --cvat)")
    parser.add_argument("--cvat", metavar="DIR",
                        help="write CVAT pre-labels: DIR/<video_id>.xml (CVAT for video 1.1) and DIR/labels.json")
    parser.add_argument("--labelmap", metavar="MAP.pbtxt",
                        help="--cvat: the actions, one checkbox attribute each (default: the config's label map)")
    parser.add_argument("--weights", metavar="FILE|NAME",
                        help="--cvat: action-model weights that pre-fill the checkboxes (model-assisted labelling)")
    parser.add_argument("--action-threshold", type=bounded_float(0, 1), metavar="P",
                        help="--weights: check the actions scored at least P (default: annotate.threshold, 0.3)")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--every", type=bounded_float(0, lo_open=True), metavar="SECONDS",
                      help="seconds between keyframes, from file time 0 (a whole number: AVA keys are whole seconds; "
                           "default: data.keyframe_range, or every second with another --second-offset)")
    when.add_argument("--seconds", metavar="A-B", help="keyframe seconds A..B inclusive, e.g. 902-1798")
    parser.add_argument("--second-offset", type=bounded_int(0), metavar="S",
                        help="the second of file time 0 (default: data.start_second, 900 for prepared AVA videos; "
                             "0 for plain clips)")
    parser.add_argument("--gt", metavar="GT.csv", help="ground truth to report person-box AP@0.5 and recall against")
    add_detector_argument(parser)
    add_detector_model_argument(parser)
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
    pairs = [("detector.backend", args.detector), ("detector.model", args.detector_model),
             ("detector.weights", args.detector_weights),
             ("detector.boxes_csv", args.boxes), ("detector.score_threshold", args.box_threshold),
             ("detector.min_size", args.min_size), ("detector.batch_size", args.batch_size)]
    return [f"{k}={v}" for k, v in pairs if v is not None]


class DetectProgressBar:
    """Prints what :func:`~ava_detect.detection.detect_videos` reports, with a progress bar (one per
    call: ``prep import`` detects each split in turn with one of these)."""

    def __init__(self):
        self.bar = None

    def start(self, *, videos: int, resumed: int, keyframes: int, detector) -> None:
        from tqdm import tqdm

        self.close()
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
            self.bar = None


def _keyframes(args: argparse.Namespace, axis) -> tuple:
    """(second offset, every, seconds) of the flags, the config's time axis ``axis`` filling in (see the docstring)."""
    from ava_detect.detection.keyframes import parse_second_range

    offset = axis.start_second if args.second_offset is None else args.second_offset
    seconds = parse_second_range(args.seconds) if args.seconds else None
    if args.every is None and seconds is None and offset == axis.start_second:
        seconds = axis.keyframe_range
    return offset, args.every, seconds


def _check_flags(args: argparse.Namespace) -> None:
    """Flags that make no sense together: one-line errors before any work."""
    from ava_detect.errors import AvaDetectError

    if args.out is None and args.cvat is None:
        raise AvaDetectError("nothing to write: give --out BOXES.csv and / or --cvat DIR")
    if args.cvat is None:
        for flag in ("labelmap", "weights", "action_threshold"):
            if getattr(args, flag) is not None:
                raise AvaDetectError(f"--{flag.replace('_', '-')} is for CVAT pre-labels; give --cvat DIR too")
    if args.action_threshold is not None and args.weights is None:
        raise AvaDetectError("--action-threshold needs --weights (the action model whose scores it thresholds)")


def _prelabeller(args: argparse.Namespace, cfg, device):
    """The CVAT pre-labeller of --cvat / --labelmap / --weights / --action-threshold (None without --cvat)."""
    from ava_detect.data.labelmaps import resolve_labelmap
    from ava_detect.annotate.prelabel import CvatPrelabeller, check_labelmap_fits, predictor_for

    if args.cvat is None:
        return None
    labelmap = resolve_labelmap(args.labelmap, kind="all", data=cfg.data)
    predictor = None
    if args.weights is not None:
        check_labelmap_fits(cfg, labelmap)  # before the weights are loaded
        predictor = predictor_for(cfg, args.weights, device)
    return CvatPrelabeller.from_config(cfg, args.cvat, labelmap=labelmap, predictor=predictor, weights=args.weights,
                                       action_threshold=args.action_threshold)


def _print_summary(result) -> None:
    if result.out is not None:
        print(f"wrote {result.out}: {result.boxes} boxes at {result.keyframes} keyframes of {result.videos} videos")
    if result.cvat is not None:
        c = result.cvat
        print(f"wrote CVAT pre-labels to {c.folder}: {result.videos} videos ({c.written} written now: {c.tracks} person "
              f"tracks, {c.boxes} boxes, {c.checked} actions checked; {result.videos - c.written} already done)")
        print(f"in CVAT: paste {c.labels} into the project's or task's label constructor (Raw), then upload each "
              f"<video_id>.xml as 'CVAT for video 1.1' annotations to the task made from that video")
    if result.report is not None:
        print(result.report.format())


def run(args: argparse.Namespace) -> int:
    import os

    from ava_detect.annotate.annotator import load_annotate_config
    from ava_detect.cli import OVERRIDE
    from ava_detect.config import load_config
    from ava_detect.data.time_axis import TimeAxis
    from ava_detect.detection import DetectProgress, detect_videos
    from ava_detect.detection.sharding import WAIT_MINUTES, Shard
    from ava_detect.engine import distributed as du
    from ava_detect.io_paths import IOPaths

    _check_flags(args)
    # `--videos a.mp4 detector.min_size=128`: overrides caught by --videos' nargs
    paths = [p for p in args.videos if not (OVERRIDE.match(p) and not os.path.exists(p))]
    extra = [p for p in args.videos if p not in paths]
    overrides = list(args.overrides) + extra + _overrides(args)
    if args.weights is not None:  # a published name without --config: its preset config describes the model
        cfg = load_annotate_config(args.config, overrides + [f"annotate.weights={args.weights}"])
    else:
        cfg = load_config(args.config, overrides)
    IOPaths().input("--config", args.config).input("--labelmap", args.labelmap).input("--weights", args.weights) \
        .output("--out", args.out).folder("--cvat", args.cvat).check()
    second_offset, every, seconds = _keyframes(args, TimeAxis.from_config(cfg.data))
    device = du.init_from_env(args.device, timeout_minutes=WAIT_MINUTES)  # torchrun: this process's share
    shard = Shard.current()
    try:
        progress = DetectProgressBar() if shard.is_main else DetectProgress()
        try:
            result = detect_videos(paths, args.out, detector=cfg.detector, device=device, every=every, seconds=seconds,
                                   second_offset=second_offset, fps=cfg.data.fps, ground_truth=args.gt,
                                   restart=args.restart, progress=progress, cvat=_prelabeller(args, cfg, device),
                                   shard=shard)
        finally:
            if shard.is_main:
                progress.close()
    finally:
        du.cleanup()
    if shard.is_main:
        _print_summary(result)
    return 0
