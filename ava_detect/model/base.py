"""The backbone contract: what a video backbone declares, what it returns, and how its inputs are packed.

The RoI head, the detector and the data transforms depend only on this contract, never on a
particular architecture, so a new backbone (X3D, MViT, ...) is one module that subclasses
:class:`Backbone`, a config section, and one row of :data:`ava_detect.model.architectures.ARCHITECTURES`.

A backbone **declares** (set by :meth:`Backbone.__init__`):

* ``input_spec``: an :class:`InputSpec`, how one normalised clip ``Tensor[C,T,H,W]`` becomes the
  list of per-pathway inputs (``input_spec.pack(clip)``); the data transforms use it, built from the
  config by :func:`ava_detect.model.architectures.input_spec_from_config` before any model exists;
* ``num_pathways``: ``input_spec.num_pathways`` (SlowFast: 2, slow first; Slow-only: 1);
* ``out_channels``: channels ``C_p`` of each pathway's output map, in pathway order (their sum is the
  width of the RoI head's box features);
* ``output_stride``: input pixels per output pixel (``H / h``); the RoI head pools with spatial scale
  ``1 / output_stride``.

A backbone **returns** ``forward(inputs)`` with
``inputs: List[Tensor[B, C, T_p, H, W]]`` (``len == num_pathways``, pathway order of ``pack``) ->
``List[Tensor[B, out_channels[p], T'_p, H / output_stride, W / output_stride]]``: one feature map
per pathway; the temporal size ``T'_p`` is the backbone's business (the head averages over it).
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import torch
from torch import Tensor, nn


def slow_indices(num_frames: int, alpha: int) -> Tensor:
    """Positions (into the clip's frames) of a pathway that sees one frame in ``alpha`` (SlowFast's slow
    pathway): ``linspace(0, num_frames - 1, num_frames // alpha).long()`` -> ``LongTensor[num_frames // alpha]``
    (32 frames, alpha 4: ``[0, 4, 8, 13, 17, 22, 26, 31]``, as PySlowFast)."""
    if alpha < 1 or num_frames // alpha < 1:
        raise ValueError(f"need num_frames >= alpha >= 1, got num_frames={num_frames}, alpha={alpha}")
    return torch.linspace(0, num_frames - 1, num_frames // alpha).long()


@dataclass(frozen=True)
class InputSpec:
    """How one clip is packed into a backbone's per-pathway inputs.

    Attributes:
        temporal_ratios: one value per pathway, in the backbone's pathway order: pathway ``p`` sees
            ``T // temporal_ratios[p]`` of the clip's ``T`` frames, at :func:`slow_indices`; ratio 1 is
            the clip itself. SlowFast: ``(alpha, 1)`` (slow, fast); a one-pathway backbone: ``(1,)``.
    """

    temporal_ratios: Tuple[int, ...] = (1,)

    def __post_init__(self) -> None:
        ratios = tuple(int(r) for r in self.temporal_ratios)
        if not ratios or min(ratios) < 1:
            raise ValueError(f"temporal_ratios must be one positive integer per pathway, got {self.temporal_ratios!r}")
        object.__setattr__(self, "temporal_ratios", ratios)

    @property
    def num_pathways(self) -> int:
        return len(self.temporal_ratios)

    def pack(self, clip: Tensor) -> List[Tensor]:
        """``float [C,T,H,W]`` -> the backbone's inputs ``[[C, T // temporal_ratios[p], H, W] per pathway]``.

        A pathway with ratio 1 gets ``clip`` itself (not a copy).
        """
        return [clip if r == 1 else clip.index_select(1, slow_indices(clip.shape[1], r))
                for r in self.temporal_ratios]


class Backbone(nn.Module, metaclass=ABCMeta):
    """Base class of video backbones; see the module docstring for the contract.

    Args:
        input_spec: how a clip is packed into this backbone's inputs.
        out_channels: channels of each pathway's output map (one per pathway of ``input_spec``).
        output_stride: input pixels per output pixel.

    Subclasses implement :meth:`forward` (the class cannot be instantiated without it).
    """

    def __init__(self, *, input_spec: InputSpec, out_channels: Sequence[int], output_stride: int):
        super().__init__()
        if len(out_channels) != input_spec.num_pathways:
            raise ValueError(f"out_channels has {len(out_channels)} value(s) but the input spec has "
                             f"{input_spec.num_pathways} pathway(s)")
        if output_stride < 1 or min(out_channels) < 1:
            raise ValueError(f"expected positive out_channels and output_stride, got {list(out_channels)}, {output_stride}")
        self.input_spec = input_spec
        self.out_channels: List[int] = [int(c) for c in out_channels]
        self.output_stride = int(output_stride)

    @property
    def num_pathways(self) -> int:
        return self.input_spec.num_pathways

    @abstractmethod
    def forward(self, inputs: List[Tensor]) -> List[Tensor]:
        """``[Tensor[B, C, T_p, H, W]] * num_pathways`` -> ``[Tensor[B, out_channels[p], T'_p, H/s, W/s]]``
        (``s = output_stride``)."""
