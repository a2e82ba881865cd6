"""Which frames make a clip: keyframe second -> the clip's frame indices.

PySlowFast's AVA sampling (``ava_helper`` / ``utils.get_sequence``): the centre frame of
second ``s`` is ``c = (s - 900) * fps`` (in general, the dataset's time axis says:
:meth:`~ava_detect.data.time_axis.TimeAxis.frame_index`); the fast pathway takes ``num_frames`` frames
``range(c - half, c + half, sampling_rate)`` with ``half = num_frames * sampling_rate // 2``,
each clamped to ``[0, num_video_frames - 1]``. How the clip is then split into pathways (SlowFast's
slow pathway takes ``linspace(0, T - 1, T // alpha).long()`` of those frames, PySlowFast's
``PackPathway``) is the backbone's declaration: :class:`ava_detect.model.base.InputSpec`.
"""

from __future__ import annotations

from typing import Optional

import torch

from ava_detect.data.time_axis import AVA, TimeAxis


def keyframe_center(second: int, *, time_axis: TimeAxis = AVA) -> int:
    """0-based index of the centre frame of keyframe ``second`` on ``time_axis``
    (AVA: ``(second - 900) * 30``)."""
    return time_axis.frame_index(second)


def clip_frame_indices(
    center: int, *, num_frames: int, sampling_rate: int, num_video_frames: Optional[int] = None
) -> torch.Tensor:
    """Frame indices of one clip, as PySlowFast samples them.

    Args:
        center: centre frame index (0-based), see :func:`keyframe_center`.
        num_frames: frames in the clip (the fast pathway's T).
        sampling_rate: stride between frames, in frames of the video.
        num_video_frames: frames in the video; indices are clamped to ``[0, num_video_frames - 1]``.
            None: only clamped below at 0.

    Returns:
        ``LongTensor[num_frames]``, non-decreasing.
    """
    if num_frames < 1 or sampling_rate < 1:
        raise ValueError(f"num_frames and sampling_rate must be >= 1, got {num_frames}, {sampling_rate}")
    half = num_frames * sampling_rate // 2
    idx = torch.arange(center - half, center + half, sampling_rate, dtype=torch.long)[:num_frames]
    upper = None if num_video_frames is None else max(int(num_video_frames) - 1, 0)
    return idx.clamp(min=0, max=upper)

