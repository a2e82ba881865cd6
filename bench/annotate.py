"""Benchmark of ``annotate``: seconds of video processed per second, split into decode / detect /
action model / render (drawing + h264 encoding), for the tiny and the full-size (R50) action
models; optionally the peak memory of a 1-minute vs a 10-minute video.

The pipeline is the library's (``Annotator.from_config``), as ``ava-detect annotate`` builds it.
All models have random weights (no download); the timings do not depend on the weights. The
person detector (torchvision Faster R-CNN R50-FPN v2 at its default input size and 1000 proposals)
runs on every keyframe and its time is what "detect" reports, but the boxes handed on are the
synthetic set's ground-truth boxes (2-4 people per keyframe), because a detector with random
weights would report arbitrary numbers of boxes and so skew the action-model and render timings.
The input is a synthetic 320x240 30 fps video. Numbers are measured in this run and printed;
nothing is asserted.

  python bench/annotate.py                      # tiny + R50, 10 s of video, on CPU (or the GPU if any)
  python bench/annotate.py --seconds 30 --models r50 --device cuda
  python bench/annotate.py --memory             # also: peak RSS, 1-minute vs 10-minute video (slow)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from ava_detect.config import packaged_config

MODELS = {"tiny": packaged_config("tiny.yaml"), "r50": packaged_config("ava/slowfast_r50_8x8.yaml")}


def _dataset(folder: Path, seconds: int, size=(320, 240)) -> Path:
    from ava_detect.synthetic import make_synthetic_dataset

    make_synthetic_dataset(folder, num_videos=2, seconds=seconds, size=size)
    return folder


def _video(root: Path) -> Path:
    return sorted((root / "videos").glob("*.mp4"))[0]


def _detector_weights(path: Path) -> Path:
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.detection.fasterrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None, num_classes=91)
    state = model.state_dict()
    state["roi_heads.box_predictor.cls_score.weight"].zero_()
    state["roi_heads.box_predictor.cls_score.bias"][1] = 12.0
    torch.save(state, path)
    return path


class _TimedDetector:
    """Runs ``detector`` (timed by the pipeline) and returns the ground-truth boxes of ``boxes``."""

    needs_keys = True

    def __init__(self, detector, boxes):
        self.detector, self.boxes = detector, boxes
        self.score_threshold = detector.score_threshold

    def detect(self, frames, *, keys=None):
        self.detector.detect(frames)
        return self.boxes.detect(frames, keys=keys)


def run_speed(video: Path, gt: Path, model_name: str, det_weights: Path, device: torch.device,
              min_size: int, tmp: Path) -> dict:
    from ava_detect.annotate import Annotator
    from ava_detect.config import load_config
    from ava_detect.detection import CsvPersonDetector, build_detector
    from ava_detect.model import build_model, save_checkpoint

    cfg = load_config(MODELS[model_name], [f"detector.weights={det_weights}", f"detector.min_size={min_size}",
                                           "annotate.second_offset=900"])
    torch.manual_seed(0)
    weights = tmp / f"{model_name}_random.pth"
    save_checkpoint(weights, model=build_model(cfg))
    detector = _TimedDetector(build_detector(cfg, device=device), CsvPersonDetector(path=gt))
    annotator = Annotator.from_config(cfg, weights=str(weights), device=device, detector=detector)
    stats = annotator.annotate(video, out_video=tmp / "out.mp4", out_csv=tmp / "out.csv")
    return {"stats": stats}


def print_speed(name: str, stats) -> None:
    t = stats.timings
    video_s = stats.video_seconds
    parts = [("decode", t["decode"]), ("detect", t["detect"]), ("action model", t["action"]),
             ("render", t["render"] + t["encode"])]
    other = t["total"] - sum(v for _, v in parts)
    print(f"\n{name}: {video_s:.1f} s of video ({stats.frames} frames, {stats.keyframes} keyframes, "
          f"{stats.boxes} boxes) in {t['total']:.1f} s -> {video_s / t['total']:.3f} s of video per second")
    print(f"  {'stage':<14}{'seconds':>9}{'share':>8}{'video s / s':>14}")
    for label, sec in parts + [("other", other)]:
        rate = f"{video_s / sec:14.2f}" if sec > 1e-9 else f"{'-':>14}"
        print(f"  {label:<14}{sec:9.2f}{100 * sec / t['total']:7.1f}%{rate}")
    print(f"  (render = drawing {t['render']:.2f} s + h264 encoding {t['encode']:.2f} s; "
          f"max frames buffered: {stats.max_buffered_frames})")


def peak_rss_kib(args) -> int:
    code = ("import resource, sys; from ava_detect import cli; rc = cli.main(sys.argv[1:]); "
            "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return int(proc.stdout.split("PEAK")[-1].split()[0])


def run_memory(tmp: Path) -> None:
    from ava_detect.model import build_model, save_checkpoint
    from ava_detect.config import load_config

    torch.manual_seed(0)
    weights = tmp / "tiny7.pth"
    save_checkpoint(weights, model=build_model(load_config(MODELS["tiny"], ["model.num_classes=7"])))
    peaks = {}
    for seconds in (60, 600):
        start = time.perf_counter()
        root = _dataset(tmp / f"mem{seconds}", seconds)
        video = _video(root)
        split = "val" if video.stem in (root / "annotations" / "val.csv").read_text() else "train"
        made = time.perf_counter() - start
        start = time.perf_counter()
        peaks[seconds] = peak_rss_kib([
            "-q", "annotate", str(video), "model.num_classes=7", "--config", str(MODELS["tiny"]), "--weights",
            str(weights), "--detector", "csv", "--boxes", str(root / "annotations" / f"{split}.csv"),
            "--second-offset", "900", "--labelmap", str(root / "annotations" / "labelmap.pbtxt"),
            "--out", str(tmp / f"m{seconds}.mp4"), "--csv", str(tmp / f"m{seconds}.csv"),
            "--json", str(tmp / f"m{seconds}.json"), "--device", "cpu"])
        print(f"  {seconds:4d} s video (320x240, 30 fps): peak RSS {peaks[seconds] / 1024:.0f} MiB "
              f"(made in {made:.0f} s, annotated in {time.perf_counter() - start:.0f} s)")
    print(f"  10-minute / 1-minute peak memory: {peaks[600] / peaks[60]:.3f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="length of the synthetic video (default 10)")
    parser.add_argument("--models", default="tiny,r50", help="comma-separated: tiny, r50")
    parser.add_argument("--device", default="auto", help="cpu, cuda (default: cuda when available)")
    parser.add_argument("--detector-min-size", type=int, default=800, help="detector input short side (default 800)")
    parser.add_argument("--memory", action="store_true", help="also compare peak memory, 1-minute vs 10-minute video")
    args = parser.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    print(f"device: {device} ({torch.get_num_threads()} CPU threads); torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        root = _dataset(tmp / "speed", max(args.seconds, 4))
        det_weights = _detector_weights(tmp / "frcnn.pth")
        for name in [n.strip() for n in args.models.split(",") if n.strip()]:
            if name not in MODELS:
                raise SystemExit(f"unknown model {name!r}; expected tiny or r50")
            video = _video(root)
            split = "val" if video.stem in (root / "annotations" / "val.csv").read_text() else "train"
            result = run_speed(video, root / "annotations" / f"{split}.csv", name, det_weights, device,
                               args.detector_min_size, tmp)
            print_speed(f"{name} action model + Faster R-CNN R50-FPN v2 (min_size {args.detector_min_size}) "
                        f"on {device}", result["stats"])
        if args.memory:
            print("\npeak memory (tiny model, boxes from the ground-truth CSV):")
            run_memory(tmp)


if __name__ == "__main__":
    main()
