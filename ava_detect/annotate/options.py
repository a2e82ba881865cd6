"""The settings of one ``annotate`` pass, frozen and built once from the config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Tuple

from ava_detect.annotate.labels import LabelPolicy
from ava_detect.data.constants import FPS
from ava_detect.errors import AvaDetectError

if TYPE_CHECKING:
    from ava_detect.config import Config


@dataclass(frozen=True)
class AnnotateOptions:
    """How :func:`~ava_detect.annotate.annotate_video` samples, scores, tracks and encodes.

    Attributes:
        num_frames, sampling_rate: the action model's clip (fast pathway frames, stride on the ``fps`` axis).
        every: seconds between keyframes (> 0); keyframes are at file times 0, every, 2 * every, ...
        second_offset: added to a keyframe's whole second of file time (CSV ``second``, box-CSV key).
        labels: which actions are written and drawn (:class:`~ava_detect.annotate.labels.LabelPolicy`).
        batch_size: keyframe clips per action-model pass. detect_batch: keyframes per detector pass.
        fps: the clip time axis (AVA: 30).
        track_iou, track_max_age: tracker settings (:class:`~ava_detect.annotate.tracking.IoUTracker`).
        crf, preset: x264 settings of the written video.
        max_height: pictures are scaled down to at most this many pixels high on reading (0: not scaled).
    """

    num_frames: int
    sampling_rate: int
    every: float = 1.0
    second_offset: int = 0
    labels: LabelPolicy = field(default_factory=LabelPolicy)
    batch_size: int = 4
    detect_batch: int = 4
    fps: int = FPS
    track_iou: float = 0.3
    track_max_age: int = 2
    crf: int = 20
    preset: str = "veryfast"
    max_height: int = 0

    def __post_init__(self) -> None:
        if not self.every > 0:
            raise AvaDetectError(f"keyframe interval must be > 0 seconds, got {self.every}")
        if self.max_height < 0:
            raise AvaDetectError(f"max_height must be >= 0 (0: pictures as they are), got {self.max_height}")

    def working_size(self, width: int, height: int) -> Tuple[int, int]:
        """``(width, height)`` of the pictures worked on and written: the input's, or scaled down to
        ``max_height`` keeping the aspect ratio (both sides even, for 4:2:0 video)."""
        if not self.max_height or height <= self.max_height:
            return width, height
        h = max(2, self.max_height - self.max_height % 2)
        w = max(2, int(round(width * h / height / 2.0)) * 2)
        return w, h

    @classmethod
    def from_config(cls, cfg: "Config") -> "AnnotateOptions":
        """The ``annotate`` section, with the clip of ``model``, the batch of ``detector`` and the fps of ``data``."""
        a = cfg.annotate
        labels = LabelPolicy(threshold=float(a.threshold), top_k=int(a.top_k))
        return cls(num_frames=cfg.model.num_frames, sampling_rate=cfg.model.sampling_rate, every=float(a.every),
                   second_offset=int(a.second_offset), labels=labels,
                   batch_size=a.batch_size, detect_batch=cfg.detector.batch_size, fps=cfg.data.fps,
                   track_iou=a.track_iou, track_max_age=a.track_max_age, crf=a.crf, preset=a.preset,
                   max_height=int(a.max_height))
