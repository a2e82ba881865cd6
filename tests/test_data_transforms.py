"""Transforms keep boxes on the pixels they cover; normalisation; pathway packing by the input spec."""

import pytest
import torch

from ava_detect.data import transforms as T
from ava_detect.model.base import InputSpec


def clip_with_boxes(h=120, w=160, t=4, seed=0):
    """A dark clip with bright filled rectangles and their inclusive pixel boxes."""
    g = torch.Generator().manual_seed(seed)
    clip = torch.zeros((t, h, w, 3), dtype=torch.uint8)
    boxes = []
    for _ in range(3):
        x1 = int(torch.randint(0, w - 30, (), generator=g))
        y1 = int(torch.randint(0, h - 30, (), generator=g))
        x2 = x1 + int(torch.randint(10, 30, (), generator=g))
        y2 = y1 + int(torch.randint(10, 30, (), generator=g))
        boxes.append([x1, y1, x2, y2])
    return clip, torch.tensor(boxes, dtype=torch.float32)


def draw(clip, box, value=255):
    x1, y1, x2, y2 = [int(v) for v in box]
    clip[:, y1:y2 + 1, x1:x2 + 1] = value  # inclusive pixel convention
    return clip


def bright_extent(img):
    """Inclusive (x1, y1, x2, y2) of pixels brighter than half, or None."""
    mask = img.float().mean(-1) > 127
    if not mask.any():
        return None
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return [xs.min().item(), ys.min().item(), xs.max().item(), ys.max().item()]


def assert_box_covers_drawn_pixels(img, box, tol=1.0):
    ext = bright_extent(img)
    assert ext is not None
    x1, y1, x2, y2 = box.tolist()
    assert x1 - tol <= ext[0] and y1 - tol <= ext[1] and ext[2] <= x2 + tol and ext[3] <= y2 + tol, (ext, box)
    # and the box is not much larger than the drawn pixels: it stays on them
    assert abs(x1 - ext[0]) <= tol + 1 and abs(y1 - ext[1]) <= tol + 1
    assert abs(x2 - ext[2]) <= tol + 1 and abs(y2 - ext[3]) <= tol + 1


def one_box_clip(seed):
    clip, boxes = clip_with_boxes(seed=seed)
    return draw(clip, boxes[0]), boxes[:1]


@pytest.mark.parametrize("seed", range(6))
def test_flip_resize_crop_keep_boxes_on_their_pixels(seed):
    clip, box = one_box_clip(seed)
    flipped, fbox = T.horizontal_flip(clip, box)
    assert_box_covers_drawn_pixels(flipped[0], fbox[0], tol=0.0)  # exact in the inclusive convention
    for size in (96, 256, 311):
        big, bbox = T.resize_short_side(clip, box, size)
        assert min(big.shape[1:3]) == size
        assert_box_covers_drawn_pixels(big[0], bbox[0], tol=1.0 * size / 120 + 0.5)
    cropped, cbox, keep = T.crop(clip, box, 10, 20, 100, 100)
    if keep[0]:
        if bright_extent(cropped[0]) is not None:
            ext = bright_extent(cropped[0])
            x1, y1, x2, y2 = cbox[0].tolist()
            assert x1 <= ext[0] and y1 <= ext[1] and ext[2] <= x2 and ext[3] <= y2


@pytest.mark.parametrize("seed", range(8))
def test_train_transform_property(seed):
    """Draw each box into its own clip, run the whole train transform (same random draws), and
    check the drawn pixels stay inside the transformed box, or the box is dropped with them."""
    clip, boxes = clip_with_boxes(seed=seed)
    tf = T.TrainTransform(jitter_min=128, jitter_max=160, crop_size=112, input_spec=InputSpec((1,)), mean=(0, 0, 0), std=(1, 1, 1))
    for k in range(len(boxes)):
        one = draw(clip.clone(), boxes[k])
        g = torch.Generator().manual_seed(100 + seed)
        out = tf(one, boxes, generator=g)
        assert out.keep.shape == (3,)
        x = out.inputs[0]  # [3,T,H,W] in [0,1]
        img = (x[:, 0].permute(1, 2, 0) * 255).round().to(torch.uint8)
        assert img.shape[:2] == (112, 112)
        ext = bright_extent(img)
        if not out.keep[k]:
            assert ext is None or (ext[2] - ext[0] <= 1 or ext[3] - ext[1] <= 1)  # nothing (or a sliver) left
            continue
        row = int(out.keep[:k].sum())
        if ext is None:
            continue
        x1, y1, x2, y2 = out.boxes[row].tolist()
        tol = 1.5
        assert x1 - tol <= ext[0] and y1 - tol <= ext[1] and ext[2] <= x2 + tol and ext[3] <= y2 + tol


def test_crop_drops_boxes_without_area_and_shifts_others():
    clip = torch.zeros((2, 100, 100, 3), dtype=torch.uint8)
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 70.0, 90.0], [95.0, 0.0, 99.0, 99.0]])
    _, out, keep = T.crop(clip, boxes, 20, 30, 50, 50)
    assert keep.tolist() == [False, True, False]
    assert out[1].tolist() == [20.0, 30.0, 40.0, 49.0]  # shifted by (30, 20), clipped to 49


def test_flip_formula_and_involution():
    clip = torch.arange(2 * 4 * 6 * 3, dtype=torch.uint8).reshape(2, 4, 6, 3)
    boxes = torch.tensor([[1.0, 0.0, 3.0, 2.0]])
    f, b = T.horizontal_flip(clip, boxes)
    assert b.tolist() == [[6 - 3 - 1, 0.0, 6 - 1 - 1, 2.0]]
    ff, bb = T.horizontal_flip(f, b)
    assert torch.equal(ff, clip) and torch.equal(bb, boxes)


def test_test_transform_resizes_short_side_and_normalises():
    clip = torch.full((8, 120, 160, 3), 255, dtype=torch.uint8)
    boxes = torch.tensor([[16.0, 12.0, 80.0, 60.0]])
    out = T.TestTransform(InputSpec((4, 1)), short_side=256)(clip, boxes)
    slow, fast = out.inputs
    assert fast.shape == (3, 8, 256, 341) and slow.shape == (3, 2, 256, 341)  # floor(160/120*256) = 341
    assert torch.allclose(fast, torch.full_like(fast, (1 - 0.45) / 0.225), atol=1e-5)
    assert torch.allclose(out.boxes, boxes * torch.tensor([341 / 160, 256 / 120, 341 / 160, 256 / 120]), atol=1e-4)


def test_jitter_range_and_colour_jitter_bounds():
    clip = torch.randint(0, 256, (4, 120, 160, 3), dtype=torch.uint8)
    boxes = torch.zeros((0, 4))
    g = torch.Generator().manual_seed(0)
    sizes = {min(T.random_short_side_jitter(clip, boxes, 256, 320, g)[0].shape[1:3]) for _ in range(40)}
    assert min(sizes) >= 256 and max(sizes) <= 320 and len(sizes) > 10
    x = T.to_float(clip)
    y = T.color_jitter(x.clone(), 0.4, g)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1 and not torch.equal(x, y)
    assert torch.equal(T.color_jitter(x, 0.0), x)
