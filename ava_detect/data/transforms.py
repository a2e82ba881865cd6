"""Clip + box transforms: ``(clip, boxes) -> (clip, boxes)``, PySlowFast's AVA recipe.

Clips are ``uint8 Tensor[T,H,W,3]`` RGB (any memory layout) until :func:`normalize`, which
returns ``float Tensor[3,T,H,W]``. Boxes are ``float Tensor[N,4]`` ``(x1, y1, x2, y2)`` in pixels
of the current clip, in PySlowFast's inclusive pixel convention: they are clipped to
``[0, W-1] x [0, H-1]`` and a horizontal flip maps ``x1' = W - x2 - 1``.

Train (:class:`TrainTransform`): short side jittered to a random integer size in
``[jitter_min, jitter_max]`` (256..320), a random ``crop_size`` square crop (224; boxes shifted
and clipped, boxes left with no area dropped, with their labels, by the caller through the
returned ``keep`` mask), a horizontal flip with probability 0.5, optional colour jitter.
Test (:class:`TestTransform`): short side resized to ``short_side`` (256) on the full frame.
Both then normalise (``/255``, mean 0.45, std 0.225) and pack the frames into the model's pathways
as the backbone's :class:`~ava_detect.model.base.InputSpec` (given to the transform) says. Random draws use torch's global generator (or the ``generator`` given), so a DataLoader
worker seeded by torch gives reproducible augmentations.

Resizing is bilinear without antialiasing (``torch.nn.functional.interpolate``), as PySlowFast's
``cv2.resize(INTER_LINEAR)``; new sizes are floored as in PySlowFast's ``scale``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

import torch
from torchvision.transforms.v2 import functional as TF
import torch.nn.functional as F

if TYPE_CHECKING:
    from ava_detect.model.base import InputSpec

Clip = torch.Tensor  # uint8 [T,H,W,3]
Boxes = torch.Tensor  # float [N,4] pixels


def _rand_uniform(low: float, high: float, generator: Optional[torch.Generator]) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _rand_int(low: int, high: int, generator: Optional[torch.Generator]) -> int:
    """Integer in ``[low, high]`` (inclusive)."""
    return int(torch.randint(low, high + 1, (), generator=generator))


def short_side_size(height: int, width: int, size: int) -> Tuple[int, int]:
    """``(new_height, new_width)`` with the short side ``size`` and the long side
    ``floor(long / short * size)`` (PySlowFast's ``scale``)."""
    if width <= height:
        return int(math.floor(height / width * size)), size
    return size, int(math.floor(width / height * size))


def clip_boxes(boxes: Boxes, height: int, width: int) -> Boxes:
    """Clip ``[N,4]`` boxes to ``[0, width-1] x [0, height-1]`` (PySlowFast's ``clip_boxes_to_image``)."""
    out = boxes.clone()
    out[:, 0::2] = out[:, 0::2].clamp(0, width - 1)
    out[:, 1::2] = out[:, 1::2].clamp(0, height - 1)
    return out


def resize(clip: Clip, boxes: Boxes, height: int, width: int) -> Tuple[Clip, Boxes]:
    """Resize every frame to ``height x width`` (bilinear) and scale the boxes by the same factors.

    Args:
        clip: ``uint8 [T,H,W,3]``.
        boxes: ``[N,4]`` pixels of the input clip.
    Returns:
        ``uint8 [T,height,width,3]`` and ``[N,4]`` pixels of the output.
    """
    t, h, w, _ = clip.shape
    if (h, w) == (height, width):
        return clip, boxes
    x = clip.permute(0, 3, 1, 2)  # [T,3,H,W], channels-last memory when the clip is contiguous
    x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=False)
    scale = torch.tensor([width / w, height / h, width / w, height / h], dtype=boxes.dtype)
    return x.permute(0, 2, 3, 1), boxes * scale


def resize_short_side(clip: Clip, boxes: Boxes, size: int) -> Tuple[Clip, Boxes]:
    """Resize so that the short side is ``size`` pixels (aspect kept, long side floored)."""
    _, h, w, _ = clip.shape
    return resize(clip, boxes, *short_side_size(h, w, size))


def random_short_side_jitter(
    clip: Clip, boxes: Boxes, min_size: int, max_size: int, generator: Optional[torch.Generator] = None
) -> Tuple[Clip, Boxes]:
    """Short side to ``round(uniform(min_size, max_size))`` pixels (PySlowFast's
    ``random_short_side_scale_jitter``)."""
    size = int(round(_rand_uniform(min_size, max_size, generator)))
    return resize_short_side(clip, boxes, size)


def crop(clip: Clip, boxes: Boxes, top: int, left: int, height: int, width: int) -> Tuple[Clip, Boxes, torch.Tensor]:
    """Crop ``clip[:, top:top+height, left:left+width]``; boxes are shifted and clipped to the crop.

    Returns:
        ``(clip, boxes, keep)``: the cropped clip, all ``[N,4]`` boxes in crop pixels, and
        ``keep: BoolTensor[N]``, False for boxes left with no area (fully outside the crop).
    """
    out = clip[:, top:top + height, left:left + width]
    shifted = boxes - torch.tensor([left, top, left, top], dtype=boxes.dtype)
    clipped = clip_boxes(shifted, out.shape[1], out.shape[2])
    keep = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    return out, clipped, keep


def random_crop(
    clip: Clip, boxes: Boxes, size: int, generator: Optional[torch.Generator] = None
) -> Tuple[Clip, Boxes, torch.Tensor]:
    """A random ``size x size`` crop (offsets uniform over all positions); see :func:`crop`."""
    _, h, w, _ = clip.shape
    top = _rand_int(0, max(h - size, 0), generator)
    left = _rand_int(0, max(w - size, 0), generator)
    return crop(clip, boxes, top, left, min(size, h), min(size, w))


