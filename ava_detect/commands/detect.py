"""Detect people at the keyframes of videos and write AVA predicted-box rows (the input of `test` and `train`).

Rows: video_id,second,x1,y1,x2,y2,,score (coordinates normalised to [0, 1], no header). The
video id is the file name without its suffix. Keyframe second s is file time s - --second-offset
(default 900: prepared AVA videos start at movie second 900); its picture is the frame shown at
that time. Keyframes: every --every seconds from the start of each video (default 1), or the
seconds --seconds A-B (AVA: 902-1798), those inside the video.

Resumable: each finished video is kept in a folder beside the output (.OUT.parts/); run the same
command again after an interruption and finished videos are skipped. The output appears only
when all videos are done.

With --gt the boxes are compared with ground-truth boxes (COCO AP@0.5 and recall, pycocotools),
with a precision / recall table over score thresholds, to choose a detector and a threshold
(run with a low --box-threshold, e.g. 0.5, to see the whole table). Config overrides go before
--videos (or after --). Examples:

  ava-detect detect --videos data/videos --out val_boxes.csv --seconds 902-1798 --gt ava_val_v2.2.csv
  ava-detect detect --videos clip1.mp4 clip2.mp4 --out boxes.csv --second-offset 0 --box-threshold 0.5
"""

from __future__ import annotations

import argparse
import re

from ava_detect.commands.common import add_config_arguments, bounded_int

_OVERRIDE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z0-9_.]+=")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--videos", nargs="+", required=True, metavar="PATH",
                        help="video files and / or folders of videos")
    parser.add_argument("--out", required=True, metavar="BOXES.csv", help="output AVA predicted-box CSV")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--every", type=bounded_int(1), metavar="SECONDS", help="a keyframe every N whole seconds (default 1)")
    when.add_argument("--seconds", metavar="A-B", help="keyframe seconds A..B inclusive, e.g. 902-1798")
    parser.add_argument("--second-offset", type=bounded_int(0), default=900, metavar="S",
                        help="the second of file time 0 (default 900, prepared AVA videos; 0 for plain clips)")
    parser.add_argument("--gt", metavar="GT.csv", help="ground truth to report person-box AP@0.5 and recall against")
    parser.add_argument("--detector", choices=["torchvision", "detectron2", "csv"],
                        help="person detector (default: torchvision)")
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


