"""Cutting AVA movies to their annotated segment, at exactly 30 fps, as h264 for fast seeking
(the library behind ``ava-detect prep videos``).

Frame i of the output is the movie's picture at ``start + i/30`` s (the frame whose presentation
interval contains that time, so 23.976, 25 or 29.97 fps sources are resampled the way a 30 fps
player shows them, turned as the player turns them when the movie has a display rotation),
optionally resized so the short side has a given size, encoded with libx264
with a keyframe every ``gop`` frames and non-reference frames only at odd indices (clip readers
skip decoding them). Each output is written under a temporary name and renamed when complete;
the settings it was made with are recorded beside it (:mod:`ava_detect.reuse`), so a rerun reuses
it only when they are the same.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from ava_detect import reuse
from ava_detect.data.constants import FPS, SEGMENT_END_SECOND, SEGMENT_START_SECOND
from ava_detect.errors import AvaDetectError

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

    from ava_detect.data.video import VideoReader, probe_video, resampled_frames
    from ava_detect.io import atomic_path

    if src.resolve() == dst.resolve():
        raise AvaDetectError("output would overwrite the source movie; choose another --out folder", src)
    reuse.forget(dst)  # recorded again once the new file is complete
    info = probe_video(src)  # the size as shown (a rotated movie is cut upright) and the rate
    width, height = output_size(info.width, info.height, settings.short_side)
    count = 0
    with atomic_path(dst) as tmp, VideoReader(src, threads=0) as reader:
        with av.open(os.fspath(tmp), mode="w") as out:
            stream = out.add_stream("libx264", rate=settings.fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.codec_context.gop_size = settings.gop
            stream.options = x264_options(settings)
            time_base = Fraction(1, settings.fps)
            for i, frame in resampled_frames(reader, fps=settings.fps, start=settings.start, end=settings.end):
                picture = frame.reformat(width=width, height=height, format="yuv420p", interpolation="AREA")
                picture.pts, picture.time_base = i, time_base
                picture.pict_type = PictureType.NONE  # the source's keyframe flags would force x264 keyframes
                out.mux(stream.encode(picture))
                count += 1
            if count == 0:
                raise AvaDetectError(
                    f"movie has no frames in seconds {settings.start:g}..{settings.end:g} (it is shorter)", src)
            out.mux(stream.encode(None))
    reuse.record(dst, cut_settings(src, settings))
    expected = round((settings.end - settings.start) * settings.fps)
    if count < expected and not reader.is_truncated():  # a truncated movie was warned about by the reader
        logger.warning("%s: movie ends at second %.2f, before %g: wrote %d of %d frames", src,
                       settings.start + count / settings.fps, settings.end, count, expected)
    return {"frames": count, "seconds": count / settings.fps, "width": width, "height": height,
            "source_fps": info.rate}


def cut_settings(src: Path, settings: EncodeSettings) -> Dict[str, object]:
    """What an output of :func:`cut_video` depends on, as recorded beside it (:mod:`ava_detect.reuse`):
    the encoding settings (not the thread count) and the source movie (name and size)."""
    return {"step": "prep videos", "source": src.name, "source_bytes": src.stat().st_size, "fps": settings.fps,
            "start": float(settings.start), "end": float(settings.end), "short_side": settings.short_side, "gop": settings.gop,
            "crf": settings.crf, "preset": settings.preset}


def check_folders(src: Path, out: Path) -> None:
    """Refuse an output folder that is the source folder (through any path or link): outputs would
    sit among the movies and be read as movies by the next run.

    Raises:
        AvaDetectError: ``out`` is ``src``.
    """
    same = src.resolve() == out.resolve()
    if not same and src.is_dir() and out.is_dir():
        same = os.path.samefile(src, out)
    if same:
        raise AvaDetectError("--out is the source folder; choose another folder for the prepared videos", out)


def plan_cuts(files: Sequence[Path], out: Path, settings: EncodeSettings
              ) -> Tuple[List[Tuple[Path, Path]], List[Path], Dict[Path, str]]:
    """Which movies to cut into ``out``: ``(jobs (source, output), sources already prepared with these
    settings, {source: why it is cut again})`` for outputs that exist but were made otherwise."""
    todo, done, redo = [], [], {}
    for f in files:
        dst = out / f"{f.stem}.mp4"
        why = reuse.why_not_reusable(dst, cut_settings(f, settings))
        if why is None:
            done.append(f)
            continue
        if why != "missing":
            redo[f] = why
            logger.info("%s: cutting again (%s)", dst, why)
        todo.append((f, dst))
    return todo, done, redo


def _job(src: str, dst: str, settings: EncodeSettings) -> Tuple[str, Optional[Dict[str, float]], Optional[str]]:
    """Worker: ``(src, result, error message)``; never raises, so one bad movie stops nothing."""
    try:
        return src, cut_video(Path(src), Path(dst), settings), None
    except AvaDetectError as e:
        return src, None, str(e)
    except Exception as e:  # a library error on one file must not stop the others
        return src, None, f"{src}: {type(e).__name__}: {e}"



def find_movies(src: Path, video_list: Optional[str] = None) -> List[Path]:
    """The movies in ``src`` to cut: those named in ``video_list`` (one file name per line, as
    ``ava_file_names_trainval_v2.1.txt``), else every video file there.

    Raises:
        AvaDetectError: ``src`` is not a folder; listed movies are missing; two movies share an id.
    """
    from ava_detect.data.ava_files import read_video_list
    from ava_detect.data.video import list_videos

    if not src.is_dir():
        raise AvaDetectError("source folder not found", src)
    if video_list:
        names = read_video_list(video_list)
        files = [src / name for name in names.values()]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            shown = ", ".join(missing[:10]) + (", ..." if len(missing) > 10 else "")
            raise AvaDetectError(f"{len(missing)} listed movies are not in {src}: {shown}", video_list)
        return files
    files = list_videos(src)
    stems: Dict[str, Path] = {}
    for f in files:
        if f.stem in stems:
            raise AvaDetectError(f"two movies have the id {f.stem!r}: {stems[f.stem].name} and {f.name}", src)
        stems[f.stem] = f
    return files


def cut_videos(jobs: Sequence[Tuple[Path, Path]], settings: EncodeSettings, *,
               workers: int = 1) -> Iterator[Tuple[str, Optional[Dict[str, float]], Optional[str]]]:
    """Cut each ``(source, output)`` of ``jobs``, in ``workers`` processes (encoder threads shared
    among them). Yields ``(source, result of cut_video or None, error message or None)`` as each one
    ends; a failure stops nothing."""
    if workers <= 1:
        for f, d in jobs:
            yield _job(str(f), str(d), settings)
        return
    settings = EncodeSettings(**{**settings.__dict__, "threads": max(1, (os.cpu_count() or 1) // workers)})
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_job, str(f), str(d), settings) for f, d in jobs]
        for fut in as_completed(futures):
            yield fut.result()
