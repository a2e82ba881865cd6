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

Live streams (rtsp://, http(s)://, udp://, tcp://, srt://, `-` for standard input, a FIFO, a V4L2
camera such as /dev/video0, or a growing file with --live) are annotated as they arrive: frames
are written at most --max-latency seconds after they arrive, keyframes the models cannot score in
time are skipped (the JSON Lines say which), the video is a fragmented MP4 that plays while it
grows, results are flushed per keyframe, and Ctrl-C / SIGTERM / the end of the stream finish every
output (exit 0). A stream silent for --stall-timeout seconds ends with an error (exit 2, outputs
complete) unless --reconnect. Examples:

  ava-detect annotate rtsp://camera.local/stream --out cam.mp4 --jsonl cam.jsonl --fast --serve 8080
  ffmpeg -i input -f mpegts - | ava-detect annotate - --out live.mp4 --jsonl live.jsonl
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ava_detect.commands.common import (add_config_arguments, add_detector_argument, add_detector_model_argument,
                                        bounded_int)
from ava_detect.config import AnnotateConfig
from ava_detect.errors import AvaDetectError
from ava_detect.precision import PRECISIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", metavar="SOURCE",
                        help="input video file (any format FFmpeg reads) or live stream: a URL (rtsp, http(s), udp, "
                             "tcp, srt, ...), - for standard input, a FIFO or a V4L2 device")
    parser.add_argument("--out", required=True, metavar="OUT.mp4",
                        help="annotated video (h264; for a live stream a fragmented MP4 that plays while it grows)")
    parser.add_argument("--csv", metavar="OUT.csv", help="also write AVA-format rows with person ids")
    parser.add_argument("--json", metavar="OUT.json", help="also write the results as JSON (files only)")
    parser.add_argument("--video-id", metavar="ID",
                        help="first CSV column and box-CSV key (default: the file name without its suffix; for a "
                             "stream, the FIFO's or device's name, the URL's host, or 'stdin')")
    parser.add_argument("--jsonl", metavar="OUT.jsonl",
                        help="also write the results as JSON Lines, one line per keyframe (flushed as they come "
                             "for a live stream)")
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
    parser.add_argument("--max-height", type=bounded_int(0, 16384), metavar="PX",
                        help="scale pictures down to at most PX high on reading (0: as they are); the models, "
                             "drawing and written video work at that size (540 for a 1080p camera on a CPU)")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="number format of both models: auto (default: bf16 on CPUs with bf16 matrix units, "
                             "else fp32), fp32, bf16 (action probabilities then differ by about 1e-2)")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast (same as --precision bf16)")
    parser.add_argument("--fast", action="store_true",
                        help="the fastest measured CPU settings: person detector fasterrcnn_mobilenet_v3_large_320_fpn "
                             "(22.8 COCO box AP) at 320 px, the action model's inference graph (batch norm folded), "
                             "bf16 where the CPU has bf16 units. Explicit flags win")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    live = parser.add_argument_group("live streams")
    live.add_argument("--live", action="store_true",
                      help="read a regular file as a live stream that is still being written (wait at its end)")
    live.add_argument("--max-latency", type=float, metavar="SECONDS",
                      help="most seconds from a frame's arrival to its labelled output (default 5); keyframes the "
                           "models cannot score in time are skipped")
    live.add_argument("--stall-timeout", type=float, metavar="SECONDS",
                      help="a stream that sends no frame for this long has stalled (default 10)")
    live.add_argument("--reconnect", action="store_true",
                      help="reopen a stream that stalled, ended or failed (back-off 1, 2, 4 ... 30 s) instead of ending")
    live.add_argument("--serve", metavar="[HOST:]PORT",
                      help="show the annotated stream on an MJPEG page at http://HOST:PORT/ (HOST defaults to "
                           "127.0.0.1; PORT 0 picks a free one)")
    live.add_argument("--serve-public", action="store_true",
                      help="allow --serve on an address other than loopback (the page has no password)")
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
             ("annotate.batch_size", args.batch_size), ("annotate.max_height", args.max_height),
             ("annotate.max_latency", args.max_latency),
             ("annotate.stall_timeout", args.stall_timeout), ("annotate.reconnect", True if args.reconnect else None)]
    fast = list(FAST_CPU_OVERRIDES) if args.fast else []  # first: the user's overrides and flags win
    return fast + list(args.overrides) + [f"{k}={v}" for k, v in pairs if v is not None]


def run(args: argparse.Namespace) -> int:
    from ava_detect.annotate import load_annotate_config
    from ava_detect.data.live_source import is_live_source

    cfg = load_annotate_config(args.config, _overrides(args))
    if args.live or is_live_source(args.video):
        return _run_live(args, cfg)
    if args.serve:
        raise AvaDetectError("--serve shows a live stream; SOURCE is a file (pass --live to read it as one that "
                             "is still being written)", args.video)
    return _run_file(args, cfg)


def _model_inputs(args: argparse.Namespace, cfg) -> list:
    return [("--config", args.config), ("--weights", cfg.annotate.weights),
            ("--detector-weights", cfg.detector.weights or None), ("--boxes", cfg.detector.boxes_csv or None),
            ("--labelmap", cfg.annotate.labelmap or None)]


def _build_annotator(args: argparse.Namespace, cfg):
    from ava_detect.annotate import Annotator
    from ava_detect.commands.common import resolve_device

    annotator = Annotator.from_config(cfg, device=resolve_device(args.device))
    print(f"person detector: {annotator.detector.describe()}")
    print(f"action model: {annotator.predictor.describe()}")
    return annotator


