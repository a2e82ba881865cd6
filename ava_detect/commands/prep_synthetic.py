"""Make a synthetic AVA-format dataset that a CPU can train on.

Writes rendered h264 videos (30 fps; the file's t=0 is movie second 900; keyframes from
second 902 on, one per second) with 2-4 moving figures each, ground truth with person ids,
simulated person-detector boxes, excluded timestamps, the label map, PySlowFast frame lists
and dataset.json. Classes (real AVA ids): stand, sit, lie/sleep (one per figure, told apart by
shape) and walk, run/jog, jump/leap, hand wave (told apart only across frames).
The same arguments give the same files, byte for byte.

Example:
  ava-detect prep synthetic --out data/synthetic --seed 0 --videos 12 --seconds 30 --size 320x240
"""

from __future__ import annotations

import argparse
import time

from ava_detect.commands.common import frame_size
from ava_detect.data.constants import FPS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="dataset folder: missing, empty, or an earlier synthetic set (replaced)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--videos", type=int, default=12, help="number of videos (default: 12)")
    parser.add_argument("--seconds", type=int, default=30,
                        help="length of each video in seconds; keyframes 902 .. 900+S-2 (default: 30)")
    parser.add_argument("--size", type=frame_size, default=(320, 240), metavar="WxH",
                        help="frame size in pixels, both even (default: 320x240)")
    parser.add_argument("--val-fraction", type=float, default=1 / 3, metavar="F",
                        help="share of the videos in the val split (default: 1/3; at least one video)")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty folder that holds no synthetic set (files of the "
                        "same names are replaced, others are left alone)")
    parser.add_argument("--no-progress", action="store_true", help="do not show a progress bar")


def _format_bytes(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ava_detect.data.layout import SPLITS
    from ava_detect.io_paths import IOPaths
    from ava_detect.synthetic import CLASS_IDS, POSE_IDS, make_synthetic_dataset

    IOPaths().folder("--out", args.out).check()
    total = max(0, args.videos) * max(0, args.seconds) * FPS
    start = time.perf_counter()
    bar = tqdm(total=total, unit="frame", desc="rendering", disable=args.no_progress or None, leave=False)
    try:
        summary = make_synthetic_dataset(
            args.out,
            seed=args.seed,
            num_videos=args.videos,
            seconds=args.seconds,
            size=args.size,
            val_fraction=args.val_fraction,
            overwrite=args.overwrite,
            progress=bar.update,
        )
    finally:
        bar.close()
    elapsed = time.perf_counter() - start

    width, height = summary.size
    print(f"synthetic AVA set in {summary.out_dir} (seed {summary.seed}, {width}x{height}, "
          f"{summary.seconds} s per video at {summary.fps} fps)")
    print(f"{'':<26}{'train':>8}{'val':>8}")
    rows = [
        ("videos", {s: len(summary.videos[s]) for s in SPLITS}),
        ("keyframes", summary.keyframes),
        ("person boxes", summary.boxes),
        ("predicted boxes", summary.predicted_boxes),
        ("excluded keys", summary.excluded),
    ]
    for name, counts in rows:
        print(f"{name:<26}{counts['train']:>8}{counts['val']:>8}")
    print("boxes per class:")
    for class_id in CLASS_IDS:
        kind = "pose" if class_id in POSE_IDS else "motion"
        label = f"  {class_id:>2} {summary.class_names[class_id]} ({kind})"
        print(f"{label:<26}{summary.class_counts['train'][class_id]:>8}{summary.class_counts['val'][class_id]:>8}")
    print(f"size on disk: {_format_bytes(summary.bytes_on_disk)} in {len(summary.files) + 1} files; "
          f"time: {elapsed:.1f} s")
    return 0

