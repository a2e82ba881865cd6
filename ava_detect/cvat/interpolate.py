"""A track's box at any frame, as CVAT shows it (linear interpolation between listed boxes).

CVAT's rule for a track (rectangles): the shape at frame ``f`` comes from the last box listed at or
before ``f``. No such box, or that box is ``outside``: nothing at ``f``. A box exactly at ``f``: that
box. Between two listed boxes where the later one is not ``outside``: the coordinates are interpolated
linearly in the frame number. The later one ``outside``, or no later box: the earlier box is held.
Mutable attributes are those of the last box at or before ``f`` (CVAT does not interpolate them).

An export that lists every frame (CVAT's own "CVAT for video" download) and one that lists only the
keyframes therefore give the same boxes (up to the 2-decimal rounding of the written coordinates).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ava_detect.cvat.model import CvatTrack

BoxAndAttributes = Tuple[np.ndarray, Dict[str, str]]


def boxes_at_frames(track: CvatTrack, frames: Sequence[int]) -> List[Optional[BoxAndAttributes]]:
    """The track's box and attributes at each of ``frames``.

    Args:
        track: boxes in increasing frame order (as the reader yields them).
        frames: frame numbers of the video, in any order.

    Returns:
        One entry per frame: ``None`` where the track is not in view, else
        ``(box float64 [4] (x1, y1, x2, y2) pixels, attributes)``; the attributes dict is the listed
        box's own (shared, do not modify). O((n + m) log n) for n boxes and m frames.
    """
    boxes = track.boxes
    if not boxes or len(frames) == 0:
        return [None] * len(frames)
    at = np.fromiter((b.frame for b in boxes), dtype=np.int64, count=len(boxes))
    coords = np.array([(b.xtl, b.ytl, b.xbr, b.ybr) for b in boxes], dtype=np.float64)
    outside = np.fromiter((b.outside for b in boxes), dtype=bool, count=len(boxes))

    query = np.asarray(frames, dtype=np.int64)
    i = np.searchsorted(at, query, side="right") - 1  # last box at or before each frame
    valid = i >= 0
    i_safe = np.where(valid, i, 0)
    valid &= ~outside[i_safe]
    nxt = np.minimum(i_safe + 1, len(boxes) - 1)
    between = valid & (at[i_safe] != query) & (i_safe + 1 < len(boxes)) & ~outside[nxt]
    span = np.where(between, at[nxt] - at[i_safe], 1)
    weight = np.where(between, (query - at[i_safe]) / span, 0.0)[:, None]
    result_coords = coords[i_safe] * (1.0 - weight) + coords[nxt] * weight

    return [(result_coords[k], boxes[i_safe[k]].attributes) if valid[k] else None
            for k in range(len(query))]
