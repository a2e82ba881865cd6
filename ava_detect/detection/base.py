"""The person-detector interface: frames in, person boxes in pixels and their scores out.

Every backend (:mod:`~ava_detect.detection.torchvision_backend`,
:mod:`~ava_detect.detection.detectron2_backend`, :mod:`~ava_detect.detection.csv_backend`)
implements :class:`PersonDetector`. Boxes follow the project's one convention: float
``Tensor[K,4]`` ``(x1, y1, x2, y2)`` in pixels of the frame given, on the CPU.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

if TYPE_CHECKING:
    from ava_detect.config import DetectorConfig

#: One frame's detections: ``(boxes float Tensor[K,4] pixel xyxy, scores float Tensor[K] in [0,1])``.
Detections = Tuple[torch.Tensor, torch.Tensor]
#: Where a frame comes from: ``(video_id, second)``, the AVA key of a keyframe (see ``image_key``).
FrameKey = Tuple[str, int]
#: Frames as a list of ``uint8 [H,W,3]`` RGB tensors / arrays (sizes may differ) or one ``uint8 [N,H,W,3]`` tensor.
Frames = Union[Sequence[Union[torch.Tensor, np.ndarray]], torch.Tensor]


def as_frame_list(frames: Frames) -> List[torch.Tensor]:
    """``frames`` -> list of ``uint8 Tensor[H,W,3]`` (no copies where possible).

    Raises:
        ValueError: a frame that is not ``[H,W,3]`` uint8.
    """
    if isinstance(frames, torch.Tensor):
        if frames.dim() != 4:
            raise ValueError(f"frames must be [N,H,W,3], got {tuple(frames.shape)}")
        out = list(frames.unbind(0))
    else:
        out = [f if isinstance(f, torch.Tensor) else torch.from_numpy(np.asarray(f)) for f in frames]
    for f in out:
        if f.dim() != 3 or f.shape[-1] != 3 or f.dtype != torch.uint8:
            raise ValueError(f"each frame must be uint8 [H,W,3] RGB, got {f.dtype} {tuple(f.shape)}")
    return out


def check_input_size(d: "DetectorConfig") -> None:
    """The resize settings of a neural backend's ``DetectorConfig`` ``d``.

    Raises:
        AvaDetectError: unless ``1 <= min_size <= max_size`` and ``proposals >= 1``.
    """
    from ava_detect.errors import AvaDetectError

    if d.min_size < 1 or d.max_size < d.min_size:
        raise AvaDetectError(f"detector input size: need 1 <= min_size <= max_size, got min_size={d.min_size}, "
                             f"max_size={d.max_size}", "config")
    if d.proposals < 1:
        raise AvaDetectError(f"detector.proposals must be >= 1, got {d.proposals}", "config")


def empty_detections() -> Detections:
    """No boxes: ``(Tensor[0,4], Tensor[0])``."""
    return torch.zeros((0, 4), dtype=torch.float32), torch.zeros((0,), dtype=torch.float32)


class PersonDetector(abc.ABC):
    """Finds people in frames.

    Attributes:
        name: short backend name for logs (``torchvision``, ``detectron2``, ``csv``).
        score_threshold: boxes with a lower score are not returned.
        needs_keys: True when :meth:`detect` needs the ``keys`` of the frames (precomputed boxes).
    """

    name: str = "detector"
    score_threshold: float = 0.0
    needs_keys: bool = False

    @abc.abstractmethod
    def detect(self, frames: Frames, *, keys: Optional[Sequence[FrameKey]] = None) -> List[Detections]:
        """People in each frame.

        Args:
            frames: ``uint8 [H,W,3]`` RGB frames (a list, sizes may differ, or a ``[N,H,W,3]`` tensor).
            keys: ``(video_id, second)`` of each frame; required by backends with ``needs_keys``,
                ignored by the others.

        Returns:
            One ``(boxes float Tensor[K,4] pixel (x1,y1,x2,y2), scores float Tensor[K])`` per frame,
            on the CPU, sorted by decreasing score, all scores ``>= score_threshold``.
        """

    def describe(self) -> str:
        """One line for logs: backend, weights / file, threshold."""
        return f"{self.name} (score >= {self.score_threshold:g})"
