"""Keyframe tables, labelling of predicted boxes, the dataset on a synthetic set, and collate."""

import logging
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from ava_detect.config import load_config
from ava_detect.data.dataset import (
    AvaDataset, build_dataset, collate, inference_keyframes, match_to_ground_truth, training_keyframes)
from ava_detect.data.transforms import TestTransform
from ava_detect.model.base import InputSpec
from ava_detect.data.video import VideoFolder
from ava_detect.errors import AvaDetectError


def gt_rows(rows):
    return pd.DataFrame(rows, columns=["video_id", "second", "x1", "y1", "x2", "y2", "action_id", "person_id"])


def box_rows(rows):
    return pd.DataFrame(rows, columns=["video_id", "second", "x1", "y1", "x2", "y2", "score"])


GT = gt_rows([
    ["a", 902, 0.1, 0.1, 0.5, 0.9, 12, 0],
    ["a", 902, 0.1, 0.1, 0.5, 0.9, 14, 0],   # same box: two labels
    ["a", 902, 0.6, 0.2, 0.9, 0.8, 11, 1],
    ["a", 903, 0.1, 0.1, 0.5, 0.9, 12, 0],
    ["b", 950, 0.2, 0.2, 0.4, 0.4, 80, 0],
    ["b", 1799, 0.2, 0.2, 0.4, 0.4, 80, 0],  # outside 902..1798: skipped
])
PRED = box_rows([
    ["a", 902, 0.1, 0.1, 0.5, 0.88, 0.95],   # IoU 0.975 with the first box -> labels 12, 14
    ["a", 902, 0.6, 0.2, 0.9, 0.6, 0.90],    # IoU 0.667 -> negative
    ["a", 902, 0.0, 0.0, 0.2, 0.2, 0.50],    # below the threshold
    ["a", 904, 0.1, 0.1, 0.5, 0.9, 0.99],    # key without ground truth: not a training key
    ["b", 950, 0.2, 0.2, 0.4, 0.4, 0.85],
])
CLASSES = list(range(1, 81))


def test_match_to_ground_truth_takes_the_best_box_of_the_same_key():
    from ava_detect.data.ava_files import group_boxes

    gt = group_boxes(GT)
    best, iou = match_to_ground_truth(PRED, gt)
    assert best.tolist() == [0, 1, 0, -1, 3]  # the third overlaps box 0 a little; the fourth has no GT key
    assert iou[0] == pytest.approx(0.78 / 0.8, abs=1e-9) and iou[1] == pytest.approx(0.12 / 0.18, abs=1e-9)


def test_training_keyframes_with_predicted_boxes():
    kf = training_keyframes(ground_truth=GT, class_ids=CLASSES, predicted_boxes=PRED, box_threshold=0.8,
                            iou_threshold=0.9, excluded={"a,0903"})
    assert kf.keys() == ["a,0902", "b,0950"]
    a = slice(kf.offsets[0], kf.offsets[1])
    labels = kf.labels[a]
    cols = lambda row: [CLASSES[j] for j in np.flatnonzero(row)]
    assert [cols(r) for r in labels] == [[12, 14], [11], [12, 14], []]  # 2 GT boxes, then 2 predicted
    assert kf.scores[a].tolist() == pytest.approx([1.0, 1.0, 0.95, 0.90])
    gt_only = training_keyframes(ground_truth=GT, class_ids=CLASSES)
    assert gt_only.keys() == ["a,0902", "a,0903", "b,0950"] and gt_only.num_boxes == 4


def test_inference_keyframes_threshold_exclusions_and_labels():
    kf = inference_keyframes(predicted_boxes=PRED, class_ids=CLASSES, box_threshold=0.8, excluded={"b,0950"},
                             ground_truth=GT)
    assert kf.keys() == ["a,0902", "a,0904"]
    assert kf.offsets.tolist() == [0, 2, 3]
    assert kf.labels[0, [11, 13]].tolist() == [1, 1] and kf.labels[1:].sum() == 0
    assert inference_keyframes(predicted_boxes=PRED, class_ids=CLASSES).labels.sum() == 0


