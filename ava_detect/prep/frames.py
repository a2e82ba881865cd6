"""Extracting PySlowFast's JPEG frame folders and frame lists from prepared videos (the library
behind ``ava-detect prep frames``).

Frame i of a video is written as ``<video_id>/<video_id>_<i+1:06d>.jpg`` (decoded as the clip
reader decodes it: the picture at i/30 s), JPEG from ffmpeg's MJPEG encoder at a fixed quantiser.
Each video's folder is written under a temporary name and renamed when complete; the settings it
was made with are recorded beside it (:mod:`ava_detect.reuse`), so a rerun reuses it only when they
are the same.
"""

from __future__ import annotations

import logging
import os
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from fractions import Fraction
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from ava_detect import reuse
from ava_detect.data.constants import FPS
from ava_detect.errors import AvaDetectError
from ava_detect.io import temporary_dir_for

logger = logging.getLogger(__name__)


def extract_frames(video: Path, out_dir: Path, *, qscale: int = 1, fps: int = FPS) -> int:
    """Write every frame of ``video`` as ``out_dir/<video_id>/<video_id>_%06d.jpg`` (atomically,
    per video: a temporary folder renamed at the end). Returns the number of frames.

    Raises:
        AvaDetectError: unreadable or corrupt video (naming the file and the second).
    """
    import av

    from ava_detect.data.video import FRAME_NAME, iter_video_frames

    video_id = video.stem
    final = out_dir / video_id
    out_dir.mkdir(parents=True, exist_ok=True)
    reuse.forget(final)  # recorded again once the new folder is in place
    tmp = temporary_dir_for(final)
    count = 0
    try:
        encoder = None
        for i, frame in iter_video_frames(video, fps=fps):
            if encoder is None:
                encoder = av.CodecContext.create("mjpeg", "w")
                encoder.width, encoder.height, encoder.pix_fmt = frame.width, frame.height, "yuvj420p"
                encoder.time_base = Fraction(1, fps)
                encoder.qmin = encoder.qmax = qscale  # fixed quantiser, as ffmpeg's -q:v
            picture = frame.reformat(width=encoder.width, height=encoder.height, format="yuvj420p")
            picture.pts, picture.time_base = i, encoder.time_base  # a frame shown twice (a source under 30 fps)
            packets = encoder.encode(picture)
            data = b"".join(bytes(p) for p in packets)
            (tmp / FRAME_NAME.format(video_id=video_id, number=i + 1)).write_bytes(data)
            count = i + 1
        if count == 0:
            raise AvaDetectError("video has no frames", video)
        _replace_folder(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    reuse.record(final, frame_settings(video, qscale=qscale, fps=fps))
    return count


def _replace_folder(new: Path, final: Path) -> None:
    """Put the complete folder ``new`` in place of ``final``; an earlier ``final`` is moved aside to
    a temporary name first and removed after (a kill in between leaves a temporary folder, which
    the next run removes: :func:`ava_detect.io.remove_stale_temporaries`)."""
    old = None
    if final.is_dir() and not final.is_symlink():
        old = temporary_dir_for(final)
        os.replace(final, old)
    os.replace(new, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def frame_settings(video: Path, *, qscale: int, fps: int = FPS) -> Dict[str, object]:
    """What a frame folder depends on, as recorded beside it (:mod:`ava_detect.reuse`): the JPEG
    quantiser, the rate, and the video (name and size: a video prepared again gives other frames)."""
    return {"step": "prep frames", "video": video.name, "video_bytes": video.stat().st_size, "fps": fps,
            "qscale": qscale}


def plan_extraction(videos: Sequence[Path], out_dir: Path, *, qscale: int, fps: int = FPS
                    ) -> Tuple[List[Path], Dict[Path, str]]:
    """``(videos to extract, {video: why it is extracted again})``: those without a frame folder in
    ``out_dir`` made with these settings from the video as it is now."""
    todo, redo = [], {}
    for v in videos:
        why = reuse.why_not_reusable(out_dir / v.stem, frame_settings(v, qscale=qscale, fps=fps))
        if why is None:
            continue
        if why != "missing":
            redo[v] = why
            logger.info("%s: extracting again (%s)", out_dir / v.stem, why)
        todo.append(v)
    return todo, redo


def _job(video: str, out_dir: str, qscale: int) -> Tuple[str, int, Optional[str]]:
    try:
        return video, extract_frames(Path(video), Path(out_dir), qscale=qscale), None
    except AvaDetectError as e:
        return video, 0, str(e)
    except Exception as e:  # one bad video must not stop the others
        return video, 0, f"{video}: {type(e).__name__}: {e}"


def frame_list_rows(video_ids: List[str], counts: Dict[str, int]):
    """Rows of a PySlowFast frame list for ``video_ids`` (in that order), as a DataFrame."""
    import pandas as pd

    from ava_detect.data.ava_files import FRAME_LIST_HEADER
    from ava_detect.data.video import frame_relpath

    rows = []
    for index, vid in enumerate(video_ids):
        for i in range(counts[vid]):
            rows.append((vid, index, i, frame_relpath(vid, i), '""'))
    return pd.DataFrame(rows, columns=FRAME_LIST_HEADER)


def extract_videos(videos: Sequence[Path], out_dir: Path, *, qscale: int = 1,
                   workers: int = 1) -> Iterator[Tuple[str, int, Optional[str]]]:
    """Extract the frames of each of ``videos`` into ``out_dir``, in ``workers`` processes. Yields
    ``(video, frames written, error message or None)`` as each one ends; a failure stops nothing."""
    if workers <= 1:
        for v in videos:
            yield _job(str(v), str(out_dir), qscale)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_job, str(v), str(out_dir), qscale) for v in videos]
        for fut in as_completed(futures):
            yield fut.result()
