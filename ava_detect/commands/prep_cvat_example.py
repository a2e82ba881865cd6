"""Make the worked example of "Train on your own videos" (offline): a synthetic set made to look
like your own videos and their CVAT exports.

Makes a synthetic set in OUT/synthetic (see `prep synthetic`), then re-encodes its videos at --fps
(25) frames per second starting at second 0 (OUT/videos), writes each video's ground truth as a
"CVAT for video 1.1" task export (OUT/cvat/<video_id>.xml: person tracks with a keyframe box at
every annotated second, `outside` where a person is gone, one checkbox per action), and the set's
simulated person-detector boxes with seconds from 0 (OUT/detector_boxes.csv, the offline stand-in
for a person detector). Then:

  ava-detect prep import --cvat OUT/cvat --videos OUT/videos --out OUT/dataset \\
      --config custom/cpu.yaml --detector csv --boxes OUT/detector_boxes.csv

Example:
  ava-detect prep cvat-example --out data/own_example
"""

from __future__ import annotations

import argparse

from ava_detect.commands.common import bounded_int, frame_size


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="folder of the example (missing or empty)")
    parser.add_argument("--videos", type=bounded_int(2, 1000), default=8, help="number of videos (default: 8)")
    parser.add_argument("--seconds", type=bounded_int(4, 900), default=20, help="seconds per video (default: 20)")
    parser.add_argument("--size", type=frame_size, default=(320, 240), metavar="WxH",
                        help="frame size, both even (default: 320x240)")
    parser.add_argument("--fps", type=bounded_int(1, 240), default=25, help="frame rate of the videos (default: 25)")
    parser.add_argument("--seed", type=bounded_int(0, 2**32 - 1), default=0, help="random seed (default: 0)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ava_detect.errors import AvaDetectError
    from ava_detect.io_paths import IOPaths
    from ava_detect.synthetic import make_synthetic_dataset
    from ava_detect.synthetic.cvat_example import make_cvat_example

    out = Path(args.out)
    IOPaths().folder("--out", out).check()
    if out.is_dir() and any(p.name not in ("synthetic", "videos", "cvat", "detector_boxes.csv") for p in out.iterdir()):
        raise AvaDetectError("output folder holds other files; choose a missing or empty folder", out)
    make_synthetic_dataset(out / "synthetic", seed=args.seed, num_videos=args.videos, seconds=args.seconds,
                           size=args.size)
    example = make_cvat_example(out / "synthetic", out, fps=args.fps)
    print(f"wrote {len(example.video_ids)} videos at {example.fps} fps to {example.videos_dir}, their CVAT exports to "
          f"{example.cvat_dir}, detector boxes to {example.detector_boxes}")
    print(f"next: ava-detect prep import --cvat {example.cvat_dir} --videos {example.videos_dir} --out {out / 'dataset'} "
          f"--config custom/cpu.yaml --detector csv --boxes {example.detector_boxes}")
    return 0
