"""Rasterising a planned figure (capsules for head, torso, arms, legs) and rendering a frame of a
planned video, with each figure's tight pixel box."""

from __future__ import annotations

import math
from typing import List, Optional, Tuple

import numpy as np

from ava_detect.synthetic.classes import LIE, SIT, STAND
from ava_detect.synthetic.scene import FigurePlan, VideoPlan

# Parts (index into the figure's colours + 1): 1 skin, 2 shirt, 3 trousers.
_SKIN, _SHIRT, _TROUSERS = 1, 2, 3
_ARM_LEN, _ARM_R, _LEG_R, _TORSO_R, _HEAD_R = 0.34, 0.042, 0.045, 0.085, 0.10

# (u, v) body coordinates in figure heights: u towards the head, v towards the front.
_JOINTS = {
    STAND: dict(hip=(0.47, 0.0), neck=(0.79, 0.0), head=(0.89, 0.0), shoulder=(0.75, 0.0)),
    LIE: dict(hip=(0.47, 0.0), neck=(0.79, 0.0), head=(0.89, 0.0), shoulder=(0.75, 0.0)),
    SIT: dict(hip=(0.31, 0.0), neck=(0.63, 0.0), head=(0.73, 0.0), shoulder=(0.59, 0.0)),
}
# Body point that sits on the ground line, and the one centred on the track's x, in (u, v).
_GROUND_U = {STAND: 0.03 - _LEG_R, SIT: 0.03 - _LEG_R}
_LIE_GROUND_V = -_HEAD_R
_LIE_CENTRE_U = 0.5


def figure_primitives(fig: FigurePlan, frame: int) -> List[Tuple[int, Tuple[float, float], Tuple[float, float], float]]:
    """The figure's shapes at ``frame``, in frame pixels.

    Returns:
        ``[(part, (x_a, y_a), (x_b, y_b), radius)]``: capsules (a circle when ``a == b``), in
        drawing order; ``part`` is 1 skin, 2 shirt, 3 trousers.
    """
    h = fig.height
    pose = int(fig.pose[frame])
    face = int(fig.facing[frame])
    swing = fig.leg_swing * math.sin(fig.stride_phase[frame])
    wave = fig.arm_centre + fig.arm_swing * math.sin(fig.wave_phase[frame])
    arm2 = fig.arm2_angle + 0.6 * fig.arm2_angle * math.sin(fig.stride_phase[frame])
    j = _JOINTS[pose]

    x, ground = float(fig.x[frame]), float(fig.ground_y - fig.lift[frame])
    if pose == LIE:
        # u (towards the head) along the ground, v (the front) up.
        ux, uy, vx, vy = float(face), 0.0, 0.0, -1.0
        ox, oy = x - _LIE_CENTRE_U * h * face, ground + _LIE_GROUND_V * h
        arm2 = math.radians(8.0)  # lying: the back arm rests along the body
    else:
        ux, uy, vx, vy = 0.0, -1.0, float(face), 0.0
        ox, oy = x, ground + _GROUND_U[pose] * h

    def pt(u: float, v: float) -> Tuple[float, float]:
        return (ox + h * (u * ux + v * vx), oy + h * (u * uy + v * vy))

    hip, neck, head, shoulder = j["hip"], j["neck"], j["head"], j["shoulder"]
    prims = []
    if pose == SIT:
        prims.append((_TROUSERS, pt(*hip), pt(0.30, 0.26), _LEG_R))
        prims.append((_TROUSERS, pt(0.30, 0.26), pt(0.03, 0.27), _LEG_R))
        prims.append((_TROUSERS, pt(*hip), pt(0.32, 0.22), _LEG_R))
        prims.append((_TROUSERS, pt(0.32, 0.22), pt(0.03, 0.21), _LEG_R))
    else:
        prims.append((_TROUSERS, pt(*hip), pt(0.03, swing), _LEG_R))
        prims.append((_TROUSERS, pt(*hip), pt(0.03, -swing), _LEG_R))
    back = (shoulder[0] - _ARM_LEN * math.cos(arm2), -_ARM_LEN * math.sin(arm2))
    if pose == LIE:
        back = (shoulder[0] - _ARM_LEN * math.cos(arm2), _ARM_LEN * math.sin(arm2))
    prims.append((_SHIRT, pt(*shoulder), pt(*back), _ARM_R))
    prims.append((_SHIRT, pt(*hip), pt(*neck), _TORSO_R))
    prims.append((_SKIN, pt(*head), pt(*head), _HEAD_R))
    hand = (shoulder[0] - _ARM_LEN * math.cos(wave), _ARM_LEN * math.sin(wave))
    prims.append((_SHIRT, pt(*shoulder), pt(*hand), _ARM_R))
    return [(part, a, b, r * h) for part, a, b, r in prims]


