"""Scene plans: everything about a synthetic video except its pixels (room, figures, their labels
and motion per frame), drawn from one random generator."""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from ava_detect.data.constants import FIRST_KEYFRAME_SECOND, FPS, SEGMENT_START_SECOND
from ava_detect.synthetic.classes import JUMP, MOTION_IDS, POSE_IDS, RUN, STAND, WALK, WAVE

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


def draw_video_ids(rng: np.random.Generator, count: int) -> List[str]:
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
