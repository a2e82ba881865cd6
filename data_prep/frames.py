"""Extract PySlowFast's frame folders and frame lists from prepared videos (only if you need them).

ava_detect reads clips straight from the prepared videos; this step is for tools that want
PySlowFast's layout:

  FRAMES/<video_id>/<video_id>_000001.jpg ...   frame i of the video is file number i + 1
  FRAME_LISTS/train.csv, val.csv                header "original_vido_id video_id frame_id path labels"

Frames are decoded the same way the clip reader decodes them (frame i = the picture at i/30 s)
and written as JPEG with ffmpeg's MJPEG encoder at --qscale (1 = PySlowFast's `-q:v 1`).
A frame list is written for each split whose ground truth is found (--annotations/<split>.csv),
listing the split's videos that have frames. Each video's folder is written under a temporary
name and renamed when complete: finished videos are skipped when the step is run again.

Example:
  ava-detect prep frames --root data/ava            # videos/ -> frames/, frame_lists/
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from fractions import Fraction
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ava_detect.commands.common import bounded_int
from ava_detect.data.constants import FPS
from ava_detect.errors import AvaDetectError
from data_prep import step_main


def extract_frames(video: Path, out_dir: Path, *, qscale: int = 1, fps: int = FPS) -> int:
    """Write every frame of ``video`` as ``out_dir/<video_id>/<video_id>_%06d.jpg`` (atomically,
    per video: a temporary folder renamed at the end). Returns the number of frames.

    Raises:
        AvaDetectError: unreadable or corrupt video (naming the file and the second).
    """
    import av

    from ava_detect.data.video import FRAME_NAME, iter_video_frames

    video_id = video.stem
    final = out_dir / video_id
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{video_id}.", suffix=".tmp", dir=out_dir))
    count = 0
    try:
        encoder = None
        for i, frame in iter_video_frames(video, fps=fps):
            if encoder is None:
                encoder = av.CodecContext.create("mjpeg", "w")
                encoder.width, encoder.height, encoder.pix_fmt = frame.width, frame.height, "yuvj420p"
                encoder.time_base = Fraction(1, fps)
                encoder.qmin = encoder.qmax = qscale  # fixed quantiser, as ffmpeg's -q:v
            packets = encoder.encode(frame.reformat(width=encoder.width, height=encoder.height, format="yuvj420p"))
            data = b"".join(bytes(p) for p in packets)
            (tmp / FRAME_NAME.format(video_id=video_id, number=i + 1)).write_bytes(data)
            count = i + 1
        if count == 0:
            raise AvaDetectError("video has no frames", video)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return count


def _job(video: str, out_dir: str, qscale: int) -> Tuple[str, int, Optional[str]]:
    try:
        return video, extract_frames(Path(video), Path(out_dir), qscale=qscale), None
    except AvaDetectError as e:
        return video, 0, str(e)
    except Exception as e:  # one bad video must not stop the others
        return video, 0, f"{video}: {type(e).__name__}: {e}"


def frame_list_rows(video_ids: List[str], counts: Dict[str, int]):
    """Rows of a PySlowFast frame list for ``video_ids`` (in that order), as a DataFrame."""
    import pandas as pd

    from ava_detect.data.ava_files import FRAME_LIST_HEADER
    from ava_detect.data.video import frame_relpath

    rows = []
    for index, vid in enumerate(video_ids):
        for i in range(counts[vid]):
            rows.append((vid, index, i, frame_relpath(vid, i), '""'))
    return pd.DataFrame(rows, columns=FRAME_LIST_HEADER)


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

    root = Path(args.root) if args.root else None
    if root is None and not (args.videos and args.out):
        raise AvaDetectError("give --root DIR, or both --videos and --out")
    videos_dir = Path(args.videos) if args.videos else root / "videos"
    out_dir = Path(args.out) if args.out else root / "frames"
    ann_dir = Path(args.annotations) if args.annotations else (root / "annotations" if root else None)
    lists_dir = Path(args.frame_lists) if args.frame_lists else (root / "frame_lists" if root else None)
    if not 1 <= args.qscale <= 31:
        raise AvaDetectError(f"--qscale must be 1..31, got {args.qscale}")
    videos = list_videos(videos_dir, extensions=(".mp4",))
    if not videos:
        raise AvaDetectError("no prepared videos (<video_id>.mp4) found", videos_dir)
    todo = [v for v in videos if not (out_dir / v.stem).is_dir()]
    print(f"{len(videos)} videos: {len(videos) - len(todo)} already extracted, {len(todo)} to extract into {out_dir}")
    failures: List[str] = []
    start = time.perf_counter()
    bar = tqdm(total=len(todo), unit="video", desc="frames", disable=args.no_progress or None)
    try:
        if args.workers <= 1:
            results = (_job(str(v), str(out_dir), args.qscale) for v in todo)
            for video, count, error in results:
                _record(video, count, error, failures, bar)
        else:
            with ProcessPoolExecutor(max_workers=args.workers) as pool:
                futures = [pool.submit(_job, str(v), str(out_dir), args.qscale) for v in todo]
                for fut in as_completed(futures):
                    _record(*fut.result(), failures, bar)
    finally:
        bar.close()
    print(f"extracted {len(todo) - len(failures)} videos in {time.perf_counter() - start:.1f} s")

    frames = FrameFolder(out_dir)
    counts = {v.stem: frames.num_frames(v.stem) for v in videos if frames.exists(v.stem)}
    if lists_dir is not None and ann_dir is not None:
        for split in ("train", "val"):
            gt_path = ann_dir / f"{split}.csv"
            if not gt_path.is_file():
                print(f"no {gt_path}: no {split} frame list")
                continue
            ids = list(dict.fromkeys(read_ground_truth(gt_path)["video_id"].astype(str)))
            listed = [v for v in ids if v in counts]
            if len(listed) < len(ids):
                print(f"{split}: {len(ids) - len(listed)} annotated videos have no frames and are not listed")
            write_frame_list(lists_dir / f"{split}.csv", frame_list_rows(listed, counts))
            print(f"wrote {lists_dir / f'{split}.csv'}: {len(listed)} videos, {sum(counts[v] for v in listed)} frames")
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


def main(argv: Optional[List[str]] = None) -> int:
    return step_main("frames", __doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
