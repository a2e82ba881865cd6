"""The one box convention and the one image key.

Inside the code, boxes are float ``Tensor[N,4]`` ``(x1, y1, x2, y2)`` in pixels of the image
the model sees. AVA files store coordinates normalised to [0, 1]; they are converted here and
nowhere else. RoIs given to the head are ``Tensor[K,5]`` ``(batch_index, x1, y1, x2, y2)``.
IoU follows the official AVA evaluator: areas without the ``+1`` pixel convention.

This module does not import torch (the ``eval`` command and the CSV readers use it without
torch): a tensor can only be passed in once torch is loaded, so the functions that accept
tensors look for it in ``sys.modules``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Sequence, Tuple, Union

import numpy as np

if TYPE_CHECKING:
    import torch

ArrayOrTensor = Union[np.ndarray, "torch.Tensor"]


def _is_tensor(value: object) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def image_key(video_id: str, second: int) -> str:
    """The key of one keyframe: ``"<video_id>,<second:04d>"`` (as the official evaluator builds it)."""
    return f"{video_id},{int(second):04d}"


def parse_image_key(key: str) -> Tuple[str, int]:
    """Inverse of :func:`image_key`: ``"abc,0902"`` -> ``("abc", 902)``."""
    video_id, _, second = key.rpartition(",")
    if not video_id or not second.isdigit():
        raise ValueError(f"not an image key (expected 'video_id,SSSS'): {key!r}")
    return video_id, int(second)


def normalized_to_pixels(boxes: ArrayOrTensor, width: float, height: float) -> ArrayOrTensor:
    """``[N,4]`` normalised ``(x1,y1,x2,y2)`` in [0,1] -> pixels of a ``width x height`` image."""
    scale = [width, height, width, height]
    if _is_tensor(boxes):
        import torch

        return boxes * torch.as_tensor(scale, dtype=boxes.dtype, device=boxes.device)
    return np.asarray(boxes) * np.asarray(scale, dtype=np.float64)


def pixels_to_normalized(boxes: ArrayOrTensor, width: float, height: float) -> ArrayOrTensor:
    """``[N,4]`` pixel ``(x1,y1,x2,y2)`` of a ``width x height`` image -> normalised, clipped to [0,1]."""
    scale = [width, height, width, height]
    if _is_tensor(boxes):
        import torch

        out = boxes / torch.as_tensor(scale, dtype=boxes.dtype, device=boxes.device)
        return out.clamp_(0.0, 1.0)
    return np.clip(np.asarray(boxes) / np.asarray(scale, dtype=np.float64), 0.0, 1.0)


def box_area(boxes: np.ndarray) -> np.ndarray:
    """``[N,4]`` ``(x1,y1,x2,y2)`` -> ``[N]`` areas (no +1)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``a: [N,4]`` and ``b: [M,4]`` ``(x1,y1,x2,y2)`` boxes -> ``[N,M]`` in [0,1].

    Same arithmetic as the official AVA evaluator (``np_box_ops.iou``): no +1 on widths.
    Works for normalised or pixel boxes alike.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.maximum(ix2 - ix1, 0.0) * np.maximum(iy2 - iy1, 0.0)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou


def boxes_to_rois(boxes_per_image: Sequence["torch.Tensor"]) -> "torch.Tensor":
    """List of ``Tensor[N_i,4]`` pixel boxes, one per clip in a batch -> ``Tensor[K,5]``
    ``(batch_index, x1, y1, x2, y2)`` with ``K = sum(N_i)`` (``[0,5]`` when there are none)."""
    import torch

    rois = []
    for i, boxes in enumerate(boxes_per_image):
        boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        index = torch.full((boxes.shape[0], 1), float(i), dtype=boxes.dtype, device=boxes.device)
        rois.append(torch.cat([index, boxes], dim=1))
    if not rois:
        return torch.zeros((0, 5), dtype=torch.float32)
    return torch.cat(rois, dim=0)
