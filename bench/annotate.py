"""Benchmark of ``annotate``: seconds of video processed per second, split into decode / detect /
action model / render (drawing + h264 encoding), for today's default settings and for ``--fast``,
end to end, and each stage's alternatives timed on the same keyframes, all as ratios against the
default measured in the same run.

The pipeline is the library's (``Annotator.from_config``), as ``ava-detect annotate`` builds it.
All models have random weights (no download); the timings do not depend on the weights. The
person detector (the configured torchvision COCO model) runs on every keyframe and its time is
what "detect" reports, but the boxes handed on are the synthetic set's ground-truth boxes (2-4
people per keyframe), because a detector with random weights would report arbitrary numbers of
boxes and so skew the action-model and render timings. (Random detector weights make every
proposal a person, so NMS and the box head do the most work they can.) The input is a synthetic
320x240 30 fps video. Numbers are measured in this run and printed; nothing is asserted.

Stage tables (``--stages``): each person-detector setting on the same keyframe pictures
(seconds per keyframe), and each action-model setting on the same keyframe clips and boxes
(seconds per keyframe, and the largest probability difference to the default fp32 model): fp32,
batch norm folded, folded + channels-last, bf16 autocast (only on CPUs with bf16 matrix units:
elsewhere bf16 matrix products are emulated, and the run prints the measured fp32 and bf16
matrix-multiply rates instead), and the exported ONNX file in onnxruntime (when installed).

  python bench/annotate.py                      # R50: default vs --fast end to end, and the stage tables
  python bench/annotate.py --models tiny,r50 --seconds 30 --no-stages
  python bench/annotate.py --memory             # also: peak RSS, 1-minute vs 10-minute video (slow)
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

from ava_detect.annotate.fast import FAST_CPU_OVERRIDES
from ava_detect.config import packaged_config

MODELS = {"tiny": packaged_config("tiny.yaml"), "r50": packaged_config("ava/slowfast_r50_8x8.yaml")}
#: End-to-end settings: name -> config overrides (``default``: today's defaults).
SETTINGS = {"default": [], "fast": list(FAST_CPU_OVERRIDES)}
#: Person-detector settings of the stage table: (label, overrides of the ``detector`` section).
DETECTOR_SETTINGS: List[Tuple[str, List[str]]] = [
    ("fasterrcnn_resnet50_fpn_v2 800 px, 1000 proposals (default)", []),
    ("fasterrcnn_resnet50_fpn_v2 480 px, 300 proposals",
     ["detector.min_size=480", "detector.max_size=800", "detector.proposals=300"]),
    ("fasterrcnn_resnet50_fpn 480 px, 300 proposals",
     ["detector.model=fasterrcnn_resnet50_fpn", "detector.min_size=480", "detector.max_size=800",
      "detector.proposals=300"]),
    ("fasterrcnn_mobilenet_v3_large_fpn 800 px, 1000 proposals", ["detector.model=fasterrcnn_mobilenet_v3_large_fpn"]),
    ("fasterrcnn_mobilenet_v3_large_fpn 480 px, 300 proposals",
     ["detector.model=fasterrcnn_mobilenet_v3_large_fpn", "detector.min_size=480", "detector.max_size=800",
      "detector.proposals=300"]),
    ("  same, one keyframe per pass",
     ["detector.model=fasterrcnn_mobilenet_v3_large_fpn", "detector.min_size=480", "detector.max_size=800",
      "detector.proposals=300", "detector.batch_size=1"]),
    ("fasterrcnn_mobilenet_v3_large_fpn 320 px, 150 proposals",
     ["detector.model=fasterrcnn_mobilenet_v3_large_fpn", "detector.min_size=320", "detector.max_size=533",
      "detector.proposals=150"]),
    ("fasterrcnn_mobilenet_v3_large_320_fpn 320 px, 150 proposals",
     ["detector.model=fasterrcnn_mobilenet_v3_large_320_fpn", "detector.min_size=320", "detector.max_size=640",
      "detector.proposals=150"]),
    ("  same, one keyframe per pass (--fast)",
     ["detector.model=fasterrcnn_mobilenet_v3_large_320_fpn", "detector.min_size=320", "detector.max_size=640",
      "detector.proposals=150", "detector.batch_size=1"]),
]


def _dataset(folder: Path, seconds: int, size=(320, 240)) -> Path:
    from ava_detect.synthetic import make_synthetic_dataset

    make_synthetic_dataset(folder, num_videos=2, seconds=seconds, size=size)
    return folder


def _video(root: Path) -> Path:
    return sorted((root / "videos").glob("*.mp4"))[0]


def _detector_weights(folder: Path, model: str) -> Path:
    """Random weights of the torchvision COCO ``model`` whose every proposal is a person (see the docstring)."""
    import torchvision.models.detection as detection

    from ava_detect.detection.coco_models import COCO_DETECTORS

    path = folder / f"{model}_random.pth"
    if not path.exists():
        torch.manual_seed(0)
        net = getattr(detection, COCO_DETECTORS[model].builder)(weights=None, weights_backbone=None, num_classes=91)
        state = net.state_dict()
        state["roi_heads.box_predictor.cls_score.weight"].zero_()
        state["roi_heads.box_predictor.cls_score.bias"][1] = 12.0
        torch.save(state, path)
    return path


def _config(model_name: str, overrides: Sequence[str], tmp: Path):
    """The config of ``model_name`` with ``overrides`` and random detector weights of the chosen detector."""
    from ava_detect.config import load_config

    cfg = load_config(MODELS[model_name], ["annotate.second_offset=900", *overrides])
    return load_config(MODELS[model_name], ["annotate.second_offset=900", *overrides,
                                            f"detector.weights={_detector_weights(tmp, cfg.detector.model)}"])


def _action_weights(model_name: str, tmp: Path) -> Path:
    from ava_detect.model import build_model, save_checkpoint

    path = tmp / f"{model_name}_random.pth"
    if not path.exists():
        torch.manual_seed(0)
        save_checkpoint(path, model=build_model(_config(model_name, [], tmp)))
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


def run_speed(video: Path, gt: Path, model_name: str, overrides: Sequence[str], device: torch.device, tmp: Path):
    """One ``annotate`` pass with the settings ``overrides``; returns (stats, detector line, action-model line)."""
    from ava_detect.annotate import Annotator
    from ava_detect.detection import CsvPersonDetector, build_detector

    cfg = _config(model_name, overrides, tmp)
    detector = build_detector(cfg, device=device)
    timed = _TimedDetector(detector, CsvPersonDetector(path=gt))
    annotator = Annotator.from_config(cfg, weights=str(_action_weights(model_name, tmp)), device=device,
                                      detector=timed)
    stats = annotator.annotate(video, out_video=tmp / "out.mp4", out_csv=tmp / "out.csv")
    return stats, detector.describe(), annotator.predictor.describe()


def _stage_seconds(stats) -> Dict[str, float]:
    t = stats.timings
    parts = {"decode": t["decode"], "detect": t["detect"], "action model": t["action"],
             "render": t["render"] + t["encode"]}
    parts["other"] = t["total"] - sum(parts.values())
    parts["total"] = t["total"]
    return parts


def print_speed(name: str, stats, reference=None) -> None:
    """The stage table of one pass; with ``reference`` (the default's stats), each stage's ratio against it."""
    video_s = stats.video_seconds
    t = stats.timings
    print(f"\n{name}: {video_s:.1f} s of video ({stats.frames} frames, {stats.keyframes} keyframes, "
          f"{stats.boxes} boxes) in {t['total']:.1f} s -> {video_s / t['total']:.3f} s of video per second")
    ref = _stage_seconds(reference) if reference is not None else None
    print(f"  {'stage':<14}{'seconds':>9}{'share':>8}{'s/keyframe':>12}{'video s / s':>13}"
          + (f"{'vs default':>12}" if ref else ""))
    for label, sec in _stage_seconds(stats).items():
        rate = f"{video_s / sec:13.2f}" if sec > 1e-9 else f"{'-':>13}"
        line = f"  {label:<14}{sec:9.2f}{100 * sec / t['total']:7.1f}%{sec / max(stats.keyframes, 1):12.3f}{rate}"
        if ref:
            line += f"{ref[label] / sec:11.2f}x" if sec > 1e-3 and ref[label] > 1e-3 else f"{'-':>12}"
        print(line)
    print(f"  (render = drawing {t['render']:.2f} s + h264 encoding {t['encode']:.2f} s; "
          f"max frames buffered: {stats.max_buffered_frames})")


# ---- stage tables ---------------------------------------------------------------------------------------

def _keyframes(video: Path, gt: Path, seconds: int, num_frames: int, sampling_rate: int):
    """The first ``seconds`` keyframes of ``video``: pictures, clips (frames by time, as annotate takes
    them) and ground-truth boxes in pixels."""
    from ava_detect.data.sampler import clip_frame_indices
    from ava_detect.data.video import VideoReader
    from ava_detect.detection import CsvPersonDetector

    reader = VideoReader(video)
    try:
        frames = [reader.rgb(frame) for _, frame in reader.frames()]
    finally:
        reader.close()
    boxes_source = CsvPersonDetector(path=gt)
    pictures, clips = [], []
    for s in range(seconds):
        pictures.append(frames[min(30 * s, len(frames) - 1)])
        idx = clip_frame_indices(30 * s, num_frames=num_frames, sampling_rate=sampling_rate,
                                 num_video_frames=len(frames))
        clips.append([frames[int(i)] for i in idx])
    keys = [(video.stem, 900 + s) for s in range(seconds)]
    boxes = [b for b, _ in boxes_source.detect(pictures, keys=keys)]
    return pictures, clips, boxes


def _best_time(fn, repeats: int) -> float:
    fn()  # warm-up (one-time allocations, oneDNN kernel choice)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def detector_table(model_name: str, pictures, device, tmp: Path, repeats: int) -> None:
    from ava_detect.detection import build_detector

    print(f"\nperson detector on {len(pictures)} keyframe pictures (320x240), best of {repeats}:")
    print(f"  {'setting':<66}{'s/keyframe':>11}{'vs default':>12}")
    ref = None
    for label, overrides in DETECTOR_SETTINGS:
        detector = build_detector(_config(model_name, overrides, tmp), device=device)
        sec = _best_time(lambda: detector.detect(pictures), repeats) / len(pictures)
        ref = ref or sec
        print(f"  {label:<66}{sec:11.3f}{ref / sec:11.2f}x")


def _matmul_rates(threads: int) -> Dict[str, float]:
    """GFLOP/s of a 1024^2 matrix product in fp32 and bf16 with the current threads."""
    out = {}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.randn(1024, 1024, dtype=dtype), torch.randn(1024, 1024, dtype=dtype)
        sec = _best_time(lambda: a @ b, 2)
        out[str(dtype).replace("torch.", "")] = 2 * 1024 ** 3 / sec / 1e9
    return out


def action_table(model_name: str, clips, boxes, device, tmp: Path, repeats: int, batch: int) -> None:
    from ava_detect.annotate.annotator import build_predictor
    from ava_detect.precision import cpu_has_bf16_units

    clips, boxes = clips[:batch], boxes[:batch]
    weights = str(_action_weights(model_name, tmp))
    variants: List[Tuple[str, List[str]]] = [
        ("fp32 (default)", ["annotate.precision=fp32"]),
        ("fp32, inference graph (--fast)", ["annotate.precision=fp32", "annotate.fuse_bn=true"]),
    ]
    bf16_note = ""
    if device.type != "cpu" or cpu_has_bf16_units():
        variants.append(("bf16 autocast, inference graph", ["annotate.precision=bf16"]))
    else:
        rates = _matmul_rates(torch.get_num_threads())
        bf16_note = (f"  bf16: not timed, this CPU has no bf16 matrix units (matrix multiply: fp32 "
                     f"{rates['float32']:.1f} GFLOP/s, bf16 {rates['bfloat16']:.2f} GFLOP/s)")
    print(f"\naction model ({model_name}) on {len(clips)} keyframe clips ({sum(len(b) for b in boxes)} boxes) "
          f"in one pass, best of {repeats} (inference graph: batch norm folded, channels-last, frame-wise "
          f"convolutions in 2D):")
    print(f"  {'setting':<48}{'s/keyframe':>11}{'vs default':>12}{'max |dp|':>11}")
    ref_time = ref_probs = None
    results = []
    for label, overrides in variants:
        predictor = build_predictor(_config(model_name, overrides, tmp), weights=weights, device=device)
        results.append((label, predictor))
    plain = results[0][1]
    for position, (label, kwargs) in enumerate((("fp32, batch norm folded only", dict(channels_last=False)),
                                                ("fp32, folded + channels-last, 3D convolutions",
                                                 dict(channels_last=True, frame_convs=False))), start=1):
        predictor = build_predictor(_config(model_name, ["annotate.precision=fp32"], tmp), weights=weights,
                                    device=device)
        predictor.model = plain.model.optimized_for_inference(**kwargs)
        results.insert(position, (label, predictor))
    onnx = _onnx_predictor(model_name, weights, device, tmp)
    if onnx is not None:
        results.append(("onnxruntime fp32 (exported, folded)", onnx))
    for label, predictor in results:
        probs = predictor.predict(clips, boxes)
        sec = _best_time(lambda: predictor.predict(clips, boxes), repeats) / len(clips)
        if ref_time is None:
            ref_time, ref_probs = sec, probs
        diff = max(float((p - r).abs().max()) for p, r in zip(probs, ref_probs) if len(p))
        print(f"  {label:<48}{sec:11.3f}{ref_time / sec:11.2f}x{diff:11.2e}")
    if bf16_note:
        print(bf16_note)


def _onnx_predictor(model_name: str, weights: str, device, tmp: Path):
    """The model exported to ONNX, in onnxruntime behind the same transform; None without onnxruntime."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return None
    from ava_detect.annotate.annotator import build_predictor
    from ava_detect.deploy import export_from_config

    path = tmp / f"{model_name}.onnx"
    export_from_config(_config(model_name, [], tmp), weights=weights, fmt="onnx", out=path)
    return build_predictor(_config(model_name, ["annotate.runtime=onnxruntime"], tmp), weights=str(path),
                           device=device)


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
    parser.add_argument("--models", default="r50", help="comma-separated: tiny, r50 (default r50)")
    parser.add_argument("--settings", default="default,fast", help="end-to-end settings: default, fast")
    parser.add_argument("--device", default="auto", help="cpu, cuda (default: cuda when available)")
    parser.add_argument("--no-stages", action="store_true", help="skip the per-stage tables")
    parser.add_argument("--repeats", type=int, default=2, help="timed repeats per stage setting (best is shown)")
    parser.add_argument("--memory", action="store_true", help="also compare peak memory, 1-minute vs 10-minute video")
    args = parser.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    from ava_detect.precision import cpu_has_bf16_units

    print(f"device: {device} ({torch.get_num_threads()} CPU threads, {torch.backends.cpu.get_cpu_capability()}, "
          f"bf16 matrix units: {'yes' if cpu_has_bf16_units() else 'no'}); torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        root = _dataset(tmp / "speed", max(args.seconds, 4))
        video = _video(root)
        split = "val" if video.stem in (root / "annotations" / "val.csv").read_text() else "train"
        gt = root / "annotations" / f"{split}.csv"
        for name in [n.strip() for n in args.models.split(",") if n.strip()]:
            if name not in MODELS:
                raise SystemExit(f"unknown model {name!r}; expected tiny or r50")
            reference = None
            for setting in [s.strip() for s in args.settings.split(",") if s.strip()]:
                if setting not in SETTINGS:
                    raise SystemExit(f"unknown setting {setting!r}; expected {', '.join(SETTINGS)}")
                stats, det, act = run_speed(video, gt, name, SETTINGS[setting], device, tmp)
                print_speed(f"{name}, {setting} settings on {device} (detector: {det}; action model: {act})",
                            stats, reference)
                if reference is None:
                    reference = stats
                else:
                    print(f"  end to end: {reference.timings['total'] / stats.timings['total']:.2f}x the default's "
                          f"speed")
            if not args.no_stages:
                cfg = _config(name, [], tmp)
                pictures, clips, boxes = _keyframes(video, gt, min(args.seconds, 4), cfg.model.num_frames,
                                                    cfg.model.sampling_rate)
                detector_table(name, pictures, device, tmp, args.repeats)
                action_table(name, clips, boxes, device, tmp, args.repeats, cfg.annotate.batch_size)
        if args.memory:
            print("\npeak memory (tiny model, boxes from the ground-truth CSV):")
            run_memory(tmp)


if __name__ == "__main__":
    main()
