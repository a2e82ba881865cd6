"""A synthetic AVA-format dataset: rendered videos with learnable actions, small enough for a CPU.

:func:`make_synthetic_dataset` writes a folder shaped like prepared AVA (:mod:`ava_detect.data.layout`)::

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

The parts, one per module: :mod:`~ava_detect.synthetic.classes` (the AVA ids used),
:mod:`~ava_detect.synthetic.scene` (plans: room, figures, labels and motion per frame),
:mod:`~ava_detect.synthetic.render` (rasterising figures, rendering frames with their boxes),
:mod:`~ava_detect.synthetic.encode` (deterministic h264), :mod:`~ava_detect.synthetic.detector`
(simulated person-detector boxes), :mod:`~ava_detect.synthetic.dataset` (writing the set).
"""

from ava_detect.synthetic.classes import (
    CLASS_IDS,
    JUMP,
    LIE,
    MOTION_IDS,
    POSE_IDS,
    RUN,
    SIT,
    STAND,
    WALK,
    WAVE,
    synthetic_labelmap,
)
from ava_detect.synthetic.dataset import (
    IN_PROGRESS_MARKER,
    SyntheticSummary,
    iter_video_plans,
    make_synthetic_dataset,
)
from ava_detect.synthetic.detector import predict_boxes
from ava_detect.synthetic.encode import encode_video
from ava_detect.synthetic.render import figure_box, figure_primitives, rasterize_figure, render_frame
from ava_detect.synthetic.scene import FigurePlan, VideoPlan, plan_video

__all__ = [
    "CLASS_IDS", "POSE_IDS", "MOTION_IDS", "STAND", "SIT", "LIE", "WALK", "RUN", "JUMP", "WAVE", "synthetic_labelmap",
    "FigurePlan", "VideoPlan", "plan_video", "figure_primitives", "rasterize_figure", "figure_box", "render_frame",
    "encode_video", "predict_boxes", "SyntheticSummary", "IN_PROGRESS_MARKER", "iter_video_plans",
    "make_synthetic_dataset",
]
