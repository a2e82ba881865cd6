"""A synthetic AVA-format dataset: rendered videos with learnable actions, small enough for a CPU.

:func:`make_synthetic_dataset` writes a folder shaped like prepared AVA::

    DIR/
      videos/<video_id>.mp4        h264, yuv420p, 30 fps, a key frame every 15 frames;
                                   the file's t=0 is movie second 900
      annotations/train.csv, val.csv                         ground truth with person ids
      annotations/train_predicted_boxes.csv, val_...         person boxes with scores
      annotations/train_excluded_timestamps.csv, val_...     a few excluded keys per split
      annotations/labelmap.pbtxt   the classes used, real AVA ids, names and types
      frame_lists/train.csv, val.csv   PySlowFast frame lists (the JPEGs are not extracted)
      dataset.json                 what was made: seed, size, splits, classes, counts, files

The same arguments give the same files, byte for byte.

What is rendered: each video has 2-4 stick figures (head, torso, two arms, two legs; random
size and colours) over a textured background that pans slowly. Each figure carries exactly
one pose and zero or more motions, with real AVA ids:

* poses, visible in one frame as shape: ``stand`` (12, upright), ``sit`` (11, folded on an
  invisible chair), ``lie/sleep`` (8, horizontal on the ground);
* motions, visible only across frames: ``walk`` (14) and ``run/jog`` (10) translate the
  figure horizontally and swing its legs, at speeds and stride rates whose ranges do not
  overlap; ``jump/leap`` (7) bounces it vertically; ``hand wave`` (69) swings one arm.
  Walk and run exclude each other, and walking, running and jumping need ``stand``.

A single frame does not tell the motions apart: every figure holds its arm, legs and stride
at angles drawn from the same distribution whether it moves or not (a figure that does not
wave holds its arm still at ``centre + amplitude * sin(phase)``, the same formula that a waving
figure sweeps through), so only the change over frames reveals the motion. Labels change
between segments of 4-9 s; segments switch half-way between keyframes, so a keyframe's labels
hold for at least 0.5 s before and after it and usually for several seconds.

Ground-truth boxes are the tight bounding boxes of each figure's pixels at the keyframe's
frame ``(second - 900) * 30`` (the whole figure, also where another figure covers part of it),
normalised by the frame size; pixel ``x`` spans ``[x, x + 1)``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

import av
import numpy as np
import pandas as pd

from ava_detect.data.ava_files import (
    LabelMap,
    read_labelmap,
    write_exclusions,
    write_frame_list,
    write_ground_truth,
    write_labelmap,
    write_predicted_boxes,
)
from ava_detect.data.constants import FIRST_KEYFRAME_SECOND, FPS, SEGMENT_START_SECOND, labelmap_80_path
from ava_detect.errors import AvaDetectError
from ava_detect.io import atomic_open, atomic_path
from ava_detect.structures import image_key, pixels_to_normalized

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

# --------------------------------------------------------------------------------------
# Classes
# --------------------------------------------------------------------------------------

#: AVA v2.2 ids of the classes that the synthetic set uses.
STAND, SIT, LIE = 12, 11, 8
WALK, RUN, JUMP, WAVE = 14, 10, 7, 69
#: Poses: exactly one per figure.
POSE_IDS: Tuple[int, ...] = (STAND, SIT, LIE)
#: Motions: zero or more per figure (walk and run exclude each other).
MOTION_IDS: Tuple[int, ...] = (WALK, RUN, JUMP, WAVE)
#: All classes, in AVA id order (the order of the written label map).
CLASS_IDS: Tuple[int, ...] = tuple(sorted(POSE_IDS + MOTION_IDS))

#: Marks the folders that this module made (``dataset.json`` ``"generator"``).
GENERATOR = "ava_detect.data.synthetic"
FORMAT_VERSION = 1
#: Present while a set is being written; removed once ``dataset.json`` is in place.
IN_PROGRESS_MARKER = ".synthetic-in-progress"

SPLITS = ("train", "val")
ANNOTATION_FILES = tuple(
    f"annotations/{split}{suffix}.csv"
    for split in SPLITS
    for suffix in ("", "_predicted_boxes", "_excluded_timestamps")
) + ("annotations/labelmap.pbtxt",)
FRAME_LIST_FILES = tuple(f"frame_lists/{split}.csv" for split in SPLITS)

# Label sampling, per segment of a figure's track.
_POSE_P = (0.5, 0.25, 0.25)  # stand, sit, lie
_LOCOMOTION_P = (0.4, 0.3, 0.3)  # none, walk, run (standing figures only)
_JUMP_P = 0.3  # standing figures only
_WAVE_P = 0.35
_SEGMENT_SECONDS = (4, 9)  # inclusive range of whole seconds per segment

# Motion parameters. Lengths are in figure heights h, rates per second.
_WALK_SPEED = (0.35, 0.6)  # h / s
_RUN_SPEED = (1.1, 1.6)  # h / s
_WALK_STRIDE_HZ = (1.4, 2.0)  # leg swings per second
_RUN_STRIDE_HZ = (2.8, 3.6)
_WAVE_HZ = (1.5, 2.5)
_JUMP_HZ = (1.3, 2.0)  # bounces per second
_JUMP_HEIGHT = (0.15, 0.25)  # h
_LEG_SWING = (0.08, 0.15)  # h, half the distance between the feet at full stride
_ARM_CENTRE_DEG = (105.0, 145.0)  # the waving arm, from hanging down (0) through forward (90) to up (180)
_ARM_SWING_DEG = (25.0, 40.0)
_FIGURE_HEIGHT = (0.30, 0.45)  # of the frame height
_X_MARGIN = 0.62  # h: half of the widest pose (lying, arm raised), kept inside the frame


# --------------------------------------------------------------------------------------
# Plans: everything about a video except its pixels
# --------------------------------------------------------------------------------------


@dataclass
class FigurePlan:
    """One person's track in a video: constant appearance plus per-frame state.

    Per-frame arrays have length ``num_frames`` (frame ``i`` is at ``i / 30`` s from the file
    start). Lengths are pixels of the video frame.

    Attributes:
        person_id: AVA person id, unique within the video (0, 1, ...).
        height: figure height ``h`` standing, pixels.
        colors: ``uint8[3,3]`` RGB of skin (head), shirt (torso, arms), trousers (legs).
        ground_y: ``float`` image row of the figure's ground line, pixels (constant).
        leg_swing: half the distance between the feet at full stride, in ``h``.
        arm_centre, arm_swing: the waving arm's angle range ``centre +- swing``, radians.
        arm2_angle: the other arm's angle at rest, radians (it swings with the stride).
        segments: ``[(first_frame, end_frame, labels)]``, ``labels`` = (pose, motion ids...).
        pose: ``int64[F]`` pose id per frame.
        x: ``float64[F]`` horizontal centre of the body, pixels.
        lift: ``float64[F]`` height above the ground line (jumping), pixels.
        stride_phase: ``float64[F]`` radians; the feet are at ``+-leg_swing * sin(phase)`` from the hip line.
        wave_phase: ``float64[F]`` radians; the arm is at ``arm_centre + arm_swing * sin(phase)``.
        facing: ``int8[F]`` +1 faces right, -1 left (a moving figure faces where it goes).
    """

    person_id: int
    height: float
    colors: np.ndarray
    ground_y: float
    leg_swing: float
    arm_centre: float
    arm_swing: float
    arm2_angle: float
    segments: List[Tuple[int, int, Tuple[int, ...]]]
    pose: np.ndarray
    x: np.ndarray
    lift: np.ndarray
    stride_phase: np.ndarray
    wave_phase: np.ndarray
    facing: np.ndarray

    def labels_at(self, frame: int) -> Tuple[int, ...]:
        """The (pose, motions...) labels at ``frame``."""
        for first, end, labels in self.segments:
            if first <= frame < end:
                return labels
        raise IndexError(f"frame {frame} is outside the track")


@dataclass
class VideoPlan:
    """A video before rendering: size, background and figures.

    Attributes:
        video_id: the AVA-style id (11 characters).
        width, height: frame size, pixels.
        num_frames: frames in the file (``seconds * 30``).
        texture: ``uint8[height + 2*pan, width + 2*pan, 3]`` background larger than the frame.
        pan_x, pan_y: ``int64[F]`` top-left corner of the frame inside ``texture`` per frame.
        figures: in drawing order (farther first).
    """

    video_id: str
    width: int
    height: int
    num_frames: int
    texture: np.ndarray
    pan_x: np.ndarray
    pan_y: np.ndarray
    figures: List[FigurePlan]
    #: figure index -> (state at the last rendered frame, its raster); figures that hold still
    #: are not rasterised again.
    raster_cache: Dict[int, Tuple[Tuple, Tuple[np.ndarray, int, int]]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @property
    def keyframe_seconds(self) -> List[int]:
        """Movie seconds of the keyframes: 902 .. 900 + seconds - 2."""
        seconds = self.num_frames // FPS
        return list(range(FIRST_KEYFRAME_SECOND, SEGMENT_START_SECOND + seconds - 1))


def _upsample(noise: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear upsampling of ``float[h,w,C]`` noise to ``float[height,width,C]`` (smooth blobs);
    separable: rows first, then columns."""

    def along(a: np.ndarray, n: int, axis: int) -> np.ndarray:
        size = a.shape[axis]
        pos = np.linspace(0, size - 1, n)
        i0 = np.minimum(np.floor(pos).astype(int), size - 2)
        frac = (pos - i0).reshape([-1 if d == axis else 1 for d in range(a.ndim)])
        return np.take(a, i0, axis=axis) * (1 - frac) + np.take(a, i0 + 1, axis=axis) * frac

    return along(along(noise, height, 0), width, 1)


