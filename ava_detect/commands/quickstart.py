"""Everything once, on a CPU, in 10 to 11 minutes on 2 cores: make the synthetic AVA-format
dataset, train a small SlowFast on it from scratch, test it with the official frame-mAP, and
annotate a clip.

  ava-detect quickstart [--workdir quickstart] [--videos 24 --seconds 30 --size 320x240] [section.key=value ...]

The config and all overrides are checked before any work. Steps that are already done in the work
folder are reused when they were made with the same settings (the dataset when complete, training
when its last checkpoint is final; an interrupted training resumes); made with other settings,
they are made again. Outputs:
  <workdir>/data       the synthetic dataset (ava-detect prep synthetic)
  <workdir>/train      config, metrics.jsonl, checkpoints/{last,best}.pth (ava-detect train)
  <workdir>/test       detections.csv, report.txt/json/html, plots/ (ava-detect test)
  <workdir>/annotated  a validation video with boxes and action labels, plus CSV and JSON (ava-detect annotate)
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Tuple

from ava_detect.commands.common import frame_size, progress_bar

#: The recipe quickstart trains, relative to the project's configs/ folder.
RECIPE = "synthetic/slowfast_tiny.yaml"
#: The synthetic set it makes by default: 16 train + 8 val videos (432 + 216 keyframes, about 1,300 +
#: 650 people); more videos than ``prep synthetic``'s default of 12, since a small model trained from
#: scratch generalises from the figures and rooms it has seen (8 train videos: 0.64 val mAP vs 0.84 on
#: its own training keyframes).
VIDEOS, SECONDS, SIZE = 24, 30, (320, 240)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", default="quickstart", metavar="DIR", help="work folder (default: ./quickstart)")
    parser.add_argument("--config", metavar="YAML", help=f"training recipe (default: configs/{RECIPE})")
    parser.add_argument("--seed", type=int, default=0, help="synthetic dataset seed (default: 0)")
    parser.add_argument("--videos", type=int, default=VIDEOS,
                        help=f"synthetic videos, a third of them for validation (default: {VIDEOS})")
    parser.add_argument("--seconds", type=int, default=SECONDS,
                        help=f"length of each synthetic video (default: {SECONDS})")
    parser.add_argument("--size", type=frame_size, default=SIZE, metavar="WxH",
                        help="synthetic frame size (default: {}x{})".format(*SIZE))
    parser.add_argument("--no-annotate", action="store_true", help="skip the annotated clip")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value",
                        help="changes to the recipe, e.g. train.epochs=4")


def recipe_path() -> Path:
    """``configs/<RECIPE>`` as shipped with the package."""
    from ava_detect.config import packaged_config

    return packaged_config(RECIPE)


def _same_dataset(summary_file: Path, args: argparse.Namespace) -> bool:
    """Whether ``dataset.json`` describes a finished synthetic set made with these arguments, whose
    files are all there with the sizes they were written with."""
    import json

    from ava_detect.errors import AvaDetectError
    from ava_detect.text import read_text

    if not summary_file.is_file():
        return False
    try:
        summary = json.loads(read_text(summary_file, "dataset summary"))
        videos = summary["videos"]
        files = [summary_file.parent / f for f in summary["files"]]
        return (summary["seed"] == args.seed and summary["seconds"] == args.seconds
                and (summary["size"]["width"], summary["size"]["height"]) == tuple(args.size)
                and len(videos["train"]) + len(videos["val"]) == args.videos
                and all(f.is_file() for f in files) and sum(f.stat().st_size for f in files) == summary["bytes"])
    except (ValueError, KeyError, TypeError, AvaDetectError):
        return False


def _training_to_reuse(ckpt_dir: Path, cfg) -> Tuple[bool, bool]:
    """``(resume, finished)``: whether ``ckpt_dir/last.pth`` is a training of ``cfg`` to continue, and
    whether it is already complete. A checkpoint made with other settings (the data, the model, the
    recipe) is not reused: its folder is removed and training starts over."""
    import shutil

    from ava_detect.engine.checkpointing import LAST, load_training_checkpoint, training_changes

    last = ckpt_dir / LAST
    if not last.is_file():
        return False, False
    saved = load_training_checkpoint(last)
    changes = training_changes(saved["config"], cfg)
    if changes:
        shown = "; ".join(changes[:5]) + (f"; and {len(changes) - 5} more" if len(changes) > 5 else "")
        print(f"      the checkpoints there were trained with other settings ({shown}); training again")
        shutil.rmtree(ckpt_dir)
        return False, False
    return True, int(saved["epoch"]) >= cfg.train.epochs


def _annotate(cfg, config: Path, weights: Path, data: Path, out: Path) -> None:
    """Step 4: the first validation video annotated by the trained model, with the predicted boxes."""
    from tqdm.auto import tqdm

    from ava_detect.annotate import Annotator
    from ava_detect.commands.common import resolve_device
    from ava_detect.config import load_config
    from ava_detect.data.ava_files import read_ground_truth
    from ava_detect.data.video import probe_video

    video_id = str(read_ground_truth(data / cfg.data.val_gt)["video_id"].iloc[0])
    print(f"[4/4] annotating validation video {video_id} -> {out / (video_id + '.mp4')}")
    annotate_cfg = load_config(config, [f"annotate.weights={weights}", "detector.backend=csv",
                                        f"detector.boxes_csv={data / cfg.data.val_boxes}", "annotate.second_offset=900",
                                        f"annotate.labelmap={data / cfg.data.labelmap}"])
    annotator = Annotator.from_config(annotate_cfg, device=resolve_device(cfg.test.device))
    video = data / cfg.data.video_dir / f"{video_id}.mp4"
    info = probe_video(video, fps=annotate_cfg.data.fps)
    with tqdm(total=int(round(info.duration * info.rate)) or None, desc="      annotating", unit="frame",
              dynamic_ncols=True) as bar:
        stats = annotator.annotate(video, out_video=out / f"{video_id}.mp4",
                                   out_csv=out / f"{video_id}.csv", out_json=out / f"{video_id}.json",
                                   progress=lambda done: bar.update(done - bar.n))
    print(f"      {stats.frames} frames, {stats.keyframes} keyframes, {stats.boxes} person boxes, "
          f"{stats.rows} CSV rows")


def run(args: argparse.Namespace) -> int:
    import time

    from tqdm.auto import tqdm

    from ava_detect.commands.test import print_test_result
    from ava_detect.config import load_config, save_config
    from ava_detect.data.constants import FPS
    from ava_detect.synthetic import make_synthetic_dataset
    from ava_detect.engine.checkpointing import BEST, LAST
    from ava_detect.engine.testing import run_test
    from ava_detect.engine.trainer import train
    from ava_detect.io_paths import IOPaths
    from ava_detect.model.architectures import architecture

    start = time.perf_counter()
    work = Path(args.workdir)
    IOPaths().input("--config", args.config).folder("--workdir", work).check()
    data = work / "data"
    config = Path(args.config) if args.config else recipe_path()
    train_dir = work / "train"
    # the whole config, overrides included, is checked before any work
    cfg = load_config(config, [f"data.root={data}", f"train.output_dir={train_dir}",
                               f"test.output_dir={work / 'test'}", *args.overrides])
    architecture(cfg.model)  # the model section's checks (they live with the architectures)

    print(f"[1/4] synthetic dataset -> {data}")
    if _same_dataset(data / "dataset.json", args):
        print("      already there, reused")
    else:
        with tqdm(desc="      rendering", unit="frame", total=args.videos * args.seconds * FPS, dynamic_ncols=True) as bar:
            make_synthetic_dataset(data, seed=args.seed, num_videos=args.videos, seconds=args.seconds, size=args.size,
                                   overwrite=True, progress=bar.update)

    print(f"[2/4] training {config.name} -> {train_dir}")
    resume, finished = _training_to_reuse(train_dir / "checkpoints", cfg)
    if finished:
        print("      already trained, reused")
    else:
        result = train(cfg, resume=resume, progress=progress_bar)
        print(f"      {result.iterations} iterations in {result.seconds / 60:.1f} min, val mAP {result.last_map:.4f}")
    weights = train_dir / "checkpoints" / (BEST if (train_dir / "checkpoints" / BEST).is_file() else LAST)

    print(f"[3/4] testing {weights} -> {work / 'test'}")
    resolved = work / "quickstart_config.yaml"
    save_config(cfg, resolved)
    print_test_result(run_test(cfg, str(weights)))

    if not args.no_annotate:
        _annotate(cfg, resolved, weights, data, work / "annotated")
    print(f"quickstart done in {(time.perf_counter() - start) / 60:.1f} min; outputs in {work}")
    return 0
