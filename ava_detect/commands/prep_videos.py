"""Cut the AVA movies to their annotated segment, at exactly 30 fps, as h264 for fast seeking.

For each movie in --src (any container and codec PyAV reads), writes --out/<video_id>.mp4 with
movie seconds 900..1801 (the file's t=0 is movie second 900): frame i is the movie's picture at
900 + i/30 s (the frame whose presentation interval contains that time, so 23.976, 25 or 29.97
fps sources are resampled the way a 30 fps player shows them). Optionally resized so the short
side is --short-side pixels. Encoded with libx264 with a keyframe every --gop frames (fast
seeking) and non-reference frames only at odd indices (clip readers skip decoding them).

Finished files are skipped, so an interrupted run resumes: the settings each output was made with
(seconds, size, gop, crf, preset, and the source movie's name and size) are recorded beside it
(.<video_id>.mp4.settings.json), and an output made with other settings, or without a record, is
cut again (the command says which and why). Each output is written under a temporary name and
renamed when complete, so a partial file never looks finished. --out must not be --src. Files that
fail are reported at the end; the others are still made. Movies shorter than the segment give
shorter videos (with a warning); their late keyframes are clamped when read.

Example:
  ava-detect prep videos --src ava/raw --out data/ava/videos --short-side 320 --workers 4
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import List, Tuple

from ava_detect.commands.common import bounded_float, bounded_int
from ava_detect.data.constants import SEGMENT_END_SECOND, SEGMENT_START_SECOND
from ava_detect.errors import AvaDetectError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--src", required=True, metavar="RAW_DIR", help="folder of the downloaded movies")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for <video_id>.mp4")
    parser.add_argument("--video-list", metavar="FILE",
                        help="only these movies: one file name per line (ava_file_names_trainval_v2.1.txt)")
    parser.add_argument("--short-side", type=bounded_int(0, 16384), default=0, metavar="N",
                        help="resize so the short side is N pixels (default: keep the size)")
    parser.add_argument("--gop", type=int, default=16, metavar="N",
                        help="frames between keyframes, even (default: 16; smaller seeks faster, files grow)")
    parser.add_argument("--crf", type=bounded_int(0, 51), default=20, help="x264 quality, lower is better (default: 20)")
    parser.add_argument("--preset", default="fast", help="x264 preset (default: fast)")
    parser.add_argument("--start-second", type=bounded_float(0), default=SEGMENT_START_SECOND,
                        help=f"first movie second (default: {SEGMENT_START_SECOND})")
    parser.add_argument("--end-second", type=bounded_float(0), default=SEGMENT_END_SECOND,
                        help=f"end movie second, exclusive (default: {SEGMENT_END_SECOND})")
    parser.add_argument("--workers", type=bounded_int(1, 1024), default=1, metavar="N", help="movies encoded in parallel (default: 1)")
    parser.add_argument("--no-progress", action="store_true", help="do not show a progress bar")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ava_detect.io_paths import IOPaths
    from ava_detect.prep.videos import EncodeSettings, check_folders, cut_videos, find_movies, plan_cuts, x264_options

    settings = EncodeSettings(start=args.start_second, end=args.end_second, short_side=args.short_side,
                              gop=args.gop, crf=args.crf, preset=args.preset)
    x264_options(settings)  # validate before starting
    if args.end_second <= args.start_second:
        raise AvaDetectError(f"--end-second ({args.end_second:g}) must be after --start-second ({args.start_second:g})")
    out = Path(args.out)
    check_folders(Path(args.src), out)
    IOPaths().input("--src", args.src).input("--video-list", args.video_list).folder("--out", out).check()
    files = find_movies(Path(args.src), args.video_list)
    if not files:
        raise AvaDetectError("no movies found (looked for video file suffixes)", args.src)
    out.mkdir(parents=True, exist_ok=True)
    todo, done, redo = plan_cuts(files, out, settings)
    print(f"{len(files)} movies: {len(done)} already prepared, {len(todo)} to cut (seconds "
          f"{settings.start:g}..{settings.end:g} at {settings.fps} fps, "
          f"{'short side ' + str(settings.short_side) if settings.short_side else 'original size'}, gop {settings.gop})")
    for src, why in list(redo.items())[:10]:
        print(f"  {src.stem}.mp4 is cut again: {why}")
    if len(redo) > 10:
        print(f"  ... and {len(redo) - 10} more made otherwise")
    failures: List[Tuple[str, str]] = []
    made = 0
    start = time.perf_counter()
    bar = tqdm(total=len(todo), unit="movie", desc="cutting", disable=args.no_progress or None)
    try:
        for src, result, error in cut_videos(todo, settings, workers=max(1, args.workers)):
            made, failures = _record(src, result, error, made, failures, bar)
    finally:
        bar.close()
    print(f"prepared {made} movies in {time.perf_counter() - start:.1f} s into {out}")
    if failures:
        print(f"{len(failures)} movies failed:", file=sys.stderr)
        for src, error in failures:
            print(f"  {error}", file=sys.stderr)
        return 1
    return 0


def _record(src: str, result, error, made: int, failures: List[Tuple[str, str]], bar) -> Tuple[int, List[Tuple[str, str]]]:
    if error is not None:
        failures.append((src, error))
        bar.write(f"failed: {error}")
    else:
        made += 1
        bar.set_postfix_str(f"{Path(src).stem}: {int(result['frames'])} frames {int(result['width'])}x{int(result['height'])}")
    bar.update(1)
    return made, failures
