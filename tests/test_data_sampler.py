"""Clip frame indices, as PySlowFast samples them (the slow subset: tests/test_model_base.py)."""

import torch

from ava_detect.data.sampler import clip_frame_indices, keyframe_center


def test_keyframe_center_is_30_frames_per_second_from_900():
    assert keyframe_center(900) == 0
    assert keyframe_center(902) == 60
    assert keyframe_center(1798) == 898 * 30


def test_32x2_indices_match_pyslowfast_get_sequence():
    c = keyframe_center(910)
    got = clip_frame_indices(c, num_frames=32, sampling_rate=2, num_video_frames=27030)
    assert got.tolist() == list(range(c - 32, c + 32, 2))
    assert got.dtype == torch.long and got.shape == (32,)


def test_indices_are_clamped_at_both_ends():
    start = clip_frame_indices(10, num_frames=8, sampling_rate=4, num_video_frames=100)
    assert start.tolist() == [0, 0, 2, 6, 10, 14, 18, 22]  # range(-6, 26, 4) clamped below
    end = clip_frame_indices(95, num_frames=8, sampling_rate=4, num_video_frames=100)
    assert end.tolist() == [79, 83, 87, 91, 95, 99, 99, 99]  # range(79, 111, 4) clamped above