def _run_file(args: argparse.Namespace, cfg) -> int:
    from tqdm import tqdm

    from ava_detect.annotate import check_output_paths
    from ava_detect.data.video import probe_video

    video = Path(args.video)
    check_output_paths(video, [args.out, args.csv, args.json, args.jsonl], inputs=_model_inputs(args, cfg))
    info = probe_video(video, fps=cfg.data.fps)  # bad input fails here, before any model is loaded
    annotator = _build_annotator(args, cfg)

    with tqdm(total=int(round(info.duration * info.rate)) or None, unit="frame", desc=video.name,
              dynamic_ncols=True) as bar:
        stats = annotator.annotate(video, out_video=args.out, out_csv=args.csv, out_json=args.json,
                                   out_jsonl=args.jsonl, video_id=args.video_id,
                                   progress=lambda done: bar.update(done - bar.n))
    t = stats.timings
    print(f"{stats.frames} frames, {stats.keyframes} keyframes, {stats.boxes} person boxes, {stats.tracks} people; "
          f"{stats.video_seconds / max(t['total'], 1e-9):.2f} s of video per second "
          f"(decode {t['decode']:.1f} s, detect {t['detect']:.1f} s, action {t['action']:.1f} s, "
          f"render {t['render'] + t['encode']:.1f} s)")
    _print_written(args, stats)
    return 0


def _print_written(args: argparse.Namespace, stats) -> None:
    print(f"wrote {args.out}")
    for path, what in ((args.csv, f"{stats.rows} rows"), (args.json, ""), (args.jsonl, "")):
        if path:
            print(f"wrote {path}" + (f" ({what})" if what else ""))


def _run_live(args: argparse.Namespace, cfg) -> int:
    """A live stream: outputs grow in place; SIGINT / SIGTERM finish them and exit 0."""
    import contextlib
    import signal
    import threading

    from tqdm import tqdm

    from ava_detect.annotate.live import LiveOptions, StreamStalled, check_live_outputs, stream_id
    from ava_detect.annotate.options import AnnotateOptions
    from ava_detect.io_paths import IOPaths

    if args.json:
        raise AvaDetectError("--json is one document written at the end; a live stream's results are written as "
                             "they come: use --jsonl (and --csv)", args.json)
    live = LiveOptions.from_config(cfg, follow=args.live)
    live.check(AnnotateOptions.from_config(cfg))
    check_live_outputs(args.video, [("--out", args.out), ("--csv", args.csv), ("--jsonl", args.jsonl)])
    paths = IOPaths()
    for label, path in _model_inputs(args, cfg):
        paths.input(label, path)
    paths.check()
    view = None
    if args.serve:
        from ava_detect.annotate.live_view import LiveView, parse_serve_address

        host, port = parse_serve_address(args.serve)
        view = LiveView(host, port, allow_public=args.serve_public)
    annotator = _build_annotator(args, cfg)

    stop = threading.Event()

    def on_signal(signum, frame) -> None:
        if not stop.is_set():
            print(f"\n{signal.Signals(signum).name}: finishing the outputs (again to quit at once)", flush=True)
            stop.set()
            signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    with contextlib.ExitStack() as stack:
        stack.callback(lambda: [signal.signal(s, h) for s, h in previous.items()])
        if view is not None:
            stack.enter_context(view)
            print(f"live view: {view.url}", flush=True)
        bars = []  # made when the stream is open, so an error to open it is the only line
        last = [0.0]

        def progress(stats) -> None:
            bar = bars[0]
            bar.update(stats.frames - bar.n)
            now = time.monotonic()
            if now - last[0] >= 0.5:
                last[0] = now
                bar.set_postfix_str(f"{stats.video_seconds:.0f} s, latency p50 {stats.frame_latency.quantile(0.5):.2f}"
                                    f" p95 {stats.frame_latency.quantile(0.95):.2f} s, "
                                    f"skipped {sum(stats.skipped.values())}", refresh=False)

        def opened(source) -> None:
            print(f"{source.name}: {source.width}x{source.height} at {source.rate:.3g} fps "
                  f"(latency budget {live.max_latency:g} s)", flush=True)
            bars.append(stack.enter_context(tqdm(unit="frame", desc=source.name, dynamic_ncols=True)))

        stalled = None
        try:
            stats = annotator.annotate_stream(args.video, out_video=args.out, live=live, out_csv=args.csv,
                                              video_id=args.video_id or stream_id(args.video),
                                              out_jsonl=args.jsonl, view=view, stop=stop, progress=progress,
                                              on_open=opened)
        except StreamStalled as e:
            stalled = e
    if stalled is not None:
        raise stalled
    lat = stats.frame_latency
    skipped = sum(stats.skipped.values())
    print(f"{stats.end_reason}: {stats.video_seconds:.1f} s of stream, {stats.frames} frames, "
          f"{stats.keyframes} keyframes scored, {skipped} skipped"
          + (f" ({', '.join(f'{n} {why}' for why, n in sorted(stats.skipped.items()))})" if skipped else "")
          + f"; latency p50 {lat.quantile(0.5):.2f} s, p95 {lat.quantile(0.95):.2f} s, max {lat.max:.2f} s "
          f"(budget {live.max_latency:g} s, {stats.over_budget} frames over)"
          + (f"; {stats.dropped} frames dropped" if stats.dropped else ""))
    _print_written(args, stats)
    return 0