def test_collate_pads_clips_of_different_sizes():
    def item(h, w, n, vid):
        return {"inputs": [torch.ones(3, 2, h, w), torch.ones(3, 8, h, w)], "boxes": torch.ones(n, 4) * 5,
                "labels": torch.zeros(n, 80), "video_id": vid, "second": 905, "orig_boxes": torch.rand(n, 4),
                "scores": torch.ones(n), "image_size": (h, w)}

    b = collate([item(256, 341, 2, "x"), item(256, 455, 1, "y"), item(256, 256, 0, "z")])
    assert [t.shape for t in b["inputs"]] == [(3, 3, 2, 256, 455), (3, 3, 8, 256, 455)]
    assert b["inputs"][1][0, :, :, :, 341:].abs().sum() == 0 and b["inputs"][1][0, :, :, :, :341].min() == 1
    assert b["rois"][:, 0].tolist() == [0, 0, 1] and b["labels"].shape == (3, 80)
    assert b["video_ids"] == ["x", "x", "y"] and b["seconds"].tolist() == [905] * 3
    assert b["image_sizes"].tolist() == [[256, 341], [256, 455], [256, 256]] and b["keys"][2] == "z,0905"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    out = tmp_path_factory.mktemp("syn") / "set"
    if shutil.which("ava-detect") is None:
        pytest.skip("ava-detect is not installed")
    r = subprocess.run([sys.executable, "-m", "ava_detect", "prep", "synthetic", "--out", str(out), "--videos", "2",
                        "--seconds", "6", "--size", "160x120", "--val-fraction", "0.5", "--no-progress"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out


def config(root, *extra):
    return load_config(None, [f"data.root={root}", "data.labelmap=annotations/labelmap.pbtxt", "model.num_classes=7",
                              "model.num_frames=8", "model.sampling_rate=2", *extra])


def test_dataset_on_the_synthetic_set_from_video_and_frames(synthetic):
    from ava_detect.prep.frames import extract_frames

    for v in sorted((synthetic / "videos").glob("*.mp4")):
        extract_frames(v, synthetic / "frames")
    video = build_dataset(config(synthetic), "val")
    frames = build_dataset(config(synthetic, "data.source=frames"), "val")
    assert len(video) == len(frames) > 0
    bv, bf = collate([video[0], video[1]]), collate([frames[0], frames[1]])
    assert [t.shape for t in bv["inputs"]] == [(2, 3, 2, 256, 341), (2, 3, 8, 256, 341)]
    assert torch.equal(bv["rois"], bf["rois"]) and torch.equal(bv["labels"], bf["labels"])
    # same frames, up to JPEG error (in normalised units: 1 grey level = 0.0174)
    assert (bv["inputs"][1] - bf["inputs"][1]).abs().mean() < 2 * 0.0174
    assert bv["scores"].min() >= 0.8 and bv["labels"].shape[1] == 7
    torch.manual_seed(0)
    train = build_dataset(config(synthetic, "data.train_use_predicted_boxes=true"), "train")
    b = collate([train[i] for i in range(len(train))])
    assert b["inputs"][1].shape[-2:] == (224, 224) and b["rois"].shape[1] == 5
    assert (b["rois"][:, 1:] >= 0).all() and (b["rois"][:, 1:] <= 223).all()
    assert (b["scores"] < 1).any() and (b["scores"] == 1).any()  # predicted and ground-truth boxes


def test_missing_videos_error_or_skip_and_keys_past_the_end(synthetic, tmp_path, caplog):
    kf = training_keyframes(ground_truth=gt_rows([
        ["nope1", 902, 0.1, 0.1, 0.5, 0.9, 12, 0], ["nope2", 903, 0.1, 0.1, 0.5, 0.9, 12, 0]]), class_ids=CLASSES)
    src = VideoFolder(synthetic / "videos")
    with pytest.raises(AvaDetectError, match=r"2 of 2 annotated videos are missing.*nope1, nope2.*skip_missing_videos"):
        AvaDataset(keyframes=kf, source=src, transform=TestTransform(InputSpec((4, 1))), num_frames=8, sampling_rate=2)
    ds = AvaDataset(keyframes=kf, source=src, transform=TestTransform(InputSpec((4, 1))), num_frames=8, sampling_rate=2,
                    skip_missing_videos=True)
    assert len(ds) == 0
    vid = sorted(p.stem for p in (synthetic / "videos").glob("*.mp4"))[0]
    late = training_keyframes(ground_truth=gt_rows([[vid, 904, 0.1, 0.1, 0.5, 0.9, 12, 0],
                                                    [vid, 920, 0.1, 0.1, 0.5, 0.9, 12, 0]]), class_ids=CLASSES)
    with caplog.at_level(logging.WARNING, logger="ava_detect"):
        ds = AvaDataset(keyframes=late, source=src, transform=TestTransform(InputSpec((1,))), num_frames=8, sampling_rate=2)
    assert "1 keyframes of 1 videos lie beyond the end" in caplog.text
    assert ds.frame_indices(1).tolist() == [179] * 8  # 6 s video: clamped to its last frame
    assert ds[1]["inputs"][0].shape[1] == 8
