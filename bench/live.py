"""Benchmark of ``annotate`` on a live stream at 1x real time: latency, keyframes scored and skipped,
memory over time.

A feeder process plays a synthetic video (people moving, 30 fps, MPEG-TS, looped) over TCP at real
time; the annotator reads it as ``ava-detect annotate tcp://...`` does (``Annotator.annotate_stream``),
for ``--minutes`` minutes, then is stopped as by Ctrl-C. Reported per setting:

- frame latency p50 / p95 / max: from a frame's arrival to its annotated frame being written;
- result latency p50 / p95: from a keyframe picture's arrival to its scores being written;
- keyframes scored and skipped per minute, and scored as a share of what the same models score per
  minute on the same video read as a file, as fast as they can (the reference, measured in this run);
- resident memory after 1 minute, at the end and at most, and end / 1 minute (flat: about 1.00x).

All models have random weights (no download; timings do not depend on weights). The person
detector runs on every keyframe (timed), but the boxes handed on are the synthetic set's
ground-truth boxes (2-4 people), cycled, so the action model always has people to score. Nothing
is asserted; numbers are printed.

  python bench/live.py                                  # the three settings below, 10 minutes each
  python bench/live.py --minutes 2 --runs tiny
  python bench/live.py --size 1920x1080 --fps 25 --runs r50-bf16-light --minutes 3   # a 1080p camera
  python bench/live.py --size 1920x1080 --fps 25 --runs r50-bf16-light --minutes 3 --set annotate.max_height=540
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from annotate import _action_weights, _config, _dataset, _video  # noqa: E402  (bench/annotate.py)

from ava_detect.annotate.fast import FAST_CPU_OVERRIDES  # noqa: E402

#: name -> (model, config overrides, what it is)
RUNS: Dict[str, tuple] = {
    "tiny": ("tiny", [*FAST_CPU_OVERRIDES, "annotate.precision=fp32"],
             "tiny SlowFast (fp32), fasterrcnn_mobilenet_v3_large_320_fpn at 320 px"),
    "r50-bf16": ("r50", ["annotate.precision=bf16", "detector.precision=bf16"],
                 "SlowFast R50 (bf16), fasterrcnn_resnet50_fpn_v2 at 800 px (the default detector)"),
    "r50-bf16-light": ("r50", [*FAST_CPU_OVERRIDES, "annotate.precision=bf16", "detector.precision=bf16"],
                       "SlowFast R50 (bf16), fasterrcnn_mobilenet_v3_large_320_fpn at 320 px (--fast)"),
}


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# ---- the stream -------------------------------------------------------------------------------------


def encode_ts(video: Path, out: Path, fps: int, max_frames: int = 1 << 30) -> Path:
    """``video`` (its first ``max_frames`` frames) re-encoded as MPEG-TS (h264, no B-frames, a key frame per
    second, frame i at i / fps)."""
    import av

    with av.open(str(video)) as src, av.open(str(out), "w", format="mpegts") as dst:
        stream = dst.add_stream("libx264", rate=fps)
        stream.width, stream.height = src.streams.video[0].width, src.streams.video[0].height
        stream.pix_fmt = "yuv420p"
        stream.options = {"bf": "0", "g": str(fps), "preset": "veryfast", "crf": "23"}
        for i, frame in enumerate(src.decode(video=0)):
            if i >= max_frames:
                break
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in stream.encode(frame):
                dst.mux(packet)
        for packet in stream.encode(None):
            dst.mux(packet)
    return out


def feed(ts: Path, port: int) -> None:
    """(Run as a process.) Serve ``ts`` on 127.0.0.1:``port`` to one client, looped, at real-time pace."""
    import av

    server = socket.create_server(("127.0.0.1", port))
    print("listening", flush=True)
    conn, _ = server.accept()
    out_file = conn.makefile("wb", buffering=0)
    try:
        with av.open(out_file, "w", format="mpegts", container_options={"flush_packets": "1"}) as dst:
            with av.open(str(ts)) as probe:
                stream = dst.add_stream_from_template(probe.streams.video[0])
            start, offset = time.monotonic(), 0.0
            while True:
                last = 0.0
                with av.open(str(ts)) as src:
                    for packet in src.demux(src.streams.video[0]):
                        if packet.dts is None:
                            continue
                        t = float(packet.dts * packet.time_base)
                        last = max(last, t)
                        wait = start + offset + t - time.monotonic()
                        if wait > 0:
                            time.sleep(wait)
                        shift = int(round(offset / float(packet.time_base)))
                        packet.pts, packet.dts = packet.pts + shift, packet.dts + shift
                        packet.stream = stream
                        dst.mux(packet)
                offset += last + float(1 / stream.average_rate if stream.average_rate else 1 / 30)
    except Exception:  # noqa: BLE001 - the reader went away (the benchmark stops it by closing the connection)
        pass


class _CycledBoxes:
    """Runs ``detector`` (timed by the pipeline) and hands on ground-truth boxes, cycled by keyframe."""

    def __init__(self, detector, boxes: List[np.ndarray], width: int, height: int):
        self.detector, self.boxes = detector, boxes
        self.scale = np.array([width, height, width, height], dtype=np.float32)
        self.score_threshold = detector.score_threshold
        self.calls = 0

    def detect(self, frames, *, keys=None):
        self.detector.detect(frames)
        out = []
        for _ in frames:
            b = torch.from_numpy(self.boxes[self.calls % len(self.boxes)] * self.scale)
            self.calls += 1
            out.append((b, torch.ones(len(b))))
        return out

    def describe(self) -> str:
        return self.detector.describe()


def _gt_boxes(root: Path) -> List[np.ndarray]:
    import pandas as pd

    frames = [pd.read_csv(root / "annotations" / f"{s}.csv", header=None) for s in ("train", "val")]
    table = pd.concat(frames)
    out = []
    for _, group in table.groupby([0, 1]):
        out.append(group[[2, 3, 4, 5]].drop_duplicates().to_numpy(np.float32))
    return out


def _annotator(name: str, tmp: Path, boxes: List[np.ndarray], width: int, height: int, extra: Sequence[str]):
    from ava_detect.annotate import Annotator
    from ava_detect.detection import build_detector

    model, overrides, _ = RUNS[name]
    cfg = _config(model, [*overrides, *extra], tmp)
    detector = _CycledBoxes(build_detector(cfg, device="cpu"), boxes, width, height)
    return Annotator.from_config(cfg, weights=str(_action_weights(model, tmp)), device="cpu", detector=detector)


# ---- one setting ------------------------------------------------------------------------------------


def offline_rate(annotator, video: Path, tmp: Path) -> float:
    """Keyframes per minute the models can score back to back: their seconds per keyframe (detector + action
    model) on ``video`` read as a file."""
    stats = annotator.annotate(video, out_video=tmp / "offline.mp4")
    return 60.0 * stats.keyframes / (stats.timings["detect"] + stats.timings["action"])


def run_live(name: str, ts: Path, video: Path, root: Path, tmp: Path, minutes: float, max_latency: float,
             every: float, extra: Sequence[str] = ()) -> None:
    import av

    from ava_detect.annotate import LiveOptions

    with av.open(str(ts)) as c:
        width, height = c.streams.video[0].width, c.streams.video[0].height
    annotator = _annotator(name, tmp, _gt_boxes(root), width, height,
                           [f"annotate.every={every}", "annotate.batch_size=1", *extra])
    print(f"\n## {name}: {RUNS[name][2]}" + (f"; {' '.join(extra)}" if extra else ""))
    print(f"  person detector: {annotator.detector.describe()}; action model: {annotator.predictor.describe()}")
    reference = offline_rate(annotator, video, tmp)

    port = _free_port()
    feeder = subprocess.Popen([sys.executable, __file__, "--feed", str(ts), "--port", str(port)],
                              stdout=subprocess.PIPE, text=True)
    feeder.stdout.readline()  # "listening"
    stop = threading.Event()
    memory: List[tuple] = []
    start = time.monotonic()

    def sample() -> None:
        while not stop.wait(5.0):
            memory.append((time.monotonic() - start, rss_mib()))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    timer = threading.Timer(minutes * 60.0, stop.set)
    timer.start()
    out = tmp / f"{name}_{port}"
    try:
        stats = annotator.annotate_stream(f"tcp://127.0.0.1:{port}", out_video=out.with_suffix(".mp4"),
                                          out_jsonl=out.with_suffix(".jsonl"), stop=stop,
                                          live=LiveOptions(max_latency=max_latency))
    finally:
        stop.set()
        timer.cancel()
        feeder.kill()
        feeder.wait()
    memory.append((time.monotonic() - start, rss_mib()))
    wall_min = stats.wall_seconds / 60.0
    skipped = sum(stats.skipped.values())
    at_1 = next((m for t, m in memory if t >= 60.0), memory[0][1])
    f, r = stats.frame_latency, stats.result_latency
    print(f"  {stats.video_seconds:.0f} s of stream in {stats.wall_seconds:.0f} s, {stats.frames} frames, "
          f"{stats.dropped} dropped; budget {max_latency:g} s, keyframes every {every:g} s")
    print(f"  frame latency  p50 {f.quantile(0.5):.2f} s  p95 {f.quantile(0.95):.2f} s  max {f.max:.2f} s  "
          f"({stats.over_budget} frames over budget)")
    print(f"  result latency p50 {r.quantile(0.5):.2f} s  p95 {r.quantile(0.95):.2f} s")
    print(f"  keyframes per minute: {stats.keyframes / wall_min:.1f} scored, {skipped / wall_min:.1f} skipped "
          f"({', '.join(f'{k} {v}' for k, v in sorted(stats.skipped.items())) or 'none'}); models "
          f"{stats.model_seconds:.2f} s per keyframe")
    print(f"  scored {stats.keyframes / wall_min:.1f}/min; the models score {reference:.1f}/min back to back on the "
          f"same video read as a file (reference, this run): {stats.keyframes / wall_min / reference:.2f}x of that")
    print(f"  memory (RSS): {at_1:.0f} MiB after 1 min, {memory[-1][1]:.0f} MiB at the end, "
          f"{max(m for _, m in memory):.0f} MiB at most; end / 1 min {memory[-1][1] / at_1:.3f}x")
    print("  memory timeline (min: MiB): " + ", ".join(
        f"{t / 60:.1f}: {m:.0f}" for t, m in memory[:: max(1, len(memory) // 12)]))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: Sequence[str] = ()) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated settings: {', '.join(RUNS)}")
    parser.add_argument("--minutes", type=float, default=10.0, help="minutes of stream per setting (default 10)")
    parser.add_argument("--size", default="320x240", help="stream picture size WxH (default 320x240)")
    parser.add_argument("--fps", type=int, default=30, help="stream frame rate (default 30)")
    parser.add_argument("--max-latency", type=float, default=5.0, help="latency budget (s, default 5)")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between keyframes (default 1)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="more config overrides for every setting, e.g. annotate.max_height=540")
    parser.add_argument("--feed", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv or None)
    if args.feed:
        feed(Path(args.feed), args.port)
        return
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    width, height = (int(v) for v in args.size.lower().split("x"))
    print(f"# annotate on a live stream: {width}x{height} at {args.fps} fps, 1x real time, {args.minutes:g} min "
          f"per setting; torch threads {torch.get_num_threads()}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        root = _dataset(tmp / "set", 60, size=(width, height))
        video = _video(root)
        if args.fps != 30:
            print(f"  (the synthetic video is made at 30 fps and re-timed to {args.fps} fps)")
        ts = encode_ts(video, tmp / "stream.ts", args.fps)
        reference = encode_ts(video, tmp / "reference.ts", args.fps, max_frames=20 * args.fps)
        for name in args.runs.split(","):
            run_live(name.strip(), ts, reference, root, tmp, args.minutes, args.max_latency, args.every, args.set)


if __name__ == "__main__":
    main()
