"""Extract PySlowFast's frame folders and frame lists from prepared videos (only if you need them).

ava_detect reads clips straight from the prepared videos; this step is for tools that want
PySlowFast's layout:

  FRAMES/<video_id>/<video_id>_000001.jpg ...   frame i of the video is file number i + 1
  FRAME_LISTS/train.csv, val.csv                header "original_vido_id video_id frame_id path labels"

Frames are decoded the same way the clip reader decodes them (frame i = the picture at i/30 s)
and written as JPEG with ffmpeg's MJPEG encoder at --qscale (1 = PySlowFast's `-q:v 1`).
A frame list is written for each split whose ground truth is found (--annotations/<split>.csv),
listing the split's videos that have frames. Each video's folder is written under a temporary
name and renamed when complete: finished videos are skipped when the step is run again, unless
they were made with another --qscale or from another version of the video (the settings are
recorded beside each folder; the command says which are extracted again and why).

Example:
  ava-detect prep frames --root data/ava            # videos/ -> frames/, frame_lists/
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import List, Optional

from ava_detect.commands.common import bounded_int
from ava_detect.data.layout import SPLITS, DatasetLayout
from ava_detect.errors import AvaDetectError
from ava_detect.io_paths import IOPaths

#: File names inside the annotation and frame-list folders.
_NAMES = DatasetLayout()

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", metavar="DIR",
                        help="dataset folder: reads DIR/videos and DIR/annotations, writes DIR/frames and DIR/frame_lists")
    parser.add_argument("--videos", metavar="DIR", help="prepared videos (default: ROOT/videos)")
    parser.add_argument("--out", metavar="DIR", help="frame folders (default: ROOT/frames)")
    parser.add_argument("--annotations", metavar="DIR", help="ground truth <split>.csv for the frame lists "
                        "(default: ROOT/annotations)")
    parser.add_argument("--frame-lists", metavar="DIR", help="where train.csv / val.csv go (default: ROOT/frame_lists)")
    parser.add_argument("--qscale", type=int, default=1, help="JPEG quantiser 1 (best) .. 31 (default: 1, as PySlowFast)")
    parser.add_argument("--workers", type=bounded_int(1, 1024), default=1, metavar="N", help="videos in parallel (default: 1)")
    parser.add_argument("--no-progress", action="store_true", help="do not show a progress bar")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ava_detect.data.ava_files import read_ground_truth, write_frame_list
    from ava_detect.data.video import FrameFolder, list_videos
    from ava_detect.prep.frames import extract_videos, frame_list_rows, plan_extraction

    layout = DatasetLayout(Path(args.root)) if args.root else None
    if layout is None and not (args.videos and args.out):
        raise AvaDetectError("give --root DIR, or both --videos and --out")
    videos_dir = Path(args.videos) if args.videos else layout.videos_dir
    out_dir = Path(args.out) if args.out else layout.frames_dir
    ann_dir = Path(args.annotations) if args.annotations else (layout.annotations_dir if layout else None)
    lists_dir = Path(args.frame_lists) if args.frame_lists else (layout.frame_lists_dir if layout else None)
    if not 1 <= args.qscale <= 31:
        raise AvaDetectError(f"--qscale must be 1..31, got {args.qscale}")
    IOPaths().input("--videos", videos_dir).input("--annotations", ann_dir).folder("--out", out_dir) \
        .folder("--frame-lists", lists_dir, writes=[_NAMES.frame_list(s).name for s in SPLITS]).check()
    videos = list_videos(videos_dir, extensions=(".mp4",))
    if not videos:
        raise AvaDetectError("no prepared videos (<video_id>.mp4) found", videos_dir)
    todo, redo = plan_extraction(videos, out_dir, qscale=args.qscale)
    print(f"{len(videos)} videos: {len(videos) - len(todo)} already extracted, {len(todo)} to extract into {out_dir}")
    for video, why in redo.items():
        print(f"  {video.stem}: extracted again: {why}")
    failures: List[str] = []
    start = time.perf_counter()
    bar = tqdm(total=len(todo), unit="video", desc="frames", disable=args.no_progress or None)
    try:
        for video, count, error in extract_videos(todo, out_dir, qscale=args.qscale, workers=args.workers):
            _record(video, count, error, failures, bar)
    finally:
        bar.close()
    print(f"extracted {len(todo) - len(failures)} videos in {time.perf_counter() - start:.1f} s")

    frames = FrameFolder(out_dir)
    counts = {v.stem: frames.num_frames(v.stem) for v in videos if frames.exists(v.stem)}
    if lists_dir is not None and ann_dir is not None:
        for split in SPLITS:
            gt_path = ann_dir / _NAMES.ground_truth(split).name
            if not gt_path.is_file():
                print(f"no {gt_path}: no {split} frame list")
                continue
            ids = list(dict.fromkeys(read_ground_truth(gt_path)["video_id"].astype(str)))
            listed = [v for v in ids if v in counts]
            if len(listed) < len(ids):
                print(f"{split}: {len(ids) - len(listed)} annotated videos have no frames and are not listed")
            list_path = lists_dir / _NAMES.frame_list(split).name
            write_frame_list(list_path, frame_list_rows(listed, counts))
            print(f"wrote {list_path}: {len(listed)} videos, {sum(counts[v] for v in listed)} frames")
    if failures:
        print(f"{len(failures)} videos failed:", file=sys.stderr)
        for error in failures:
            print(f"  {error}", file=sys.stderr)
        return 1
    return 0


def _record(video: str, count: int, error: Optional[str], failures: List[str], bar) -> None:
    if error is not None:
        failures.append(error)
        bar.write(f"failed: {error}")
    else:
        bar.set_postfix_str(f"{Path(video).stem}: {count} frames")
    bar.update(1)