def run(args: argparse.Namespace) -> int:
    import json
    import os
    import shutil
    from pathlib import Path

    import pandas as pd
    from tqdm import tqdm

    from ava_detect.commands.annotate import resolve_device
    from ava_detect.config import load_config
    from ava_detect.data.ava_files import read_ground_truth, read_predicted_boxes, write_predicted_boxes
    from ava_detect.data.constants import FPS
    from ava_detect.data.video import list_videos, probe_video
    from ava_detect.detection import build_detector
    from ava_detect.detection.evaluation import evaluate_person_boxes
    from ava_detect.detection.keyframes import detect_keyframes, keyframe_seconds, parse_second_range
    from ava_detect.errors import AvaDetectError
    from ava_detect.io import atomic_open
    from ava_detect.structures import pixels_to_normalized

    # `--videos a.mp4 detector.min_size=128`: overrides caught by --videos' nargs
    paths = [p for p in args.videos if not (_OVERRIDE.match(p) and not os.path.exists(p))]
    extra = [p for p in args.videos if p not in paths]
    cfg = load_config(args.config, list(args.overrides) + extra + _overrides(args))
    d = cfg.detector
    seconds_range = parse_second_range(args.seconds) if args.seconds else None

    videos = []
    for p in map(Path, paths):
        if p.is_dir():
            found = list_videos(p)
            if not found:
                raise AvaDetectError("folder has no video files", p)
            videos.extend(found)
        elif p.exists():
            videos.append(p)
        else:
            raise AvaDetectError("video file or folder not found", p)
    out = Path(args.out)
    ids = {}
    for v in videos:
        if v.resolve() == out.resolve():
            raise AvaDetectError("refusing to overwrite an input video; choose another --out", out)
        if v.stem in ids and ids[v.stem] != v.resolve():
            raise AvaDetectError(f"two videos have the id {v.stem!r}: {ids[v.stem]} and {v}", v)
        ids[v.stem] = v.resolve()
    if out.is_dir():
        raise AvaDetectError("--out is a folder; expected a CSV file name", out)
    gt = read_ground_truth(args.gt) if args.gt else None  # a bad file fails before the long part

    plan = []
    for v in dict.fromkeys(videos):
        info = probe_video(v, fps=FPS)
        secs = keyframe_seconds(duration=info.duration, second_offset=args.second_offset, every=args.every,
                                seconds=seconds_range)
        plan.append((v, info, secs))

    parts = out.parent / f".{out.name}.parts"
    settings = {"backend": d.backend, "weights": d.weights, "boxes_csv": d.boxes_csv, "boxes_format": d.boxes_format,
                "detectron2_config": d.detectron2_config, "score_threshold": d.score_threshold,
                "min_size": d.min_size, "max_size": d.max_size, "every": args.every, "seconds": args.seconds,
                "second_offset": args.second_offset}
    settings_file = parts / "settings.json"
    if parts.is_dir():
        old = None
        try:
            old = json.loads(settings_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
        if args.restart or old != settings:
            if not args.restart:
                print(f"warning: {parts} holds results of other settings; starting over")
            shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    with atomic_open(settings_file, "w", encoding="utf-8") as f:
        json.dump(settings, f)

    def done_file(v: Path) -> Path:
        return parts / f"{v.stem}.json"

    todo = [(v, info, secs) for v, info, secs in plan if not done_file(v).is_file()]
    if len(todo) < len(plan):
        print(f"resuming: {len(plan) - len(todo)} of {len(plan)} videos already done")
    if todo:
        device = resolve_device(args.device)
        detector = build_detector(cfg, device=device)
        print(f"person detector: {detector.describe()}")
        total = sum(len(s) for _, _, s in todo)
        with tqdm(total=total, unit="keyframe", dynamic_ncols=True) as bar:
            for v, info, secs in todo:
                bar.set_postfix_str(v.name)
                rows = []
                for kb in detect_keyframes(v, detector=detector, video_id=v.stem, seconds=secs,
                                           second_offset=args.second_offset, num_frames=info.num_frames,
                                           chunk=max(1, d.batch_size)):
                    norm = pixels_to_normalized(kb.boxes, kb.width, kb.height).numpy()
                    for box, score in zip(norm, kb.scores.tolist()):
                        rows.append((v.stem, kb.second, *box.tolist(), score))
                    bar.update(1)
                df = pd.DataFrame(rows, columns=["video_id", "second", "x1", "y1", "x2", "y2", "score"])
                write_predicted_boxes(parts / f"{v.stem}.csv", df)
                with atomic_open(done_file(v), "w", encoding="utf-8") as f:  # written last: the video is done
                    json.dump({"video": str(v), "seconds": secs, "width": info.width, "height": info.height,
                               "boxes": len(rows)}, f)

    detected_keys, sizes, n_boxes = [], {}, 0
    with atomic_open(out, "w", encoding="utf-8", newline="") as f:
        for v, info, secs in plan:
            meta = json.loads(done_file(v).read_text(encoding="utf-8"))
            detected_keys += [(v.stem, int(s)) for s in meta["seconds"]]
            sizes[v.stem] = (int(meta["width"]), int(meta["height"]))
            n_boxes += int(meta["boxes"])
            f.write((parts / f"{v.stem}.csv").read_text(encoding="utf-8"))
    shutil.rmtree(parts)
    print(f"wrote {out}: {n_boxes} boxes at {len(detected_keys)} keyframes of {len(plan)} videos")

    if gt is not None:
        det = read_predicted_boxes(out)
        report = evaluate_person_boxes(ground_truth=gt, detections=det, detected_keys=detected_keys,
                                       image_sizes=sizes)
        print(report.format())
    return 0
