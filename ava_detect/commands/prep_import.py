"""Import CVAT exports of your own videos as a dataset that train, test and eval read.

Reads "CVAT for video 1.1" exports (the annotations.xml, or the zip CVAT downloads; task or
project exports; folders are searched for *.xml and *.zip), one task per video, people as
rectangle tracks of the label `person` with one checkbox attribute per action, and the videos the
tasks were made from (--videos; matched by the task's source file name). Writes into --out:
ground truth at every whole second of each video (the box at the video's frame shown at that
second, interpolated between keyframes as CVAT does; person id = track id; actions = the checked
attributes), the label map (one action per attribute, ids 1..N), person proposals from the
configured detector (train and test), PySlowFast frame lists, empty exclusions, config.yaml (the
recipe --config with this dataset; `ava-detect train --config OUT/config.yaml`) and import.json.
Videos are split into train and val by video (--val-fraction, --seed), never by keyframe.

Every export is checked against its video before anything is written: a bad file is one error
naming the file and the XML line (or the track and frame). The detector step is resumable.

Example:
  ava-detect prep import --cvat exports/ --videos videos/ --out data/mine --config custom/cpu.yaml
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ava_detect.commands.common import add_config_arguments, add_detector_argument, bounded_float, bounded_int

#: The recipe used when --config is not given (a packaged config).
DEFAULT_RECIPE = "custom/slowfast_r50_finetune.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cvat", nargs="+", required=True, metavar="PATH",
                        help="CVAT for video 1.1 exports (.xml or .zip) and / or folders of them")
    parser.add_argument("--videos", nargs="+", required=True, metavar="PATH",
                        help="the videos the tasks were made from (files and / or folders)")
    parser.add_argument("--out", required=True, metavar="DIR", help="dataset folder to write")
    parser.add_argument("--val-fraction", type=bounded_float(0, 1, lo_open=True, hi_open=True), default=0.2,
                        metavar="F", help="share of the videos in val (default: 0.2; at least one video)")
    parser.add_argument("--seed", type=bounded_int(0, 2**32 - 1), default=0, help="seed of the split (default: 0)")
    parser.add_argument("--labelmap", metavar="PBTXT",
                        help="keep these actions (default: one action per checkbox attribute, in declared order)")
    add_detector_argument(parser)
    parser.add_argument("--detector-weights", metavar="FILE", help="person detector weights file")
    parser.add_argument("--boxes", metavar="BOXES.csv", help="box CSV for --detector csv (seconds from 0)")
    parser.add_argument("--box-threshold", type=float, metavar="P", help="minimum person score (default 0.8)")
    parser.add_argument("--device", default="auto", help="where the detector runs: cpu, cuda, ... (default: auto)")
    add_config_arguments(parser)
    parser.set_defaults(config=None)


def export_files(paths) -> list:
    """``--cvat``: files as given, folders -> their ``*.xml`` and ``*.zip`` (sorted)."""
    from ava_detect.io_paths import files_of

    def exports_in(folder: Path) -> list:
        return sorted(q for q in folder.iterdir() if q.is_file() and q.suffix.lower() in (".xml", ".zip"))

    return files_of(paths, exports_in, none_in_folder="folder has no CVAT exports (*.xml, *.zip)",
                    missing="CVAT export not found")


def _recipe_path(name):
    """``--config``: a file, or the name of a packaged config (``custom/cpu.yaml``); default :data:`DEFAULT_RECIPE`."""
    from ava_detect.config import packaged_config

    if name is not None and Path(name).is_file():
        return Path(name)
    return packaged_config(name or DEFAULT_RECIPE)


def run(args: argparse.Namespace) -> int:
    from ava_detect.commands.common import flag_overrides, resolve_device
    from ava_detect.commands.detect import DetectProgressBar
    from ava_detect.config import load_config
    from ava_detect.data.ava_files import read_labelmap
    from ava_detect.prep.cvat_import import import_cvat

    recipe_path = _recipe_path(args.config)
    flags = [("detector.backend", args.detector), ("detector.weights", args.detector_weights),
             ("detector.boxes_csv", args.boxes), ("detector.score_threshold", args.box_threshold)]
    recipe = load_config(recipe_path, [*args.overrides, *flag_overrides(flags)])
    labelmap = read_labelmap(args.labelmap) if args.labelmap else None
    progress = DetectProgressBar()
    try:
        s = import_cvat(export_files(args.cvat), args.videos, args.out, recipe=recipe, val_fraction=args.val_fraction,
                        seed=args.seed, labelmap=labelmap, device=resolve_device(args.device), progress=progress)
    finally:
        progress.close()
    print(f"imported {s.tasks} tasks, {s.tracks} tracks into {s.out}")
    for split in ("train", "val"):
        print(f"  {split:<5} {len(s.videos[split]):>5} videos {s.keyframes[split]:>7} keyframes {s.boxes[split]:>8} "
              f"boxes {s.proposals[split]:>8} proposals")
    if s.boxes_without_action:
        print(f"  boxes with no action checked (not in the ground truth): {s.boxes_without_action}")
    print("  boxes per action:")
    for name, n in s.boxes_per_action.items():
        print(f"    {name[:40]:<40} {n:>8}")
    print(f"train with: ava-detect train --config {Path(s.out) / 'config.yaml'}")
    return 0
