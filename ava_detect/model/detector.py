"""The action detector: a backbone (any :class:`~ava_detect.model.base.Backbone`) and a RoI action head."""

from __future__ import annotations

import contextlib
from typing import List

import torch
from torch import Tensor, nn

from ava_detect.errors import AvaDetectError
from ava_detect.model.base import Backbone, InputSpec
from ava_detect.model.head import RoIActionHead
from ava_detect.model.optimize import optimize_for_inference


class ActionDetector(nn.Module):
    """Scores every box for every action class.

    ``forward(inputs, rois)``:
        inputs: one tensor per pathway, ``[B, 3, T_p, H, W]``, normalised, as the backbone's
            ``input_spec.pack`` makes them (SlowFast: ``[slow [B,3,T/alpha,H,W], fast [B,3,T,H,W]]``;
            Slow-only: ``[x]``). ``H`` and ``W`` divisible by the backbone's ``output_stride``.
        rois: ``Tensor[K,5]`` ``(batch_index, x1, y1, x2, y2)`` in input pixels; ``K`` may be 0.
    Returns:
        ``Tensor[K, num_classes]``: logits in train mode, probabilities (sigmoid) in eval mode.
    """

    def __init__(self, backbone: Backbone, head: RoIActionHead):
        super().__init__()
        self.backbone = backbone
        self.head = head
        #: True once batch norm has been folded into the convolutions (inference only).
        self.fused = False
        #: Convert inputs to the channels-last 3D memory format (set by :meth:`optimized_for_inference`).
        self.channels_last = False

    @property
    def num_classes(self) -> int:
        return self.head.proj.out_features

    @property
    def num_pathways(self) -> int:
        return self.backbone.num_pathways

    @property
    def input_spec(self) -> InputSpec:
        """How a clip is packed into this detector's inputs (the backbone's declaration)."""
        return self.backbone.input_spec

    def _check_inputs(self, inputs: List[Tensor], rois: Tensor) -> None:
        if isinstance(inputs, Tensor):
            raise TypeError("inputs must be a list of pathway tensors [B,3,T,H,W] (slow first), not one tensor")
        if len(inputs) != self.num_pathways:
            raise ValueError(f"expected {self.num_pathways} pathway tensor(s), got {len(inputs)}")
        batch = inputs[0].shape[0]
        for x in inputs:
            if x.dim() != 5 or x.shape[0] != batch or x.shape[-2:] != inputs[0].shape[-2:]:
                raise ValueError("pathway tensors must be [B,3,T,H,W] with the same B, H, W; got "
                                 + ", ".join(str(tuple(t.shape)) for t in inputs))
        if rois.dim() != 2 or rois.shape[1] != 5:
            raise ValueError(f"rois must be [K,5] (batch_index, x1, y1, x2, y2), got {tuple(rois.shape)}")

    def forward(self, inputs: List[Tensor], rois: Tensor) -> Tensor:
        self._check_inputs(inputs, rois)
        if self.fused and self.training:
            raise RuntimeError("this detector has batch norm folded into its convolutions; it is for inference only")
        if self.channels_last:
            inputs = [x.contiguous(memory_format=torch.channels_last_3d) for x in inputs]
        logits = self.head(self.backbone(inputs), rois)
        return logits if self.training else torch.sigmoid(logits)

    def predict(self, inputs: List[Tensor], rois: Tensor, *, bf16: bool = False) -> Tensor:
        """Probabilities ``[K, num_classes]`` in float32, without autograd, whatever the current mode.

        Args:
            bf16: run under ``torch.autocast(dtype=torch.bfloat16)`` on the inputs' device (fast on CPUs
                with bf16 matrix units and on GPUs; probabilities differ from fp32 by about 1e-2).
        """
        was_training = self.training
        self.eval()
        device_type = inputs[0].device.type
        autocast = (torch.autocast(device_type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext())
        try:
            with torch.inference_mode(), autocast:
                probs = self(inputs, rois)
        finally:
            self.train(was_training)
        return require_finite_scores(probs.float())

    def optimized_for_inference(self, *, channels_last: bool = True, frame_convs: bool = True) -> "ActionDetector":
        """A copy for fast inference: eval mode, batch norm folded into convolutions, and (optionally)
        channels-last 3D memory format with the frame-wise convolutions as 2D ones (``frame_convs``).
        Outputs match this model's within ~1e-5. See :func:`ava_detect.model.optimize.optimize_for_inference`."""
        return optimize_for_inference(self, channels_last=channels_last, frame_convs=frame_convs)


def require_finite_scores(probs: Tensor) -> Tensor:
    """``probs`` (``[K, C]``), unchanged, after checking that every score is a number: scores that are
    NaN or infinite come from broken weights (a training run that diverged) and must never be
    written as results.

    Raises:
        AvaDetectError: how many of the ``K`` boxes have non-finite scores.
    """
    finite = torch.isfinite(probs)
    if not bool(finite.all()):
        bad = int((~finite).reshape(probs.shape[0], -1).any(dim=1).sum()) if probs.ndim else 1
        raise AvaDetectError(f"the action model gave non-finite scores (NaN or infinite) for {bad} of "
                             f"{probs.shape[0] if probs.ndim else 1} boxes; its weights are broken (a diverged "
                             f"training run?); nothing was written")
    return probs
