"""Annotate a video: people boxed and labelled with their actions, plus AVA-format CSV / JSON results.

Streams the video (memory does not grow with its length): detects people at keyframes every
--every seconds (file times 0, every, 2*every, ...), scores each person's actions with the
action model on the clip around the keyframe (frames chosen by time on the 30 fps axis, as
for AVA), links people across keyframes into tracks, and writes an h264 video with the input's
frame count, size and frame rate (audio copied) where every frame shows the boxes and top
labels of the latest keyframe (boxes interpolated between keyframes).

CSV rows (no header): video_id,second,x1,y1,x2,y2,action_id,score,person_id with normalised
coordinates; `second` is the keyframe's whole second of file time plus --second-offset (use
900 for prepared AVA videos, whose t=0 is movie second 900).

The work is ava_detect.annotate.Annotator (Annotator.from_config(cfg).annotate(video, ...)); this
command maps its flags onto config overrides.

Defaults: the published PyTorchVideo SlowFast R50 AVA model (slowfast_r50_8x8_ava) and
torchvision's COCO Faster R-CNN, downloaded on first use; offline, pass local files with
--weights and --detector-weights. Config overrides (section.key=value) may go anywhere on the
line. Examples:

  ava-detect annotate clip.mp4 --out clip_annotated.mp4 --csv clip.csv --json clip.json
  ava-detect annotate movie.mp4 --out out.mp4 --config configs/tiny.yaml --weights tiny.pth \\
      --detector csv --boxes boxes.csv --second-offset 900
  ava-detect annotate clip.mp4 --out out.mp4 --config C.yaml --runtime onnxruntime --weights model.onnx
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ava_detect.commands.common import (add_config_arguments, add_detector_argument, add_detector_model_argument,
                                        bounded_int)
from ava_detect.config import AnnotateConfig
from ava_detect.precision import PRECISIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", metavar="VIDEO", help="input video (any format FFmpeg reads)")
    parser.add_argument("--out", required=True, metavar="OUT.mp4", help="annotated video (h264)")
    parser.add_argument("--csv", metavar="OUT.csv", help="also write AVA-format rows with person ids")
    parser.add_argument("--json", metavar="OUT.json", help="also write the results as JSON")
    parser.add_argument("--weights", metavar="FILE|NAME",
                        help=f"action-model weights: a file or a published name (default: {AnnotateConfig.weights})")
    parser.add_argument("--runtime", choices=["torch", "onnxruntime", "torchscript"],
                        help="what runs the action model (default torch); onnxruntime / torchscript run a file of "
                             "`ava-detect export` given as --weights (onnxruntime: pip install \"ava_detect[onnx]\")")
    add_detector_argument(parser)
    add_detector_model_argument(parser)
    parser.add_argument("--detector-weights", metavar="FILE",
                        help="person-detector weights file (default: the backend's COCO weights, downloaded)")
    parser.add_argument("--detector-size", type=bounded_int(32, 4096), metavar="PX",
                        help="the detector's input short side (default 800; the long side is capped at 5/3 of it). "
                             "Smaller is faster and misses more small people")
    parser.add_argument("--boxes", metavar="BOXES.csv",
                        help="AVA box CSV for --detector csv (predicted boxes or ground truth), "
                             "looked up by (file name without suffix, second)")
    parser.add_argument("--box-threshold", type=float, metavar="P", help="minimum person score (default 0.8)")
    parser.add_argument("--every", type=float, metavar="SECONDS",
                        help="seconds between keyframes, from file time 0 (default 1; fractions allowed)")
    parser.add_argument("--threshold", type=float, metavar="P",
                        help="minimum action probability written and drawn (default 0.3)")
    parser.add_argument("--top-k", type=int, metavar="K", help="most actions drawn per person (default 3)")
    parser.add_argument("--second-offset", type=int, metavar="S",
                        help="added to the file's whole seconds in the CSV / box lookup (default 0; 900 for AVA)")
    parser.add_argument("--labelmap", metavar="MAP.pbtxt", help="action names (default: the model's label map)")
    parser.add_argument("--batch-size", type=int, metavar="N", help="keyframe clips per action-model pass")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="number format of both models: auto (default: bf16 on CPUs with bf16 matrix units, "
                             "else fp32), fp32, bf16 (action probabilities then differ by about 1e-2)")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast (same as --precision bf16)")
    parser.add_argument("--fast", action="store_true",
                        help="the fastest measured CPU settings: person detector fasterrcnn_mobilenet_v3_large_320_fpn "
                             "(22.8 COCO box AP) at 320 px, the action model's inference graph (batch norm folded), "
                             "bf16 where the CPU has bf16 units. Explicit flags win")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    add_config_arguments(parser)


def _overrides(args: argparse.Namespace) -> list:
    """The config overrides of the command line: ``--fast``'s, then the positional ones, then the flags'."""
    from ava_detect.annotate.fast import FAST_CPU_OVERRIDES

    size = args.detector_size
    precision = "bf16" if args.bf16 else args.precision
    pairs = [("annotate.weights", args.weights), ("annotate.runtime", args.runtime), ("detector.backend", args.detector),
             ("detector.model", args.detector_model), ("detector.min_size", size),
             ("detector.max_size", None if size is None else (size * 5 + 2) // 3),
             ("annotate.precision", precision), ("detector.precision", precision),
             ("detector.weights", args.detector_weights), ("detector.boxes_csv", args.boxes),
             ("detector.score_threshold", args.box_threshold), ("annotate.every", args.every),
             ("annotate.threshold", args.threshold), ("annotate.top_k", args.top_k),
             ("annotate.second_offset", args.second_offset), ("annotate.labelmap", args.labelmap),
             ("annotate.batch_size", args.batch_size)]
    fast = list(FAST_CPU_OVERRIDES) if args.fast else []  # first: the user's overrides and flags win
    return fast + list(args.overrides) + [f"{k}={v}" for k, v in pairs if v is not None]


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ava_detect.annotate import Annotator, check_output_paths, load_annotate_config
    from ava_detect.commands.common import resolve_device
    from ava_detect.data.video import probe_video

    cfg = load_annotate_config(args.config, _overrides(args))
    video = Path(args.video)
    check_output_paths(video, [args.out, args.csv, args.json], inputs=[
        ("--config", args.config), ("--weights", cfg.annotate.weights), ("--detector-weights", cfg.detector.weights or None),
        ("--boxes", cfg.detector.boxes_csv or None), ("--labelmap", cfg.annotate.labelmap or None)])
    info = probe_video(video, fps=cfg.data.fps)  # bad input fails here, before any model is loaded
    annotator = Annotator.from_config(cfg, device=resolve_device(args.device))
    print(f"person detector: {annotator.detector.describe()}")
    print(f"action model: {annotator.predictor.describe()}")

    with tqdm(total=int(round(info.duration * info.rate)) or None, unit="frame", desc=video.name,
              dynamic_ncols=True) as bar:
        stats = annotator.annotate(video, out_video=args.out, out_csv=args.csv, out_json=args.json,
                                   progress=lambda done: bar.update(done - bar.n))
    t = stats.timings
    print(f"{stats.frames} frames, {stats.keyframes} keyframes, {stats.boxes} person boxes, {stats.tracks} people; "
          f"{stats.video_seconds / max(t['total'], 1e-9):.2f} s of video per second "
          f"(decode {t['decode']:.1f} s, detect {t['detect']:.1f} s, action {t['action']:.1f} s, "
          f"render {t['render'] + t['encode']:.1f} s)")
    print(f"wrote {args.out}")
    for path, what in ((args.csv, f"{stats.rows} rows"), (args.json, "")):
        if path:
            print(f"wrote {path}" + (f" ({what})" if what else ""))
    return 0