def horizontal_flip(clip: Clip, boxes: Boxes) -> Tuple[Clip, Boxes]:
    """Mirror left-right: ``x1' = W - x2 - 1``, ``x2' = W - x1 - 1`` (inclusive pixel convention)."""
    w = clip.shape[2]
    flipped = boxes.clone()
    flipped[:, 0] = w - boxes[:, 2] - 1
    flipped[:, 2] = w - boxes[:, 0] - 1
    return clip.flip(2), flipped


def random_horizontal_flip(
    clip: Clip, boxes: Boxes, p: float = 0.5, generator: Optional[torch.Generator] = None
) -> Tuple[Clip, Boxes]:
    """:func:`horizontal_flip` with probability ``p``."""
    if float(torch.rand((), generator=generator)) < p:
        return horizontal_flip(clip, boxes)
    return clip, boxes


def color_jitter(
    clip: torch.Tensor, strength: float, generator: Optional[torch.Generator] = None
) -> torch.Tensor:
    """Brightness, contrast and saturation jitter, in random order, one draw for the whole clip
    (PySlowFast's ``color_jitter_list``), factors uniform in ``[1 - strength, 1 + strength]``.

    Args:
        clip: ``float [3,T,H,W]`` in [0, 1].
    Returns:
        ``float [3,T,H,W]`` in [0, 1].
    """
    if strength <= 0:
        return clip

    x = clip.permute(1, 0, 2, 3)  # [T,3,H,W] for torchvision
    ops = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation]
    for k in torch.randperm(3, generator=generator).tolist():
        x = ops[k](x, _rand_uniform(1 - strength, 1 + strength, generator))
    return x.permute(1, 0, 2, 3)


def to_float(clip: Clip) -> torch.Tensor:
    """``uint8 [T,H,W,3]`` -> ``float [3,T,H,W]`` in [0, 1]."""
    return clip.permute(3, 0, 1, 2).float().div_(255.0)


def normalize(clip: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``float [3,T,H,W]`` in [0,1] -> ``(x - mean) / std`` per channel (in place on a fresh tensor)."""
    m = torch.as_tensor(mean, dtype=clip.dtype).view(3, 1, 1, 1)
    s = torch.as_tensor(std, dtype=clip.dtype).view(3, 1, 1, 1)
    return clip.sub_(m).div_(s)


@dataclass
class TransformOutput:
    """What a clip transform returns.

    Attributes:
        inputs: pathway tensors (slow first), each ``float [3,T_p,H,W]``.
        boxes: ``[N',4]`` pixel boxes in the input tensors (only kept boxes).
        keep: ``BoolTensor[N]`` over the boxes given: which ones are in ``boxes``.
    """

    inputs: List[torch.Tensor]
    boxes: Boxes
    keep: torch.Tensor


@dataclass
class TrainTransform:
    """PySlowFast's AVA training transform; see the module docstring.

    Args (fields): input_spec (the backbone's pathway packing), jitter_min/jitter_max (short side, px),
    crop_size (px), flip (random horizontal flip), color_jitter (strength, 0 = off), mean/std (RGB).
    """

    input_spec: "InputSpec"
    jitter_min: int = 256
    jitter_max: int = 320
    crop_size: int = 224
    flip: bool = True
    color_jitter: float = 0.0
    mean: Sequence[float] = (0.45, 0.45, 0.45)
    std: Sequence[float] = (0.225, 0.225, 0.225)

    def __call__(self, clip: Clip, boxes: Boxes, generator: Optional[torch.Generator] = None) -> TransformOutput:
        """``uint8 [T,H,W,3]`` + ``[N,4]`` pixel boxes of it -> :class:`TransformOutput`."""
        boxes = clip_boxes(boxes.float(), clip.shape[1], clip.shape[2])
        clip, boxes = random_short_side_jitter(clip, boxes, self.jitter_min, self.jitter_max, generator)
        clip, boxes, keep = random_crop(clip, boxes, self.crop_size, generator)
        boxes = boxes[keep]
        if self.flip:
            clip, boxes = random_horizontal_flip(clip, boxes, 0.5, generator)
        x = color_jitter(to_float(clip), self.color_jitter, generator)
        x = normalize(x, self.mean, self.std)
        return TransformOutput(self.input_spec.pack(x), boxes, keep)


@dataclass
class TestTransform:
    """PySlowFast's AVA test transform: short side to ``short_side`` px on the full frame, no crop.

    Args (fields): input_spec (the backbone's pathway packing), short_side (px), mean/std (RGB).
    """

    __test__ = False  # not a pytest test class

    input_spec: "InputSpec"
    short_side: int = 256
    mean: Sequence[float] = (0.45, 0.45, 0.45)
    std: Sequence[float] = (0.225, 0.225, 0.225)

    def __call__(self, clip: Clip, boxes: Boxes, generator: Optional[torch.Generator] = None) -> TransformOutput:
        """``uint8 [T,H,W,3]`` + ``[N,4]`` pixel boxes of it -> :class:`TransformOutput` (all kept)."""
        boxes = clip_boxes(boxes.float(), clip.shape[1], clip.shape[2])
        clip, boxes = resize_short_side(clip, boxes, self.short_side)
        boxes = clip_boxes(boxes, clip.shape[1], clip.shape[2])
        x = normalize(to_float(clip), self.mean, self.std)
        keep = torch.ones(boxes.shape[0], dtype=torch.bool)
        return TransformOutput(self.input_spec.pack(x), boxes, keep)
