"""Precomputed person boxes from an AVA-format CSV, as a detector.

Accepted files (coordinates normalised to [0, 1], no header):

* predicted boxes ``video_id,timestamp,x1,y1,x2,y2,,score`` (PySlowFast's / ``ava-detect detect``'s output);
* ground truth ``video_id,timestamp,x1,y1,x2,y2,action_id[,person_id]``: every box gets score 1.0
  (rows with identical coordinates at one key are one box).

The format is recognised from the first row (an empty 7th column, or 8 columns whose 7th is
empty, means predicted boxes) unless given. A frame is looked up by its key ``(video_id, second)``;
for a video file that is its file name without the extension and the keyframe's second
(``ava-detect annotate --second-offset 900`` turns file time ``t`` into movie second ``900 + t``, the
AVA convention for prepared videos). Boxes are converted to pixels of the frame given with
:func:`~ava_detect.structures.normalized_to_pixels` from float32 coordinates, exactly as the
AVA dataset does, so the action model sees the same boxes in ``annotate`` and ``test``.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Set, Tuple, Union

import numpy as np
import torch

from ava_detect.data.ava_files import BOX_COLUMNS, group_boxes, read_ground_truth, read_predicted_boxes
from ava_detect.detection.base import Detections, FrameKey, Frames, PersonDetector, as_frame_list, empty_detections
from ava_detect.errors import AvaDetectError
from ava_detect.structures import image_key, normalized_to_pixels
from ava_detect.text import read_text
from ava_detect.io import PathLike

if TYPE_CHECKING:
    from ava_detect.config import DetectorConfig

logger = logging.getLogger(__name__)

#: ``format`` values: recognise from the first row, predicted boxes, ground truth.
CSV_FORMATS = ("auto", "boxes", "ground_truth")


def sniff_box_csv_format(path: PathLike) -> str:
    """``"boxes"`` (``...,x2,y2,,score``) or ``"ground_truth"`` (``...,x2,y2,action_id[,person_id]``),
    from the first non-blank row; ``"boxes"`` when the file is empty.

    Raises:
        AvaDetectError: a missing or unreadable file, or one that is not UTF-8 text (naming the line).
    """
    for row in csv.reader(io.StringIO(read_text(path, "box CSV"), newline="")):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) == 7 or (len(row) == 8 and row[6].strip() != ""):
            return "ground_truth"
        return "boxes"
    return "boxes"


class CsvPersonDetector(PersonDetector):
    """Boxes read from an AVA CSV; :meth:`detect` needs each frame's ``(video_id, second)`` key.

    Args:
        path: the CSV.
        score_threshold: boxes with a lower score are dropped (ground-truth boxes have score 1.0).
        format: one of :data:`CSV_FORMATS`.

    Raises:
        AvaDetectError: unreadable file or bad rows (with the file and line).
    """

    name = "csv"
    needs_keys = True

    def __init__(self, *, path: PathLike, score_threshold: float = 0.8, format: str = "auto"):
        if format not in CSV_FORMATS:
            raise AvaDetectError(f"box CSV format must be one of {', '.join(CSV_FORMATS)}, got {format!r}")
        self.path = Path(path)
        self.score_threshold = float(score_threshold)
        self.format = sniff_box_csv_format(path) if format == "auto" else format
        if self.format == "ground_truth":
            rows = group_boxes(read_ground_truth(path))
            scores = np.ones(len(rows), dtype=np.float64)
        else:
            rows = group_boxes(read_predicted_boxes(path))
            scores = rows["score"].to_numpy(np.float64)
        video_ids = rows["video_id"].astype(str).to_numpy(object)
        seconds = rows["second"].to_numpy(np.int64)
        boxes = rows[BOX_COLUMNS].to_numpy(np.float32)
        self._index: Dict[Tuple[str, int], Tuple[np.ndarray, np.ndarray]] = {}
        order = np.lexsort((np.arange(len(seconds)), seconds, video_ids.astype(str)))  # rows of a key in file order
        if len(order):
            v, s = video_ids[order], seconds[order]
            new = np.ones(len(order), dtype=bool)
            new[1:] = (v[1:] != v[:-1]) | (s[1:] != s[:-1])
            starts = np.append(np.flatnonzero(new), len(order))
            for a, b in zip(starts[:-1], starts[1:]):
                rows_ab = order[a:b]
                self._index[(str(v[a]), int(s[a]))] = (boxes[rows_ab], scores[rows_ab])
        self.video_ids: Set[str] = set(str(x) for x in video_ids)
        self._warned: Set[str] = set()
        logger.info("person boxes: %d boxes at %d keys of %d videos from %s (%s)", len(rows), len(self._index),
                    len(self.video_ids), self.path, self.format.replace("_", " "))

    def detect(self, frames: Frames, *, keys: Optional[Sequence[FrameKey]] = None) -> List[Detections]:
        """See :meth:`PersonDetector.detect`: the boxes of each frame's key, in pixels of that frame
        (a key without rows gets no boxes)."""
        images = as_frame_list(frames)
        if keys is None or len(keys) != len(images):
            raise ValueError("the csv person detector needs the (video_id, second) key of every frame")
        out: List[Detections] = []
        for image, (video_id, second) in zip(images, keys):
            video_id = str(video_id)
            if video_id not in self.video_ids and video_id not in self._warned:
                self._warned.add(video_id)
                logger.warning("%s has no boxes for video id %r (keys look like %s); its frames get no boxes",
                               self.path, video_id, image_key(video_id, int(second)))
            found = self._index.get((video_id, int(second)))
            if found is None:
                out.append(empty_detections())
                continue
            norm, scores = found
            keep = scores >= self.score_threshold
            height, width = int(image.shape[0]), int(image.shape[1])
            boxes = normalized_to_pixels(torch.from_numpy(norm[keep]), width, height)
            score_t = torch.from_numpy(scores[keep].astype(np.float32))
            order = torch.argsort(score_t, descending=True, stable=True)
            out.append((boxes[order], score_t[order]))
        return out

    def describe(self) -> str:
        return f"boxes from {self.path} ({self.format.replace('_', ' ')}; score >= {self.score_threshold:g})"


def build(d: "DetectorConfig", *, device: Union[str, torch.device] = "cpu", progress: bool = True) -> CsvPersonDetector:
    """The ``csv`` backend of :func:`~ava_detect.detection.build_detector` (``d``: the ``DetectorConfig``;
    ``device`` and ``progress`` are unused)."""
    if not d.boxes_csv:
        raise AvaDetectError("the csv person detector needs a box CSV: --boxes FILE (config: detector.boxes_csv)")
    return CsvPersonDetector(path=d.boxes_csv, score_threshold=d.score_threshold, format=d.boxes_format)
