"""Build CVAT tracks from per-keyframe observations (pre-labelling: tracker ids, detector boxes).

Each observation becomes a keyframe box. Where a track is not observed at the keyframe that follows
one of its observations (a gap, or its end), an ``outside`` box is added at that keyframe's frame, so
CVAT shows the person only where they were seen and does not interpolate across the gap. After the
last keyframe there is no next keyframe: CVAT then holds the last box to the end of the video.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np

from ava_detect.cvat.model import CvatBox, CvatTrack

Observation = Tuple[int, int, Sequence[float], Dict[str, str]]


def keyframe_tracks(observations: Iterable[Observation], *, keyframe_frames: Sequence[int],
                    num_frames: int, label: str = "person") -> List[CvatTrack]:
    """Tracks of keyframe boxes, with ``outside`` boxes where a track stops being observed.

    Args:
        observations: ``(track_id, frame, box (x1, y1, x2, y2) pixels, attributes)``, in any order;
            ``frame`` must be one of ``keyframe_frames``; one observation per track and frame.
        keyframe_frames: the frames of the keyframes, increasing.
        num_frames: the video's frame count; an ``outside`` box is only added at a frame below it.
        label: the tracks' label.

    Returns:
        One :class:`CvatTrack` per track id, in increasing id order, boxes in frame order.

    Raises:
        ValueError: a frame that is not a keyframe, two observations of one track at one frame, a
            box with x2 < x1 or y2 < y1, or keyframe frames that do not increase.
    """
    keyframes = [int(f) for f in keyframe_frames]
    if any(b <= a for a, b in zip(keyframes, keyframes[1:])):
        raise ValueError("keyframe_frames must increase")
    by_track: Dict[int, Dict[int, Tuple[np.ndarray, Dict[str, str]]]] = defaultdict(dict)
    for track_id, frame, box, attributes in observations:
        track_id, frame = int(track_id), int(frame)
        k = bisect.bisect_left(keyframes, frame)
        if k == len(keyframes) or keyframes[k] != frame:
            raise ValueError(f"track {track_id}: frame {frame} is not a keyframe frame")
        if frame in by_track[track_id]:
            raise ValueError(f"track {track_id} is observed twice at frame {frame}")
        xyxy = np.asarray(box, dtype=np.float64).reshape(4)
        if xyxy[2] < xyxy[0] or xyxy[3] < xyxy[1]:
            raise ValueError(f"track {track_id}, frame {frame}: box {xyxy.tolist()} has x2 < x1 or y2 < y1")
        by_track[track_id][frame] = (xyxy, dict(attributes))

    tracks = []
    for track_id in sorted(by_track):
        seen = by_track[track_id]
        boxes: List[CvatBox] = []
        for frame in sorted(seen):
            xyxy, attributes = seen[frame]
            boxes.append(CvatBox(frame, *map(float, xyxy), attributes=attributes))
            k = bisect.bisect_right(keyframes, frame)
            if k < len(keyframes) and keyframes[k] not in seen and keyframes[k] < num_frames:
                boxes.append(CvatBox(keyframes[k], *map(float, xyxy), outside=True,
                                     attributes=dict(attributes)))
        tracks.append(CvatTrack(track_id, label, boxes))
    return tracks


def checkbox_attributes(actions: Iterable[str], all_actions: Sequence[str]) -> Dict[str, str]:
    """``{action: "true" | "false"}`` for every action of ``all_actions`` (CVAT checkbox values).

    Raises:
        ValueError: an action of ``actions`` that is not in ``all_actions``.
    """
    checked = set(actions)
    unknown = checked.difference(all_actions)
    if unknown:
        raise ValueError(f"actions not in the label map: {sorted(unknown)}")
    return {action: "true" if action in checked else "false" for action in all_actions}
