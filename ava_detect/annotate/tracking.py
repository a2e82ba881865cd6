"""Person tracks across keyframes: IoU cost, Hungarian assignment (``scipy.optimize.linear_sum_assignment``).

Each keyframe's boxes are matched to the tracks seen in the last ``max_age + 1`` keyframes by
maximising the total IoU; a pair is kept only when its IoU is at least ``min_iou``. Unmatched
boxes start new tracks (ids 1, 2, ...); a track not matched for more than ``max_age`` keyframes
ends. With keyframes a second apart, people who move less than about half their width per
second keep their id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

import numpy as np
from scipy.optimize import linear_sum_assignment

from ava_detect.structures import box_iou


@dataclass
class _Track:
    track_id: int
    box: np.ndarray  # [4] pixels
    misses: int = 0


class IoUTracker:
    """Assigns a person id to every box of consecutive keyframes.

    Args:
        min_iou: smallest IoU of a box with a track's last box for them to be linked, in (0, 1].
        max_age: keyframes a track may go unmatched and still be linked again.
    """

    def __init__(self, *, min_iou: float = 0.3, max_age: int = 2):
        if not 0.0 < min_iou <= 1.0:
            raise ValueError(f"min_iou must be in (0, 1], got {min_iou}")
        if max_age < 0:
            raise ValueError(f"max_age must be >= 0, got {max_age}")
        self.min_iou = float(min_iou)
        self.max_age = int(max_age)
        self._tracks: List[_Track] = []
        self._next_id = 1

    @property
    def num_active(self) -> int:
        """Tracks that can still be linked (bounded: they end after ``max_age`` missed keyframes)."""
        return len(self._tracks)

    def update(self, boxes: np.ndarray) -> np.ndarray:
        """Link one keyframe's boxes to the tracks.

        Args:
            boxes: ``[K,4]`` pixel ``(x1, y1, x2, y2)`` of the keyframe, in any order.

        Returns:
            ``int64 [K]`` person ids (>= 1), distinct within the keyframe.
        """
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        ids = np.zeros(len(boxes), dtype=np.int64)
        matched_tracks = set()
        if len(boxes) and self._tracks:
            iou = box_iou(boxes, np.stack([t.box for t in self._tracks]))
            rows, cols = linear_sum_assignment(-iou)
            for r, c in zip(rows, cols):
                if iou[r, c] >= self.min_iou:
                    track = self._tracks[c]
                    ids[r] = track.track_id
                    track.box = boxes[r]
                    track.misses = 0
                    matched_tracks.add(c)
        survivors = []
        for c, track in enumerate(self._tracks):
            if c not in matched_tracks:
                track.misses += 1
                if track.misses > self.max_age:
                    continue
            survivors.append(track)
        for r in np.flatnonzero(ids == 0):
            ids[r] = self._next_id
            survivors.append(_Track(self._next_id, boxes[r]))
            self._next_id += 1
        self._tracks = survivors
        return ids
