"""Box convention, image keys, and atomic output."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from ava_detect.io import atomic_open, atomic_path
from ava_detect.structures import (
    box_iou,
    boxes_to_rois,
    image_key,
    normalized_to_pixels,
    parse_image_key,
    pixels_to_normalized,
)


def test_image_key_roundtrip():
    assert image_key("-5KQ66BBWC4", 902) == "-5KQ66BBWC4,0902"
    assert image_key("a,b", 1798) == "a,b,1798"
    assert parse_image_key("a,b,1798") == ("a,b", 1798)
    with pytest.raises(ValueError):
        parse_image_key("novideo")


def test_normalized_pixels_roundtrip():
    boxes = np.array([[0.1, 0.2, 0.5, 1.0]])
    px = normalized_to_pixels(boxes, 320, 240)
    assert np.allclose(px, [[32, 48, 160, 240]])
    assert np.allclose(pixels_to_normalized(px, 320, 240), boxes)
    t = normalized_to_pixels(torch.tensor(boxes, dtype=torch.float32), 320, 240)
    assert torch.allclose(t, torch.tensor([[32.0, 48.0, 160.0, 240.0]]))
    assert torch.allclose(pixels_to_normalized(torch.tensor([[-5.0, 0, 400, 240]]), 320, 240),
                          torch.tensor([[0.0, 0.0, 1.0, 1.0]]))


def test_box_iou_without_plus_one():
    a = np.array([[0, 0, 2, 2]], float)
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]], float)
    assert np.allclose(box_iou(a, b), [[1 / 7, 1.0, 0.0]])
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 3)


def test_boxes_to_rois():
    rois = boxes_to_rois([torch.tensor([[1.0, 2, 3, 4]]), torch.zeros((0, 4)), torch.tensor([[5.0, 6, 7, 8], [0, 0, 1, 1]])])
    assert rois.tolist() == [[0, 1, 2, 3, 4], [2, 5, 6, 7, 8], [2, 0, 0, 1, 1]]
    assert boxes_to_rois([]).shape == (0, 5)


def test_atomic_open_keeps_old_file_on_error(tmp_path):
    out = tmp_path / "r.txt"
    out.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(out) as f:
            f.write("half")
            raise RuntimeError("boom")
    assert out.read_text() == "old"
    assert os.listdir(tmp_path) == ["r.txt"]
    with atomic_open(out) as f:
        f.write("new")
    assert out.read_text() == "new"


def test_atomic_path_keeps_suffix(tmp_path):
    with atomic_path(tmp_path / "sub" / "video.mp4") as tmp:
        assert tmp.suffix == ".mp4" and tmp.parent == tmp_path / "sub"
        tmp.write_bytes(b"x")
    assert (tmp_path / "sub" / "video.mp4").read_bytes() == b"x"


def test_atomic_output_has_normal_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        with atomic_open(tmp_path / "a.txt") as f:
            f.write("x")
    finally:
        os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
