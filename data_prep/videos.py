"""Cut the AVA movies to their annotated segment, at exactly 30 fps, as h264 for fast seeking.

For each movie in --src (any container and codec PyAV reads), writes --out/<video_id>.mp4 with
movie seconds 900..1801 (the file's t=0 is movie second 900): frame i is the movie's picture at
900 + i/30 s (the frame whose presentation interval contains that time, so 23.976, 25 or 29.97
fps sources are resampled the way a 30 fps player shows them). Optionally resized so the short
side is --short-side pixels. Encoded with libx264 with a keyframe every --gop frames (fast
seeking) and non-reference frames only at odd indices (clip readers skip decoding them).

Finished files are skipped, so an interrupted run resumes; each output is written under a
temporary name and renamed when complete, so a partial file never looks finished. Files that
fail are reported at the end; the others are still made. Movies shorter than the segment give
shorter videos (with a warning); their late keyframes are clamped when read.

Example:
  ava-detect prep videos --src ava/raw --out data/ava/videos --short-side 320 --workers 4
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ava_detect.commands.common import bounded_float, bounded_int
from ava_detect.data.constants import FPS, SEGMENT_END_SECOND, SEGMENT_START_SECOND
from ava_detect.errors import AvaDetectError
from data_prep import step_main

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncodeSettings:
    """How a segment is written.

    Attributes:
        fps: output frame rate (30).
        start, end: movie seconds of the segment (900, 1801).
        short_side: resize so the short side is this many pixels (0: keep the size; odd sizes are
            rounded down to even, as yuv420p needs).
        gop: frames between keyframes.
        crf: x264 constant rate factor (lower = better quality, bigger files).
        preset: x264 speed preset.
        threads: encoder threads (0: x264 decides).
    """

    fps: int = FPS
    start: float = SEGMENT_START_SECOND
    end: float = SEGMENT_END_SECOND
    short_side: int = 0
    gop: int = 16
    crf: int = 20
    preset: str = "fast"
    threads: int = 0


def output_size(width: int, height: int, short_side: int) -> Tuple[int, int]:
    """``(width, height)`` of the output: short side ``short_side`` (0 = unchanged), aspect kept,
    both rounded to even numbers."""
    if short_side > 0:
        if width <= height:
            width, height = short_side, round(height * short_side / width)
        else:
            width, height = round(width * short_side / height), short_side
    return max(2, width - width % 2), max(2, height - height % 2)


def x264_options(settings: EncodeSettings) -> Dict[str, str]:
    """libx264 options: fixed GOP without scene-cut keyframes, one B-frame between references
    (non-reference frames at odd indices), fast-decode tuning."""
    gop = settings.gop
    if gop < 2 or gop % 2:
        raise AvaDetectError(f"--gop must be an even number >= 2 (keyframes at even indices), got {gop}")
    params = [f"keyint={gop}", f"min-keyint={gop}", "scenecut=0", "bframes=1", "b-adapt=0", "b-pyramid=none",
              "open-gop=0"]
    return {"crf": str(settings.crf), "preset": settings.preset, "tune": "fastdecode",
            "x264-params": ":".join(params), "threads": str(settings.threads)}


def cut_video(src: Path, dst: Path, settings: EncodeSettings) -> Dict[str, float]:
    """Write the segment of movie ``src`` to ``dst`` (atomically); returns ``{frames, seconds,
    width, height, source_fps}``.

    Raises:
        AvaDetectError: unreadable source, decoding error (with the second), a source that ends
            before the segment starts, or an output path that is the source itself.
    """
    import av
    from av.video.frame import PictureType

    from ava_detect.data.video import iter_video_frames, open_video
    from ava_detect.io import atomic_path

    if src.resolve() == dst.resolve():
        raise AvaDetectError("output would overwrite the source movie; choose another --out folder", src)
    container, stream = open_video(src)  # the header only: size and rate
    with container:
        source_width, source_height = stream.codec_context.width, stream.codec_context.height
        source_rate = float(stream.average_rate or stream.guessed_rate or 0)
    width, height = output_size(source_width, source_height, settings.short_side)
    count = 0
    with atomic_path(dst) as tmp:
        with av.open(os.fspath(tmp), mode="w") as out:
            stream = out.add_stream("libx264", rate=settings.fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.codec_context.gop_size = settings.gop
            stream.options = x264_options(settings)
            time_base = Fraction(1, settings.fps)
            for i, frame in iter_video_frames(src, fps=settings.fps, start=settings.start, end=settings.end):
                picture = frame.reformat(width=width, height=height, format="yuv420p", interpolation="AREA")
                picture.pts, picture.time_base = i, time_base
                picture.pict_type = PictureType.NONE  # the source's keyframe flags would force x264 keyframes
                out.mux(stream.encode(picture))
                count += 1
            if count == 0:
                raise AvaDetectError(
                    f"movie has no frames in seconds {settings.start:g}..{settings.end:g} (it is shorter)", src)
            out.mux(stream.encode(None))
    expected = round((settings.end - settings.start) * settings.fps)
    if count < expected:
        logger.warning("%s: movie ends at second %.2f, before %g: wrote %d of %d frames", src,
                       settings.start + count / settings.fps, settings.end, count, expected)
    return {"frames": count, "seconds": count / settings.fps, "width": width, "height": height,
            "source_fps": source_rate}


def _job(src: str, dst: str, settings: EncodeSettings) -> Tuple[str, Optional[Dict[str, float]], Optional[str]]:
    """Worker: ``(src, result, error message)``; never raises, so one bad movie stops nothing."""
    try:
        return src, cut_video(Path(src), Path(dst), settings), None
    except AvaDetectError as e:
        return src, None, str(e)
    except Exception as e:  # a library error on one file must not stop the others
        return src, None, f"{src}: {type(e).__name__}: {e}"


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


def _sources(args: argparse.Namespace) -> List[Path]:
    from ava_detect.data.ava_files import read_video_list
    from ava_detect.data.video import list_videos

    src = Path(args.src)
    if not src.is_dir():
        raise AvaDetectError("source folder not found", src)
    if args.video_list:
        names = read_video_list(args.video_list)
        files = [src / name for name in names.values()]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            shown = ", ".join(missing[:10]) + (", ..." if len(missing) > 10 else "")
            raise AvaDetectError(f"{len(missing)} listed movies are not in {src}: {shown}", args.video_list)
        return files
    files = list_videos(src)
    stems: Dict[str, Path] = {}
    for f in files:
        if f.stem in stems:
            raise AvaDetectError(f"two movies have the id {f.stem!r}: {stems[f.stem].name} and {f.name}", src)
        stems[f.stem] = f
    return files


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    settings = EncodeSettings(start=args.start_second, end=args.end_second, short_side=args.short_side,
                              gop=args.gop, crf=args.crf, preset=args.preset)
    x264_options(settings)  # validate before starting
    if args.end_second <= args.start_second:
        raise AvaDetectError(f"--end-second ({args.end_second:g}) must be after --start-second ({args.start_second:g})")
    files = _sources(args)
    if not files:
        raise AvaDetectError("no movies found (looked for video file suffixes)", args.src)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    todo = [(f, out / f"{f.stem}.mp4") for f in files]
    done = [f for f, d in todo if d.is_file()]
    todo = [(f, d) for f, d in todo if not d.is_file()]
    print(f"{len(files)} movies: {len(done)} already prepared, {len(todo)} to cut (seconds "
          f"{settings.start:g}..{settings.end:g} at {settings.fps} fps, "
          f"{'short side ' + str(settings.short_side) if settings.short_side else 'original size'}, gop {settings.gop})")
    failures: List[Tuple[str, str]] = []
    made = 0
    start = time.perf_counter()
    bar = tqdm(total=len(todo), unit="movie", desc="cutting", disable=args.no_progress or None)
    try:
        if args.workers <= 1:
            results = (_job(str(f), str(d), settings) for f, d in todo)
            for src, result, error in results:
                made, failures = _record(src, result, error, made, failures, bar)
        else:
            workers = max(1, args.workers)
            settings = EncodeSettings(**{**settings.__dict__, "threads": max(1, (os.cpu_count() or 1) // workers)})
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(_job, str(f), str(d), settings) for f, d in todo]
                for fut in as_completed(futures):
                    made, failures = _record(*fut.result(), made, failures, bar)
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


def main(argv: Optional[List[str]] = None) -> int:
    return step_main("videos", __doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