def rasterize_figure(fig: FigurePlan, frame: int, width: int, height: int) -> Tuple[np.ndarray, int, int]:
    """The figure's pixels at ``frame``, clipped to the ``width x height`` frame.

    A pixel ``(row, col)`` belongs to a shape when its centre ``(col + 0.5, row + 0.5)`` lies
    within the capsule's radius.

    Returns:
        ``(parts, top, left)``: ``parts`` is ``uint8[h, w]`` with 0 outside the figure and the
        part index (1 skin, 2 shirt, 3 trousers) inside, for the frame window
        ``rows top .. top + h - 1``, ``cols left .. left + w - 1``.
    """
    prims = figure_primitives(fig, frame)
    xs = [c for _, a, b, r in prims for c in (a[0] - r, b[0] - r, a[0] + r, b[0] + r)]
    ys = [c for _, a, b, r in prims for c in (a[1] - r, b[1] - r, a[1] + r, b[1] + r)]
    left = max(0, int(math.floor(min(xs))))
    top = max(0, int(math.floor(min(ys))))
    right = min(width, int(math.ceil(max(xs))) + 1)
    bottom = min(height, int(math.ceil(max(ys))) + 1)
    parts = np.zeros((max(0, bottom - top), max(0, right - left)), dtype=np.uint8)
    for part, (ax, ay), (bx, by), r in prims:
        x0 = max(left, int(math.floor(min(ax, bx) - r)))
        x1 = min(right, int(math.ceil(max(ax, bx) + r)) + 1)
        y0 = max(top, int(math.floor(min(ay, by) - r)))
        y1 = min(bottom, int(math.ceil(max(ay, by) + r)) + 1)
        if x1 <= x0 or y1 <= y0:
            continue
        px = np.arange(x0, x1, dtype=np.float64)[None, :] + 0.5 - ax
        py = np.arange(y0, y1, dtype=np.float64)[:, None] + 0.5 - ay
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        if length2 > 0:
            t = np.clip((px * dx + py * dy) / length2, 0.0, 1.0)
            ex, ey = px - t * dx, py - t * dy
        else:
            ex, ey = px, py
        inside = ex * ex + ey * ey <= r * r
        parts[y0 - top:y1 - top, x0 - left:x1 - left][inside] = part
    return parts, top, left


def figure_box(parts: np.ndarray, top: int, left: int) -> Optional[Tuple[int, int, int, int]]:
    """Tight pixel box ``(x1, y1, x2, y2)`` of a rasterised figure (pixel edges: the figure
    covers columns ``x1 .. x2 - 1``), or None when it has no pixel in the frame."""
    rows = np.flatnonzero(parts.any(axis=1))
    cols = np.flatnonzero(parts.any(axis=0))
    if rows.size == 0:
        return None
    return (left + int(cols[0]), top + int(rows[0]), left + int(cols[-1]) + 1, top + int(rows[-1]) + 1)


def render_frame(plan: VideoPlan, frame: int, figures: bool = True) -> Tuple[np.ndarray, List[Optional[Tuple[int, int, int, int]]]]:
    """Render one frame.

    Args:
        plan: the video.
        frame: 0-based frame index in the file.
        figures: False renders the background alone.

    Returns:
        ``(rgb, boxes)``: ``uint8[height, width, 3]`` and, per figure of ``plan.figures`` (same
        order), its tight pixel box ``(x1, y1, x2, y2)`` (pixel edges) or None.
    """
    W, H = plan.width, plan.height
    ox, oy = int(plan.pan_x[frame]), int(plan.pan_y[frame])
    rgb = plan.texture[oy:oy + H, ox:ox + W].copy()
    boxes: List[Optional[Tuple[int, int, int, int]]] = []
    if not figures:
        return rgb, boxes
    for k, fig in enumerate(plan.figures):
        state = (fig.pose[frame], fig.x[frame], fig.lift[frame], fig.stride_phase[frame],
                 fig.wave_phase[frame], fig.facing[frame])
        cached = plan.raster_cache.get(k)
        if cached is not None and cached[0] == state:
            parts, top, left = cached[1]
        else:
            parts, top, left = rasterize_figure(fig, frame, W, H)
            plan.raster_cache[k] = (state, (parts, top, left))
        boxes.append(figure_box(parts, top, left))
        if parts.size:
            window = rgb[top:top + parts.shape[0], left:left + parts.shape[1]]
            inside = parts > 0
            window[inside] = fig.colors[parts[inside] - 1]
    return rgb, boxes
