"""RoI action head: per-box features from the res5 maps, then one linear layer to action logits."""

from __future__ import annotations

from typing import List

import torch
from torch import Tensor, nn
from torchvision.ops import roi_align


class RoIActionHead(nn.Module):
    """Temporal average -> RoIAlign -> spatial max -> dropout -> linear, as in PySlowFast / PyTorchVideo.

    Per pathway, the res5 map is averaged over all its frames; the pathways are concatenated along
    channels (slow first); each box is RoIAligned to ``resolution x resolution`` and max-pooled to one
    vector; dropout (training only) and a linear layer give one logit per class.

    Args:
        in_channels: channels of the concatenated res5 maps (2048 + 256 = 2304 for SlowFast R50).
        num_classes: action classes (AVA: 80).
        spatial_scale: feature-map pixels per input pixel (1/16 for output stride 16).
        resolution: RoIAlign output size (7).
        sampling_ratio: RoIAlign samples per bin (0 = adaptive, the reference setting).
        aligned: torchvision's ``aligned`` flag. True shifts box coordinates by -0.5 after scaling
            (pixel centres; PySlowFast's R50 recipe); False is the legacy behaviour used by
            PyTorchVideo's ``slowfast_r50_detection`` and PySlowFast's Caffe2-era models.
            Weights trained with one setting give different scores with the other.
        dropout: dropout rate before the linear layer.
    """

    def __init__(self, in_channels: int, num_classes: int, *, spatial_scale: float = 1.0 / 16,
                 resolution: int = 7, sampling_ratio: int = 0, aligned: bool = True, dropout: float = 0.5):
        super().__init__()
        self.spatial_scale = float(spatial_scale)
        self.resolution = int(resolution)
        self.sampling_ratio = int(sampling_ratio)
        self.aligned = bool(aligned)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.proj = nn.Linear(in_channels, num_classes)
        nn.init.normal_(self.proj.weight, std=0.01)
        nn.init.zeros_(self.proj.bias)

    def box_features(self, features: List[Tensor], rois: Tensor) -> Tensor:
        """``features``: per pathway ``[B, C_p, T_p, h, w]``; ``rois``: ``[K,5]`` (batch_index, x1, y1, x2, y2)
        in input pixels -> ``[K, sum(C_p)]`` (slow channels first)."""
        pooled = torch.cat([f.mean(dim=2) for f in features], dim=1)  # [B, C, h, w]
        rois = rois.to(dtype=pooled.dtype)
        boxes = roi_align(pooled, rois, output_size=self.resolution, spatial_scale=self.spatial_scale,
                          sampling_ratio=self.sampling_ratio, aligned=self.aligned)  # [K, C, r, r]
        return boxes.amax(dim=(2, 3))

    def forward(self, features: List[Tensor], rois: Tensor) -> Tensor:
        """-> logits ``[K, num_classes]`` (``[0, num_classes]`` when there are no boxes)."""
        return self.proj(self.dropout(self.box_features(features, rois)))