def _make_texture(rng: np.random.Generator, height: int, width: int) -> Tuple[np.ndarray, np.ndarray]:
    """A muted room: wall above a floor line, smooth colour blobs, faint wallpaper stripes,
    floor boards.

    Returns:
        ``(texture, base)``: ``uint8[height, width, 3]`` and ``float[2,3]`` the wall and floor
        colours before the blobs and stripes.
    """
    wall = rng.uniform(80, 150, 3)
    floor = rng.uniform(60, 120, 3)
    horizon = int(height * rng.uniform(0.3, 0.5))
    img = np.empty((height, width, 3), dtype=np.float64)
    img[:horizon] = wall
    img[horizon:] = floor
    cell = max(8, min(height, width) // 6)
    blobs = rng.normal(0, 1, (height // cell + 2, width // cell + 2, 3))
    img += 14 * _upsample(blobs, height, width)
    fine = rng.normal(0, 1, (height // 4 + 2, width // 4 + 2, 1))
    img += 6 * _upsample(fine, height, width)
    period = rng.uniform(10, 24)
    cols = np.arange(width)
    img[:horizon] += 6 * np.sin(2 * np.pi * cols / period + rng.uniform(0, 2 * np.pi))[None, :, None]
    board = max(4, height // 20)
    rows = np.arange(horizon, height)
    img[horizon:][((rows - horizon) % board) == 0] *= 0.8
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), np.stack([wall, floor])


#: A figure colour's luma (BT.601, 0..255) differs from the room's wall and floor colours by at
#: least this much, so that figures stand out in brightness (h264 keeps luma at full resolution,
#: colour at half) and in grey.
_MIN_LUMA_CONTRAST = 60.0
_LUMA = np.array([0.299, 0.587, 0.114])


def _random_color(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    """A saturated colour (HSV with s in [0.5, 1], v in [0.2, 1]) whose luma differs from that of
    each ``background`` colour (``float[K,3]``) by at least ``_MIN_LUMA_CONTRAST``."""
    best, best_contrast = None, -1.0
    for _ in range(10_000):  # light yellows and cyans (luma ~240) always qualify: this ends early
        rgb = _hsv_color(rng)
        contrast = float(np.abs(_LUMA @ rgb - background @ _LUMA).min())
        if contrast >= _MIN_LUMA_CONTRAST:
            return rgb
        if contrast > best_contrast:
            best, best_contrast = rgb, contrast
    return best


def _hsv_color(rng: np.random.Generator) -> np.ndarray:
    h = rng.uniform(0, 6)
    s = rng.uniform(0.5, 1.0)
    v = rng.uniform(0.2, 1.0)
    i = int(h) % 6
    f = h - int(h)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.rint(np.asarray(rgb) * 255).astype(np.uint8)


def _sample_labels(rng: np.random.Generator) -> Tuple[int, ...]:
    pose = POSE_IDS[rng.choice(3, p=_POSE_P)]
    motions: List[int] = []
    if pose == STAND:
        loco = rng.choice(3, p=_LOCOMOTION_P)
        if loco == 1:
            motions.append(WALK)
        elif loco == 2:
            motions.append(RUN)
        if rng.random() < _JUMP_P:
            motions.append(JUMP)
    if rng.random() < _WAVE_P:
        motions.append(WAVE)
    motions.sort(key=MOTION_IDS.index)
    return (pose, *motions)


def _plan_figure(
    rng: np.random.Generator, person_id: int, num_frames: int, width: int, fig_height: float,
    ground_y: float, background: np.ndarray,
) -> FigurePlan:
    """Draw one figure's labels (segments), motion parameters, track and colours.

    Args:
        num_frames: frames in the video; width: frame width, pixels.
        fig_height: the figure's standing height ``h``, pixels.
        ground_y: its ground line, image row in pixels.
        background: ``float[K,3]`` room colours the figure's colours must stand out from.
    """
    h = fig_height
    # Segments switch half-way between whole seconds (frames 30k + 15).
    segments: List[Tuple[int, int, Tuple[int, ...]]] = []
    start = 0
    first_len = rng.integers(1, _SEGMENT_SECONDS[1] + 1)  # the first segment may start before the file
    boundary_second = int(first_len)
    while start < num_frames:
        end = min(num_frames, boundary_second * FPS + FPS // 2)
        if end <= start:
            end = num_frames
        segments.append((start, end, _sample_labels(rng)))
        start = end
        boundary_second += int(rng.integers(_SEGMENT_SECONDS[0], _SEGMENT_SECONDS[1] + 1))

    walk_speed = rng.uniform(*_WALK_SPEED) * h / FPS
    run_speed = rng.uniform(*_RUN_SPEED) * h / FPS
    walk_stride = rng.uniform(*_WALK_STRIDE_HZ) * np.pi / FPS  # a full stride cycle has 2 leg swings
    run_stride = rng.uniform(*_RUN_STRIDE_HZ) * np.pi / FPS
    wave_rate = rng.uniform(*_WAVE_HZ) * 2 * np.pi / FPS
    jump_rate = rng.uniform(*_JUMP_HZ) * np.pi / FPS
    jump_height = rng.uniform(*_JUMP_HEIGHT) * h

    pose = np.empty(num_frames, dtype=np.int64)
    speed = np.zeros(num_frames)
    stride_rate = np.zeros(num_frames)
    wave = np.zeros(num_frames)
    lift = np.zeros(num_frames)
    for first, end, labels in segments:
        pose[first:end] = labels[0]
        if WALK in labels:
            speed[first:end], stride_rate[first:end] = walk_speed, walk_stride
        elif RUN in labels:
            speed[first:end], stride_rate[first:end] = run_speed, run_stride
        if WAVE in labels:
            wave[first:end] = wave_rate
        if JUMP in labels:
            lift[first:end] = jump_height * np.abs(np.sin(np.arange(end - first) * jump_rate))

    x_lo, x_hi = _X_MARGIN * h + 1, width - _X_MARGIN * h - 1
    x = np.empty(num_frames)
    facing = np.empty(num_frames, dtype=np.int8)
    pos = rng.uniform(x_lo, x_hi)
    direction = 1 if rng.random() < 0.5 else -1
    face = 1 if rng.random() < 0.5 else -1
    for i in range(num_frames):
        if speed[i] > 0:
            pos += direction * speed[i]
            if pos > x_hi:
                pos, direction = 2 * x_hi - pos, -1
            elif pos < x_lo:
                pos, direction = 2 * x_lo - pos, 1
            face = direction
        x[i] = pos
        facing[i] = face
    stride_phase = rng.uniform(0, 2 * np.pi) + np.concatenate([[0.0], np.cumsum(stride_rate[:-1])])
    wave_phase = rng.uniform(0, 2 * np.pi) + np.concatenate([[0.0], np.cumsum(wave[:-1])])

    colors = np.stack([_random_color(rng, background) for _ in range(3)])
    return FigurePlan(
        person_id=person_id,
        height=h,
        colors=colors,
        ground_y=ground_y,
        leg_swing=rng.uniform(*_LEG_SWING),
        arm_centre=np.deg2rad(rng.uniform(*_ARM_CENTRE_DEG)),
        arm_swing=np.deg2rad(rng.uniform(*_ARM_SWING_DEG)),
        arm2_angle=np.deg2rad(rng.uniform(10, 25)),
        segments=segments,
        pose=pose,
        x=x,
        lift=lift,
        stride_phase=stride_phase,
        wave_phase=wave_phase,
        facing=facing,
    )


_ID_ALPHABET = string.ascii_letters + string.digits + "-_"


def _video_ids(rng: np.random.Generator, count: int) -> List[str]:
    """``count`` distinct 11-character ids in the YouTube alphabet (like AVA's), starting with
    a letter or digit."""
    ids: List[str] = []
    while len(ids) < count:
        chars = rng.integers(0, len(_ID_ALPHABET), 11)
        chars[0] %= 62
        vid = "".join(_ID_ALPHABET[c] for c in chars)
        if vid not in ids:
            ids.append(vid)
    return ids


def plan_video(
    rng: np.random.Generator, video_id: str, *, seconds: int, width: int, height: int
) -> VideoPlan:
    """Draw a video's background and 2-4 figure tracks.

    Args:
        rng: the video's own generator (the plan depends on nothing else).
        video_id: the id to give the video.
        seconds: length of the file; frames ``seconds * 30``.
        width, height: frame size, pixels (even).
    """
    num_frames = seconds * FPS
    pan = max(2, int(round(0.025 * width)))
    texture, background = _make_texture(rng, height + 2 * pan, width + 2 * pan)
    t = np.arange(num_frames) / FPS
    px, py = rng.uniform(6, 12), rng.uniform(7, 14)
    pan_x = np.rint(pan + pan * np.sin(2 * np.pi * t / px + rng.uniform(0, 2 * np.pi))).astype(np.int64)
    pan_y = np.rint(pan + 0.5 * pan * np.sin(2 * np.pi * t / py + rng.uniform(0, 2 * np.pi))).astype(np.int64)

    count = int(rng.integers(2, 5))
    fig_heights = rng.uniform(*_FIGURE_HEIGHT, count) * height
    # Spread the ground lines over the lower part of the frame, one band per figure.
    figures = []
    order = rng.permutation(count)
    for person_id in range(count):
        h = fig_heights[person_id]
        lowest = 1.1 * h + _JUMP_HEIGHT[1] * h + 1  # room above for the raised arm and the jump
        band = order[person_id]
        lo = lowest + (height - 1 - lowest) * band / count
        hi = lowest + (height - 1 - lowest) * (band + 1) / count
        ground_y = rng.uniform(lo, hi)
        figures.append(_plan_figure(rng, person_id, num_frames, width, h, ground_y, background))
    figures.sort(key=lambda f: f.ground_y)  # farther (higher in the frame) drawn first
    return VideoPlan(video_id, width, height, num_frames, texture, pan_x, pan_y, figures)


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------

#: A key frame every 15 frames (0.5 s), so readers seek cheaply.
GOP = 15
#: libx264 settings: fixed, single-threaded, no B-frames (presentation = decoding order, first
#: frame at t=0), so the same frames give the same bytes.
X264_OPTIONS = {
    "preset": "veryfast",
    "crf": "23",
    "x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0:bframes=0:threads=1:sliced-threads=0",
}


def encode_video(path: PathLike, frames: Iterator[np.ndarray], width: int, height: int, fps: int = FPS) -> None:
    """Encode RGB frames into an h264 mp4 (yuv420p, ``fps`` frames per second, frame ``i`` at
    ``i / fps`` s). ``frames`` yields ``uint8[height, width, 3]``. Writes ``path`` as given
    (callers pass a temporary path from :func:`ava_detect.io.atomic_path`)."""
    container = av.open(os.fspath(path), "w", format="mp4")
    try:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        stream.codec_context.gop_size = GOP
        stream.options = dict(X264_OPTIONS)
        for i, rgb in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            vf.pts = i
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()


# --------------------------------------------------------------------------------------
# Predicted boxes and exclusions
# --------------------------------------------------------------------------------------

#: Chance that a ground-truth person has no predicted box at a keyframe.
MISS_RATE = 0.05
#: Mean number of false-positive boxes per keyframe.
FALSE_POSITIVES_PER_KEY = 0.3
#: Standard deviation of the jitter of each box side, as a fraction of the box width / height.
BOX_JITTER = 0.05


def predict_boxes(rng: np.random.Generator, gt: pd.DataFrame, width: int, height: int) -> pd.DataFrame:
    """Simulate a person detector from ground-truth boxes.

    Args:
        rng: generator (the output depends on nothing else).
        gt: one row per ground-truth box: ``video_id, second, x1, y1, x2, y2`` (normalised).
        width, height: frame size, pixels (the jitter and false positives are drawn in pixels).

    Returns:
        ``video_id, second, x1, y1, x2, y2, score`` (normalised): per ground-truth box, with
        probability ``1 - MISS_RATE``, the box with each side moved by ``N(0, BOX_JITTER)`` of its
        size (IoU mostly > 0.7) and a score ``1 - |N(0, 0.07)|`` (mostly >= 0.8); plus, per
        keyframe, ``Poisson(FALSE_POSITIVES_PER_KEY)`` person-shaped boxes at random places with
        scores ``U(0.3, 0.95)``. Rows per keyframe are sorted by decreasing score.
    """
    rows = []
    for (video_id, second), group in gt.groupby(["video_id", "second"], sort=False):
        boxes = group[["x1", "y1", "x2", "y2"]].to_numpy() * [width, height, width, height]
        found = []
        for box in boxes:
            if rng.random() < MISS_RATE:
                continue
            w, h = box[2] - box[0], box[3] - box[1]
            jitter = rng.normal(0, BOX_JITTER, 4) * [w, h, w, h]
            new = np.clip(box + jitter, 0, [width, height, width, height])
            if new[2] - new[0] < 2 or new[3] - new[1] < 2:
                new = box
            score = float(np.clip(1 - abs(rng.normal(0, 0.07)), 0.3, 0.999))
            found.append((new, score))
        for _ in range(int(rng.poisson(FALSE_POSITIVES_PER_KEY))):
            bh = rng.uniform(0.2, 0.5) * height
            bw = bh * rng.uniform(0.3, 0.8)
            x1 = rng.uniform(0, width - bw)
            y1 = rng.uniform(0, height - bh)
            found.append((np.array([x1, y1, x1 + bw, y1 + bh]), float(rng.uniform(0.3, 0.95))))
        found.sort(key=lambda item: -item[1])
        for box, score in found:
            nb = pixels_to_normalized(box[None, :], width, height)[0]
            rows.append((video_id, second, *nb, score))
    return pd.DataFrame(rows, columns=["video_id", "second", "x1", "y1", "x2", "y2", "score"])


# --------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------


@dataclass
class SyntheticSummary:
    """What :func:`make_synthetic_dataset` wrote.

    Attributes:
        out_dir: the dataset folder.
        seed, seconds, fps: as made; ``size`` is ``(width, height)`` in pixels.
        videos: split -> video ids.
        keyframes: split -> number of keyframes (image keys).
        boxes: split -> ground-truth person boxes (one per person per keyframe).
        predicted_boxes: split -> rows of the predicted-box file.
        excluded: split -> excluded keys.
        class_counts: split -> {class id: ground-truth boxes with that label}.
        class_names: class id -> AVA name.
        files: written files except ``dataset.json``, relative to ``out_dir``, sorted.
        bytes_on_disk: total size of ``files``, bytes.
    """

    out_dir: Path
    seed: int
    size: Tuple[int, int]
    seconds: int
    fps: int
    videos: Dict[str, List[str]]
    keyframes: Dict[str, int]
    boxes: Dict[str, int]
    predicted_boxes: Dict[str, int]
    excluded: Dict[str, int]
    class_counts: Dict[str, Dict[int, int]]
    class_names: Dict[int, str]
    files: List[str] = field(default_factory=list)
    bytes_on_disk: int = 0

    def to_json(self) -> Dict:
        """The contents of ``dataset.json`` (no timestamps, so it is the same for the same seed)."""
        return {
            "generator": GENERATOR,
            "format_version": FORMAT_VERSION,
            "seed": self.seed,
            "size": {"width": self.size[0], "height": self.size[1]},
            "fps": self.fps,
            "seconds": self.seconds,
            "time_convention": {
                "file_start_second": SEGMENT_START_SECOND,
                "first_keyframe_second": FIRST_KEYFRAME_SECOND,
                "last_keyframe_second": SEGMENT_START_SECOND + self.seconds - 2,
            },
            "videos": self.videos,
            "keyframes": self.keyframes,
            "boxes": self.boxes,
            "predicted_boxes": self.predicted_boxes,
            "excluded_keys": self.excluded,
            "classes": [
                {"id": c, "name": self.class_names[c], "kind": "pose" if c in POSE_IDS else "motion"}
                for c in CLASS_IDS
            ],
            "class_box_counts": {
                split: {str(c): self.class_counts[split].get(c, 0) for c in CLASS_IDS} for split in SPLITS
            },
            "files": self.files,
            "bytes": self.bytes_on_disk,
        }


def _seed_sequences(seed: int) -> List[np.random.SeedSequence]:
    """Independent streams: [video ids and splits, one per video (spawned), predicted boxes]."""
    return np.random.SeedSequence([int(seed), 0x5A7A]).spawn(3)


def iter_video_plans(
    seed: int, num_videos: int, *, seconds: int, size: Tuple[int, int]
) -> Iterator[VideoPlan]:
    """The plans of the videos that :func:`make_synthetic_dataset` renders for these arguments,
    in the order of their ids (lets checks re-render any frame of a written set)."""
    ss_meta, ss_videos, _ = _seed_sequences(seed)
    video_ids = _video_ids(np.random.default_rng(ss_meta), num_videos)
    for vid, video_ss in zip(video_ids, ss_videos.spawn(num_videos)):
        yield plan_video(np.random.default_rng(video_ss), vid, seconds=seconds, width=int(size[0]), height=int(size[1]))


def _is_synthetic_set(out_dir: Path) -> bool:
    """A folder that this module wrote: finished (``dataset.json`` names the generator) or
    interrupted (the in-progress marker is there)."""
    if (out_dir / IN_PROGRESS_MARKER).is_file():
        return True
    meta = out_dir / "dataset.json"
    if not meta.is_file():
        return False
    try:
        return json.loads(meta.read_text(encoding="utf-8")).get("generator") == GENERATOR
    except (OSError, ValueError, AttributeError):
        return False


def _clear_previous_set(out_dir: Path) -> None:
    """Remove the files of an earlier synthetic set in ``out_dir`` (its videos, annotation
    files, frame lists, leftovers of interrupted writes and ``dataset.json``); other files stay."""
    (out_dir / "dataset.json").unlink(missing_ok=True)
    for p in out_dir.glob(".dataset.*.tmp.json"):
        p.unlink()
    videos = out_dir / "videos"
    if videos.is_dir():
        for p in videos.iterdir():
            if p.is_file() and p.suffix == ".mp4":
                p.unlink()
    for rel in ANNOTATION_FILES + FRAME_LIST_FILES:
        (out_dir / rel).unlink(missing_ok=True)
    for sub in ("annotations", "frame_lists"):
        folder = out_dir / sub
        if folder.is_dir():
            for p in folder.iterdir():
                if p.is_file() and p.name.startswith(".") and ".tmp" in p.name:
                    p.unlink()


def _check_arguments(seed: int, num_videos: int, seconds: int, size: Tuple[int, int], val_fraction: float) -> None:
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise AvaDetectError(f"seed must be a non-negative integer, got {seed!r}")
    if num_videos < 2:
        raise AvaDetectError(f"need at least 2 videos (one for train, one for val), got {num_videos}")
    last = SEGMENT_START_SECOND + seconds - 2
    if seconds < 4 or last > 1798:
        raise AvaDetectError(
            f"seconds must be 4..900 (keyframes 902 .. 900 + seconds - 2 within AVA's 902..1798), got {seconds}"
        )
    width, height = size
    if width < 64 or height < 64 or width % 2 or height % 2:
        raise AvaDetectError(f"size must be even and at least 64x64 (h264 yuv420p), got {width}x{height}")
    if not 0.0 < val_fraction < 1.0:
        raise AvaDetectError(f"val_fraction must be between 0 and 1, got {val_fraction}")


def make_synthetic_dataset(
    out_dir: PathLike,
    *,
    seed: int = 0,
    num_videos: int = 12,
    seconds: int = 30,
    size: Tuple[int, int] = (320, 240),
    val_fraction: float = 1 / 3,
    overwrite: bool = False,
    progress: Optional[Callable[[int], None]] = None,
) -> SyntheticSummary:
    """Write a synthetic AVA-format dataset (layout in the module docstring).

    Args:
        out_dir: dataset folder. It may be missing, empty, or hold an earlier synthetic set
            (finished or interrupted), whose files are replaced.
        seed: everything is drawn from it; the same arguments give the same bytes.
        num_videos: videos in all, >= 2; ``round(num_videos * val_fraction)`` (at least 1,
            at most ``num_videos - 1``) go to val.
        seconds: length of each video (file t=0 is movie second 900); keyframes are seconds
            902 .. 900 + seconds - 2, one per second. 4..900.
        size: ``(width, height)`` in pixels, both even, at least 64.
        val_fraction: share of the videos in val, in (0, 1).
        overwrite: also write into a non-empty folder that is not a synthetic set (files with
            the names above are replaced; other files are left alone).
        progress: called with the number of frames rendered since the last call; frames in
            all: ``num_videos * seconds * 30``.

    Returns:
        A :class:`SyntheticSummary`, also written as ``dataset.json``.

    Raises:
        AvaDetectError: bad arguments, or ``out_dir`` is a file or a non-empty folder that is
            not a synthetic set (without ``overwrite``).
    """
    _check_arguments(seed, num_videos, seconds, size, val_fraction)
    width, height = int(size[0]), int(size[1])
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise AvaDetectError("output exists and is not a folder", out)
    if out.is_dir() and any(out.iterdir()):
        if _is_synthetic_set(out):
            logger.info("%s: replacing the synthetic set there", out)
            _clear_previous_set(out)
        elif not overwrite:
            raise AvaDetectError(
                "output folder is not empty and holds no synthetic set; choose an empty folder or "
                "pass --overwrite to write into it anyway", out,
            )
    out.mkdir(parents=True, exist_ok=True)
    (out / IN_PROGRESS_MARKER).write_text("a synthetic set is being written here\n", encoding="utf-8")

    ss_meta, _, ss_boxes = _seed_sequences(seed)
    meta_rng = np.random.default_rng(ss_meta)
    video_ids = _video_ids(meta_rng, num_videos)
    num_val = min(num_videos - 1, max(1, int(round(num_videos * val_fraction))))
    val_index = set(int(i) for i in meta_rng.choice(num_videos, num_val, replace=False))
    split_of = {vid: ("val" if i in val_index else "train") for i, vid in enumerate(video_ids)}

    labelmap80 = read_labelmap(labelmap_80_path())
    labelmap = LabelMap(
        ids=CLASS_IDS,
        names={c: labelmap80.names[c] for c in CLASS_IDS},
        types={c: labelmap80.types[c] for c in CLASS_IDS},
    )

    gt_rows: Dict[str, List[Tuple]] = {s: [] for s in SPLITS}
    for plan in iter_video_plans(seed, num_videos, seconds=seconds, size=(width, height)):
        vid = plan.video_id
        keyframes = {(s - SEGMENT_START_SECOND) * FPS: s for s in plan.keyframe_seconds}
        key_boxes: Dict[int, List[Optional[Tuple[int, int, int, int]]]] = {}

        def frames() -> Iterator[np.ndarray]:
            for i in range(plan.num_frames):
                rgb, boxes = render_frame(plan, i)
                if i in keyframes:
                    key_boxes[i] = boxes
                if progress is not None and (i + 1) % FPS == 0:
                    progress(FPS)
                yield rgb
            if progress is not None and plan.num_frames % FPS:
                progress(plan.num_frames % FPS)

        with atomic_path(out / "videos" / f"{vid}.mp4") as tmp:
            encode_video(tmp, frames(), width, height)
        for frame, second in keyframes.items():
            for fig, box in zip(plan.figures, key_boxes[frame]):
                if box is None:
                    continue
                nb = pixels_to_normalized(np.asarray(box, dtype=np.float64)[None, :], width, height)[0]
                for label in fig.labels_at(frame):
                    gt_rows[split_of[vid]].append((vid, second, *nb, label, fig.person_id))
        logger.debug("video %s (%s): %d figures", vid, split_of[vid], len(plan.figures))

    summary = SyntheticSummary(
        out_dir=out, seed=int(seed), size=(width, height), seconds=seconds, fps=FPS,
        videos={s: [v for v in video_ids if split_of[v] == s] for s in SPLITS},
        keyframes={}, boxes={}, predicted_boxes={}, excluded={}, class_counts={},
        class_names=dict(labelmap.names),
    )
    gt_columns = ["video_id", "second", "x1", "y1", "x2", "y2", "action_id", "person_id"]
    box_rngs = dict(zip(SPLITS, (np.random.default_rng(s) for s in ss_boxes.spawn(len(SPLITS)))))
    for split in SPLITS:
        # Rows are in video order, then keyframe; order each key's rows by person id.
        gt = pd.DataFrame(gt_rows[split], columns=gt_columns)
        rank = gt["video_id"].map({v: i for i, v in enumerate(summary.videos[split])})
        gt = gt.assign(_rank=rank).sort_values(["_rank", "second", "person_id"], kind="stable")
        gt = gt.drop(columns="_rank").reset_index(drop=True)
        write_ground_truth(out / "annotations" / f"{split}.csv", gt)

        persons = gt.drop_duplicates(["video_id", "second", "person_id"])
        rng = box_rngs[split]
        pred = predict_boxes(rng, persons, width, height)
        write_predicted_boxes(out / "annotations" / f"{split}_predicted_boxes.csv", pred)

        keys = sorted({image_key(v, s) for v, s in zip(persons["video_id"], persons["second"])})
        num_excluded = min(len(keys), max(1, int(round(0.03 * len(keys)))))
        excluded = [keys[i] for i in sorted(rng.choice(len(keys), num_excluded, replace=False))]
        write_exclusions(out / "annotations" / f"{split}_excluded_timestamps.csv", excluded)

        frame_rows = [
            (vid, index, f, f"{vid}/{vid}_{f + 1:06d}.jpg", '""')
            for index, vid in enumerate(summary.videos[split])
            for f in range(seconds * FPS)
        ]
        write_frame_list(
            out / "frame_lists" / f"{split}.csv",
            pd.DataFrame(frame_rows, columns=["original_vido_id", "video_id", "frame_id", "path", "labels"]),
        )

        summary.keyframes[split] = len(keys)
        summary.boxes[split] = len(persons)
        summary.predicted_boxes[split] = len(pred)
        summary.excluded[split] = num_excluded
        counts = gt["action_id"].value_counts()
        summary.class_counts[split] = {c: int(counts.get(c, 0)) for c in CLASS_IDS}
    write_labelmap(out / "annotations" / "labelmap.pbtxt", labelmap)

    summary.files = sorted([f"videos/{v}.mp4" for v in video_ids] + list(ANNOTATION_FILES) + list(FRAME_LIST_FILES))
    summary.bytes_on_disk = sum((out / f).stat().st_size for f in summary.files)
    with atomic_open(out / "dataset.json", "w", encoding="utf-8") as f:
        f.write(json.dumps(summary.to_json(), indent=2) + "\n")
    (out / IN_PROGRESS_MARKER).unlink()
    logger.info(
        "%s: %d train + %d val videos, %d + %d keyframes, %d MB",
        out, len(summary.videos["train"]), len(summary.videos["val"]),
        summary.keyframes["train"], summary.keyframes["val"], summary.bytes_on_disk >> 20,
    )
    return summary
