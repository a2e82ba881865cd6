"""The worked example of "Train on your own videos", offline: a synthetic set made to look like a
team's own videos and their CVAT exports.

From a synthetic AVA-format set (30 fps, file t=0 at movie second 900) it writes::

    OUT/videos/<video_id>.mp4      each video re-encoded at ``fps`` (25) frames per second, t=0 = second 0
    OUT/cvat/<video_id>.xml        its ground truth as a "CVAT for video 1.1" task export: one person
                                   track per person id, a keyframe box at every annotated second,
                                   ``outside`` where a person is gone, one checkbox per action (in
                                   alphabetical order)
    OUT/detector_boxes.csv         the set's simulated person-detector boxes, seconds from 0 (the
                                   offline stand-in for a person detector: ``--detector csv --boxes``)

Second ``s`` of the synthetic set is file time ``s - 900``; in the 25 fps video that is frame
``(s - 900) * 25``, where the CVAT box of that second sits.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List

import numpy as np
import pandas as pd

from ava_detect.data.constants import SEGMENT_START_SECOND
from ava_detect.data.layout import SPLITS, DatasetLayout
from ava_detect.io import PathLike, atomic_path

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CvatExample:
    """What :func:`make_cvat_example` wrote: the folders and files, and the videos."""

    videos_dir: Path
    cvat_dir: Path
    detector_boxes: Path
    video_ids: List[str]
    fps: int


def _resampled(path: Path, fps: int) -> Iterator[np.ndarray]:
    """The frames of ``path`` shown at times ``0, 1/fps, 2/fps, ...`` (RGB ``uint8 [H,W,3]``), until its end."""
    from ava_detect.data.video_reader import FRAME_TIME_TOLERANCE_S, VideoReader

    with VideoReader(path, threads=1) as reader:
        previous = None
        j = 0
        for t, frame in reader.frames():
            while previous is not None and j / fps < t - FRAME_TIME_TOLERANCE_S:
                yield previous
                j += 1
            previous = reader.rgb(frame)
        end = reader.end or 0.0
        while previous is not None and j / fps < end - FRAME_TIME_TOLERANCE_S:
            yield previous
            j += 1


def reencode(src: Path, dst: Path, fps: int) -> int:
    """Re-encode ``src`` at ``fps`` frames per second, starting at 0; returns the number of frames."""
    from ava_detect.data.video import probe_video
    from ava_detect.synthetic.encode import encode_video

    info = probe_video(src)
    count = 0

    def counted() -> Iterator[np.ndarray]:
        nonlocal count
        for rgb in _resampled(src, fps):
            count += 1
            yield rgb

    with atomic_path(dst) as tmp:
        encode_video(tmp, counted(), info.width, info.height, fps=fps)
    return count


def ground_truth_tracks(gt: pd.DataFrame, names: Dict[int, str], all_actions: List[str], *, width: int, height: int,
                        fps: float, num_frames: int, start_second: int = SEGMENT_START_SECOND):
    """One video's ground truth -> CVAT person tracks (:class:`~ava_detect.cvat.model.CvatTrack`).

    Args:
        gt: AVA rows of the video (``second, x1, y1, x2, y2, action_id, person_id``, normalised).
        names: action id -> name; all_actions: the checkbox attributes.
        width, height: frame size (pixels); fps: the video's own frame rate (second ``s`` is its frame
            ``(s - start_second) * fps``); num_frames: its frame count; start_second: the second of file time 0.
    """
    from ava_detect.cvat.tracks import checkbox_attributes, keyframe_tracks

    observations = []
    for (second, person), rows in gt.groupby(["second", "person_id"], sort=True):
        r = rows.iloc[0]
        box = np.array([r.x1 * width, r.y1 * height, r.x2 * width, r.y2 * height], dtype=np.float64)
        actions = [names[int(a)] for a in rows["action_id"]]
        frame = int(round((int(second) - start_second) * fps))
        observations.append((int(person), frame, box, checkbox_attributes(actions, all_actions)))
    seconds = int(math.ceil(num_frames / fps))
    return keyframe_tracks(observations, keyframe_frames=[int(round(t * fps)) for t in range(seconds + 1)],
                           num_frames=num_frames)


def make_cvat_example(synthetic_dir: PathLike, out: PathLike, *, fps: int = 25) -> CvatExample:
    """Write the example (see the module docstring) from the synthetic set at ``synthetic_dir``.

    Raises:
        AvaDetectError: the synthetic set's files are missing or unreadable.
    """
    from ava_detect.cvat.model import CvatTask
    from ava_detect.cvat.writer import write_cvat_xml
    from ava_detect.data.ava_files import read_ground_truth, read_labelmap, read_predicted_boxes, write_predicted_boxes
    from ava_detect.data.video import probe_video

    src = DatasetLayout(Path(synthetic_dir))
    out = Path(out)
    labelmap = read_labelmap(src.labelmap)
    # CVAT shows the checkboxes in the order a team declares them; alphabetical here, so the imported label
    # map orders the actions unlike the synthetic set's (fine-tuning then maps the head's rows by name)
    actions = sorted(labelmap.names[i] for i in labelmap.ids)
    gt = pd.concat([read_ground_truth(src.ground_truth(s), labelmap) for s in SPLITS], ignore_index=True)
    boxes = pd.concat([read_predicted_boxes(src.predicted_boxes(s)) for s in SPLITS], ignore_index=True)
    video_ids = sorted(set(gt["video_id"].astype(str)))
    videos_dir, cvat_dir = out / "videos", out / "cvat"
    videos_dir.mkdir(parents=True, exist_ok=True)
    cvat_dir.mkdir(parents=True, exist_ok=True)
    for task_id, vid in enumerate(video_ids, start=1):
        info = probe_video(src.video(vid))
        num_frames = reencode(src.video(vid), videos_dir / f"{vid}.mp4", fps)
        task = CvatTask(id=task_id, name=vid, source=f"{vid}.mp4", size=num_frames, width=info.width,
                        height=info.height, stop_frame=num_frames - 1, labels={"person": list(actions)},
                        attribute_types={a: "checkbox" for a in actions})
        tracks = ground_truth_tracks(gt[gt["video_id"] == vid], dict(labelmap.names), actions, width=info.width,
                         height=info.height, fps=fps, num_frames=num_frames)
        write_cvat_xml(cvat_dir / f"{vid}.xml", task, tracks, label_attributes=actions)
        logger.info("%s: %d frames at %d fps, %d tracks", vid, num_frames, fps, len(tracks))
    shifted = boxes.assign(second=boxes["second"].astype(np.int64) - SEGMENT_START_SECOND)
    write_predicted_boxes(out / "detector_boxes.csv", shifted)
    return CvatExample(videos_dir=videos_dir, cvat_dir=cvat_dir, detector_boxes=out / "detector_boxes.csv",
                       video_ids=video_ids, fps=fps)
