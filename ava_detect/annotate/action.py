"""Action scores of the people in keyframe clips: the test-time transform, then the action model in batches.

The clip and boxes go through the same transform object the AVA test dataset uses
(:class:`~ava_detect.data.transforms.TestTransform`: short side resize, normalisation, pathway
packing), so ``annotate`` and ``test`` give the action model identical inputs for identical frames
and boxes.
"""

from __future__ import annotations

import logging
from typing import Callable, List, Sequence, Union

import numpy as np
import torch

from ava_detect.structures import boxes_to_rois

logger = logging.getLogger(__name__)


class ActionPredictor:
    """Scores boxes in clips.

    Args:
        model: an :class:`~ava_detect.model.ActionDetector` (eval mode; possibly
            ``optimized_for_inference``), already on ``device``.
        transform: ``(clip uint8 [T,H,W,3], boxes [N,4] pixels) -> TransformOutput``, the test transform.
        device: where the model runs.
        bf16: bf16 autocast.
    """

    def __init__(self, *, model: torch.nn.Module, transform: Callable, device: Union[str, torch.device] = "cpu",
                 bf16: bool = False):
        self.model = model
        self.transform = transform
        self.device = torch.device(device)
        self.bf16 = bool(bf16)

    @property
    def num_classes(self) -> int:
        return int(self.model.num_classes)

    def describe(self) -> str:
        """One line for logs: number format and inference layout, e.g. ``fp32, batch norm folded``."""
        parts = ["bf16 autocast" if self.bf16 else "fp32"]
        runtime = getattr(self.model, "runtime", None)
        if runtime:
            parts.insert(0, f"{runtime} ({self.model.path})")
        if getattr(self.model, "fused", False):
            parts.append("batch norm folded")
        if getattr(self.model, "channels_last", False):
            parts.append("channels-last")
        return f"{', '.join(parts)} on {self.device}"

    def predict(self, clips: Sequence[Sequence[np.ndarray]], boxes: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        """Action probabilities of each clip's boxes.

        Args:
            clips: per clip, its ``T`` frames as ``uint8 [H,W,3]`` RGB arrays (all clips one size).
            boxes: per clip, ``float Tensor[N_i,4]`` pixel ``(x1, y1, x2, y2)`` of the input frames.

        Returns:
            Per clip, ``float Tensor[N_i, num_classes]`` probabilities in [0, 1] on the CPU (``[0, C]``
            for a clip without boxes, which is not run through the model).
        """
        out: List[torch.Tensor] = [torch.zeros((0, self.num_classes)) for _ in clips]
        todo = [i for i, b in enumerate(boxes) if b.shape[0] > 0]
        if not todo:
            return out
        pathways: List[List[torch.Tensor]] = []
        model_boxes = []
        for i in todo:
            clip = torch.from_numpy(np.stack(clips[i]))
            result = self.transform(clip, boxes[i].float())
            pathways.append(result.inputs)
            model_boxes.append(result.boxes)
        inputs = [torch.stack([p[k] for p in pathways]).to(self.device) for k in range(len(pathways[0]))]
        rois = boxes_to_rois(model_boxes).to(self.device)
        probs = self.model.predict(inputs, rois, bf16=self.bf16).cpu()
        start = 0
        for i, b in zip(todo, model_boxes):
            out[i] = probs[start:start + b.shape[0]]
            start += b.shape[0]
        return out
