"""The AVA keyframe dataset and its collate function.

One item per keyframe (a video and a whole second): the clip around it (see
:mod:`ava_detect.data.sampler`), its person boxes and their multi-hot action labels.

* **Training keyframes** are the keys of the ground truth; their boxes are the ground-truth boxes
  and, optionally, the predicted person boxes with a score at or above a threshold, each labelled
  from the ground-truth box it overlaps most if that IoU is at least 0.9 (it then takes that
  box's labels), otherwise kept as a negative with no labels (PySlowFast's
  ``..._include_negative`` training boxes).
* **Test keyframes** are the keys with at least one predicted box at or above the test threshold
  (0.8); their labels come from the ground truth the same way when it is given, else are empty.
* Excluded keys and seconds that are not keyframes of the dataset's time axis are skipped (AVA:
  outside 902..1798, as in PySlowFast; see :class:`~ava_detect.data.time_axis.TimeAxis`).

Batches (:func:`collate`) are dicts:

* ``inputs: List[Tensor]``: pathways, slow first, each ``float [B,3,T_p,H,W]`` normalised; one
  element for Slow-only models. Clips of different sizes (test clips of videos with different
  aspect ratios) are zero-padded at the bottom and right to the largest ``H`` and ``W`` of the
  batch (after normalisation, so padding is the mean colour); pixel boxes stay valid and
  ``image_sizes`` gives each clip's own size.
* ``rois: Tensor[K,5]``: ``(batch_index, x1, y1, x2, y2)`` in pixels of the input tensors.
* ``labels: Tensor[K,C]``: float multi-hot, column ``j`` = ``class_ids[j]``.
* ``video_ids: List[str]`` (K), ``seconds: LongTensor[K]``, ``boxes: Tensor[K,4]`` (the original
  normalised boxes), ``scores: Tensor[K]`` (predicted box scores; 1.0 for ground-truth boxes).
* ``image_sizes: LongTensor[B,2]`` (``H, W`` of each clip before padding), ``keys: List[str]`` (B).

``K`` may be 0 for a training batch whose crops cut every box away.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ava_detect.data.ava_files import BOX_COLUMNS, group_boxes
from ava_detect.data.sampler import clip_frame_indices, keyframe_center
from ava_detect.data.time_axis import AVA, TimeAxis
from ava_detect.data.video import ClipSource, FrameFolder, VideoFolder
from ava_detect.errors import AvaDetectError
from ava_detect.structures import boxes_to_rois, image_key, normalized_to_pixels

if TYPE_CHECKING:
    from ava_detect.data.transforms import TestTransform

logger = logging.getLogger(__name__)

#: A predicted box takes the labels of the ground-truth box it overlaps most when IoU >= this.
LABEL_IOU_THRESHOLD = 0.9


# --------------------------------------------------------------------------------------
# Boxes per keyframe
# --------------------------------------------------------------------------------------


@dataclass
class KeyframeBoxes:
    """Boxes grouped by keyframe, in flat arrays (cheap to share with DataLoader workers).

    Attributes:
        video_ids: ``object [N]`` video id of each keyframe.
        seconds: ``int64 [N]`` second of each keyframe.
        offsets: ``int64 [N+1]``: the boxes of keyframe ``i`` are rows ``offsets[i]:offsets[i+1]``.
        boxes: ``float32 [M,4]`` normalised ``(x1, y1, x2, y2)``.
        labels: ``uint8 [M,C]`` multi-hot over the class ids given when building.
        scores: ``float32 [M]`` predicted box score, 1.0 for ground-truth boxes.
    """

    video_ids: np.ndarray
    seconds: np.ndarray
    offsets: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.seconds)

    @property
    def num_boxes(self) -> int:
        return int(self.offsets[-1])

    def keys(self) -> List[str]:
        return [image_key(v, s) for v, s in zip(self.video_ids, self.seconds)]

    def select(self, keep: np.ndarray) -> "KeyframeBoxes":
        """The keyframes where ``keep`` (``bool [N]``) is True."""
        keep = np.asarray(keep, dtype=bool)
        counts = np.diff(self.offsets)
        rows = np.repeat(keep, counts)
        new_counts = counts[keep]
        return KeyframeBoxes(
            video_ids=self.video_ids[keep], seconds=self.seconds[keep],
            offsets=np.concatenate([[0], np.cumsum(new_counts)]).astype(np.int64),
            boxes=self.boxes[rows], labels=self.labels[rows], scores=self.scores[rows],
        )


def multi_hot(labels: Iterable[Sequence[int]], class_ids: Sequence[int]) -> np.ndarray:
    """Label tuples (one per box) -> ``uint8 [M, len(class_ids)]``; ids not in ``class_ids`` are ignored."""
    column = {int(c): j for j, c in enumerate(class_ids)}
    labels = list(labels)
    out = np.zeros((len(labels), len(column)), dtype=np.uint8)
    for r, ids in enumerate(labels):
        for c in ids:
            j = column.get(int(c))
            if j is not None:
                out[r, j] = 1
    return out


def match_to_ground_truth(
    predicted: pd.DataFrame, ground_truth: pd.DataFrame
) -> Tuple[np.ndarray, np.ndarray]:
    """For each predicted box, the ground-truth box of the same key that it overlaps most.

    Args:
        predicted: one row per box (``video_id, second, x1, y1, x2, y2``), e.g. from
            :func:`~ava_detect.data.ava_files.group_boxes`.
        ground_truth: one row per box, same columns.

    Returns:
        ``(index, iou)``: ``int64 [P]`` row position in ``ground_truth`` of the best box (-1 when
        the key has no ground truth) and ``float64 [P]`` its IoU (0 when none). Ties go to the
        box that comes first in ``ground_truth``.
    """
    n = len(predicted)
    best = np.full(n, -1, dtype=np.int64)
    best_iou = np.zeros(n, dtype=np.float64)
    if n == 0 or len(ground_truth) == 0:
        return best, best_iou
    left = pd.DataFrame({"video_id": predicted["video_id"].astype(str).to_numpy(),
                         "second": predicted["second"].to_numpy(np.int64), "p": np.arange(n)})
    right = pd.DataFrame({"video_id": ground_truth["video_id"].astype(str).to_numpy(),
                          "second": ground_truth["second"].to_numpy(np.int64), "g": np.arange(len(ground_truth))})
    pairs = left.merge(right, on=["video_id", "second"], how="inner")
    if pairs.empty:
        return best, best_iou
    p = pairs["p"].to_numpy()
    g = pairs["g"].to_numpy()
    a = predicted[BOX_COLUMNS].to_numpy(np.float64)[p]
    b = ground_truth[BOX_COLUMNS].to_numpy(np.float64)[g]
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
    order = np.lexsort((g, -iou, p))  # by predicted box, then highest IoU, then first ground truth
    p, g, iou = p[order], g[order], iou[order]
    first = np.ones(len(p), dtype=bool)
    first[1:] = p[1:] != p[:-1]
    best[p[first]] = g[first]
    best_iou[p[first]] = iou[first]
    return best, best_iou


def _valid_seconds(df: pd.DataFrame, what: str, time_axis: TimeAxis) -> pd.DataFrame:
    sec = df["second"].to_numpy()
    ok = time_axis.is_keyframe(sec)
    if not ok.all():
        logger.warning("%s: skipped %d boxes at %d keys outside seconds %s (as PySlowFast does)",
                       what, int((~ok).sum()), len(set(zip(df["video_id"].astype(str)[~ok], sec[~ok]))),
                       time_axis.describe_range())
    return df[ok]


def _not_excluded(df: pd.DataFrame, excluded: Set[str]) -> pd.DataFrame:
    if not excluded or df.empty:
        return df
    keys = np.array([image_key(v, s) for v, s in zip(df["video_id"].astype(str), df["second"])], dtype=object)
    return df[~np.isin(keys, np.array(sorted(excluded), dtype=object))]


def _pack(video_ids: np.ndarray, seconds: np.ndarray, boxes: np.ndarray, labels: np.ndarray,
          scores: np.ndarray) -> KeyframeBoxes:
    """Rows (any order) -> :class:`KeyframeBoxes` sorted by (video id, second), rows of a key in input order."""
    order = np.lexsort((np.arange(len(seconds)), seconds, video_ids.astype(str)))
    video_ids, seconds = video_ids[order], seconds[order]
    boxes, labels, scores = boxes[order], labels[order], scores[order]
    if len(seconds):
        new_key = np.ones(len(seconds), dtype=bool)
        new_key[1:] = (video_ids[1:] != video_ids[:-1]) | (seconds[1:] != seconds[:-1])
        starts = np.flatnonzero(new_key)
    else:
        starts = np.zeros(0, dtype=np.int64)
    return KeyframeBoxes(
        video_ids=video_ids[starts].astype(object), seconds=seconds[starts].astype(np.int64),
        offsets=np.append(starts, len(seconds)).astype(np.int64),
        boxes=boxes.astype(np.float32), labels=labels.astype(np.uint8), scores=scores.astype(np.float32),
    )


def _labels_from_match(best: np.ndarray, iou: np.ndarray, gt_labels: np.ndarray, threshold: float,
                       num_classes: int) -> np.ndarray:
    out = np.zeros((len(best), num_classes), dtype=np.uint8)
    hit = (best >= 0) & (iou >= threshold)
    out[hit] = gt_labels[best[hit]]
    return out


def training_keyframes(
    *,
    ground_truth: pd.DataFrame,
    class_ids: Sequence[int],
    predicted_boxes: Optional[pd.DataFrame] = None,
    box_threshold: float = 0.8,
    iou_threshold: float = LABEL_IOU_THRESHOLD,
    excluded: Iterable[str] = (),
    time_axis: TimeAxis = AVA,
) -> KeyframeBoxes:
    """Training keyframes: the ground-truth keys (minus excluded ones and seconds that are not keyframes
    of ``time_axis``: AVA's outside 902..1798).

    Args:
        ground_truth: :func:`~ava_detect.data.ava_files.read_ground_truth` rows.
        class_ids: the label columns (e.g. AVA ids 1..80 -> columns 0..79).
        predicted_boxes: :func:`~ava_detect.data.ava_files.read_predicted_boxes` rows to add
            (those with ``score >= box_threshold`` at ground-truth keys), labelled from the
            ground truth (IoU >= ``iou_threshold``) or negatives with no labels.
        excluded: image keys to skip.
    """
    excluded = set(excluded)
    gt = _not_excluded(_valid_seconds(group_boxes(ground_truth), "ground truth", time_axis), excluded).reset_index(drop=True)
    gt_labels = multi_hot(gt["labels"], class_ids)
    parts = [(gt["video_id"].astype(str).to_numpy(object), gt["second"].to_numpy(np.int64),
              gt[BOX_COLUMNS].to_numpy(np.float32), gt_labels, np.ones(len(gt), dtype=np.float32))]
    if predicted_boxes is not None:
        pred = group_boxes(predicted_boxes)
        pred = pred[pred["score"].to_numpy() >= box_threshold].reset_index(drop=True)
        best, iou = match_to_ground_truth(pred, gt)
        at_gt_key = best >= 0
        pred = pred[at_gt_key].reset_index(drop=True)
        labels = _labels_from_match(best[at_gt_key], iou[at_gt_key], gt_labels, iou_threshold, len(class_ids))
        logger.info("training boxes: %d ground truth + %d predicted (score >= %g; %d labelled from ground truth, "
                    "%d negatives)", len(gt), len(pred), box_threshold, int(labels.any(axis=1).sum()),
                    int((~labels.any(axis=1)).sum()))
        parts.append((pred["video_id"].astype(str).to_numpy(object), pred["second"].to_numpy(np.int64),
                      pred[BOX_COLUMNS].to_numpy(np.float32), labels, pred["score"].to_numpy(np.float32)))
    return _pack(*(np.concatenate(col) for col in zip(*parts)))


def inference_keyframes(
    *,
    predicted_boxes: pd.DataFrame,
    class_ids: Sequence[int],
    box_threshold: float = 0.8,
    excluded: Iterable[str] = (),
    ground_truth: Optional[pd.DataFrame] = None,
    iou_threshold: float = LABEL_IOU_THRESHOLD,
    time_axis: TimeAxis = AVA,
) -> KeyframeBoxes:
    """Test keyframes: keys with predicted boxes of ``score >= box_threshold`` (keys without
    such boxes, excluded keys and seconds that are not keyframes of ``time_axis`` are skipped). Labels come from
    ``ground_truth`` (IoU >= ``iou_threshold``) when given, else are all zero."""
    pred = group_boxes(predicted_boxes)
    pred = pred[pred["score"].to_numpy() >= box_threshold]
    pred = _not_excluded(_valid_seconds(pred, "predicted boxes", time_axis), set(excluded)).reset_index(drop=True)
    labels = np.zeros((len(pred), len(class_ids)), dtype=np.uint8)
    if ground_truth is not None:
        gt = group_boxes(ground_truth).reset_index(drop=True)
        best, iou = match_to_ground_truth(pred, gt)
        labels = _labels_from_match(best, iou, multi_hot(gt["labels"], class_ids), iou_threshold, len(class_ids))
    return _pack(pred["video_id"].astype(str).to_numpy(object), pred["second"].to_numpy(np.int64),
                 pred[BOX_COLUMNS].to_numpy(np.float32), labels, pred["score"].to_numpy(np.float32))


# --------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------


def check_videos(
    keyframes: KeyframeBoxes, source: ClipSource, *, skip_missing: bool = False, time_axis: TimeAxis = AVA
) -> Tuple[KeyframeBoxes, Dict[str, int]]:
    """Check that every annotated video is there and count keys past the end of their video.

    Returns:
        ``(keyframes, num_frames)``: the keyframes (without those of missing videos when
        ``skip_missing``) and each video's frame count.

    Raises:
        AvaDetectError: videos are missing (listing the first ids) and ``skip_missing`` is False.
    """
    videos = sorted(set(keyframes.video_ids.tolist()))
    missing = [v for v in videos if not source.exists(v)]
    if missing:
        lost = np.isin(keyframes.video_ids.astype(str), np.array(missing, dtype=str))
        where = source.path(missing[0]).parent if isinstance(source, VideoFolder) else source.root
        expected = f"{source.path('<video_id>').name}" if isinstance(source, VideoFolder) else "<video_id>/<video_id>_000001.jpg"
        shown = ", ".join(missing[:10]) + (", ..." if len(missing) > 10 else "")
        if not skip_missing:
            raise AvaDetectError(
                f"{len(missing)} of {len(videos)} annotated videos are missing ({int(lost.sum())} keyframes); "
                f"expected {expected} for: {shown}. Prepare them (ava-detect prep videos) or set "
                f"data.skip_missing_videos=true to skip their keyframes", where)
        logger.warning("skipped %d keyframes of %d missing videos (%s)", int(lost.sum()), len(missing), shown)
        keyframes = keyframes.select(~lost)
        videos = [v for v in videos if v not in set(missing)]
    num_frames = {v: source.num_frames(v) for v in videos}
    if len(keyframes):
        n = np.array([num_frames[v] for v in keyframes.video_ids], dtype=np.int64)
        centers = time_axis.frame_index(keyframes.seconds)  # keyframe_center, vectorised
        beyond = centers >= n
        if beyond.any():
            first = image_key(keyframes.video_ids[beyond][0], int(keyframes.seconds[beyond][0]))
            logger.warning(
                "%d keyframes of %d videos lie beyond the end of their video (first: %s); their clips are "
                "clamped to the last frame, as PySlowFast does", int(beyond.sum()),
                len(set(keyframes.video_ids[beyond].tolist())), first)
    return keyframes, num_frames


class AvaDataset(Dataset):
    """AVA keyframes -> clips with boxes and labels (see the module docstring for the batch layout).

    Args:
        keyframes: boxes per keyframe (:func:`training_keyframes` / :func:`inference_keyframes`).
        source: where the frames come from (:class:`~ava_detect.data.video.VideoFolder` or
            :class:`~ava_detect.data.video.FrameFolder`).
        transform: ``(clip uint8 [T,H,W,3], boxes [N,4] pixels) ->``
            :class:`~ava_detect.data.transforms.TransformOutput`.
        num_frames: frames per clip (the fast pathway's T).
        sampling_rate: frame stride on the time axis' frames.
        time_axis: second -> frame index (AVA: ``(s - 900) * 30``; :class:`~ava_detect.data.time_axis.TimeAxis`).
        skip_missing_videos: skip the keyframes of videos that are not in ``source`` (with a
            warning counting them) instead of raising.
        class_ids: the action id of each label column (and model output column).
    """

    def __init__(
        self,
        *,
        keyframes: KeyframeBoxes,
        source: ClipSource,
        transform: Callable,
        num_frames: int,
        sampling_rate: int,
        time_axis: TimeAxis = AVA,
        skip_missing_videos: bool = False,
        class_ids: Sequence[int] = tuple(range(1, 81)),
    ):
        self.class_ids = [int(c) for c in class_ids]
        self.keyframes, self.num_video_frames = check_videos(keyframes, source, skip_missing=skip_missing_videos,
                                                                time_axis=time_axis)
        self.source = source
        self.transform = transform
        self.num_frames = num_frames
        self.sampling_rate = sampling_rate
        self.time_axis = time_axis

    def __len__(self) -> int:
        return len(self.keyframes)

    def frame_indices(self, index: int) -> torch.Tensor:
        """``LongTensor[T]``: the (clamped) frame indices of keyframe ``index``'s clip."""
        kf = self.keyframes
        video_id, second = kf.video_ids[index], int(kf.seconds[index])
        return clip_frame_indices(keyframe_center(second, time_axis=self.time_axis), num_frames=self.num_frames,
                                  sampling_rate=self.sampling_rate, num_video_frames=self.num_video_frames[video_id])

    def __getitem__(self, index: int) -> Dict[str, object]:
        """One keyframe: ``inputs`` (pathways ``[3,T_p,H,W]``), ``boxes [N,4]`` pixels of the inputs,
        ``labels float [N,C]``, ``video_id``, ``second``, ``orig_boxes [N,4]`` normalised,
        ``scores [N]``, ``image_size (H, W)``."""
        kf = self.keyframes
        video_id, second = str(kf.video_ids[index]), int(kf.seconds[index])
        a, b = int(kf.offsets[index]), int(kf.offsets[index + 1])
        try:
            clip = self.source.read(video_id, self.frame_indices(index), num_frames=self.num_video_frames[video_id])
        except AvaDetectError as e:
            raise AvaDetectError(f"keyframe {image_key(video_id, second)}: {e.message}", e.path, e.line) from None
        height, width = int(clip.shape[1]), int(clip.shape[2])
        norm = torch.from_numpy(kf.boxes[a:b])
        out = self.transform(clip, normalized_to_pixels(norm, width, height))
        keep = out.keep
        return {
            "inputs": out.inputs,
            "boxes": out.boxes,
            "labels": torch.from_numpy(kf.labels[a:b])[keep].float(),
            "video_id": video_id,
            "second": second,
            "orig_boxes": norm[keep],
            "scores": torch.from_numpy(kf.scores[a:b])[keep],
            "image_size": (int(out.inputs[0].shape[-2]), int(out.inputs[0].shape[-1])),
        }


def _stack_padded(tensors: List[torch.Tensor]) -> torch.Tensor:
    """``[3,T,H_i,W_i]`` -> ``[B,3,T,H,W]``, zero-padded bottom/right to the largest size."""
    if len({tuple(t.shape) for t in tensors}) == 1:
        return torch.stack(tensors)
    h = max(t.shape[-2] for t in tensors)
    w = max(t.shape[-1] for t in tensors)
    return torch.stack([F.pad(t, (0, w - t.shape[-1], 0, h - t.shape[-2])) for t in tensors])


def collate(items: List[Dict[str, object]]) -> Dict[str, object]:
    """Items of :class:`AvaDataset` -> a batch (see the module docstring)."""
    num_pathways = len(items[0]["inputs"])  # type: ignore[arg-type]
    counts = [int(it["boxes"].shape[0]) for it in items]  # type: ignore[union-attr]
    return {
        "inputs": [_stack_padded([it["inputs"][p] for it in items]) for p in range(num_pathways)],  # type: ignore[index]
        "rois": boxes_to_rois([it["boxes"] for it in items]),  # type: ignore[misc]
        "labels": torch.cat([it["labels"] for it in items]),  # type: ignore[misc]
        "video_ids": [it["video_id"] for it, n in zip(items, counts) for _ in range(n)],
        "seconds": torch.tensor([it["second"] for it, n in zip(items, counts) for _ in range(n)], dtype=torch.long),
        "boxes": torch.cat([it["orig_boxes"] for it in items]).float(),  # type: ignore[misc]
        "scores": torch.cat([it["scores"] for it in items]).float(),  # type: ignore[misc]
        "image_sizes": torch.tensor([it["image_size"] for it in items], dtype=torch.long).reshape(-1, 2),
        "keys": [image_key(it["video_id"], it["second"]) for it in items],  # type: ignore[arg-type]
    }


# --------------------------------------------------------------------------------------
# From the config
# --------------------------------------------------------------------------------------


def build_test_transform(cfg) -> "TestTransform":
    """The test-time transform that ``cfg.data`` (short side, normalisation) and ``cfg.model`` (the
    backbone's input packing) describe: one definition for ``ava-detect test``, ``annotate`` and the benchmarks.

    Raises:
        AvaDetectError: a model setting out of range (naming the key).
    """
    from ava_detect.data.transforms import TestTransform
    from ava_detect.model.architectures import input_spec_from_config

    d = cfg.data
    return TestTransform(input_spec_from_config(cfg.model), short_side=d.test_short_side, mean=tuple(d.mean),
                         std=tuple(d.std))


def build_dataset(cfg, split: str) -> AvaDataset:
    """The dataset of ``split`` (``train``, or ``val`` / ``test`` for the validation split) as
    ``cfg.data`` and ``cfg.model`` describe it. The config is read here, once."""
    from ava_detect.data.ava_files import read_exclusions, read_ground_truth, read_predicted_boxes
    from ava_detect.data.labelmaps import check_num_classes, resolve_labelmap
    from ava_detect.data.layout import resolve_data_path
    from ava_detect.data.transforms import TrainTransform
    from ava_detect.model.architectures import input_spec_from_config

    d, m = cfg.data, cfg.model

    def resolve(p: str) -> Path:
        return resolve_data_path(d, p)

    labelmap = resolve_labelmap(kind="all", data=d)
    time_axis = TimeAxis.from_config(d)
    class_ids = list(labelmap.ids)
    check_num_classes(m.num_classes, labelmap)
    if d.source == "video":
        source: ClipSource = VideoFolder(resolve(d.video_dir), suffix=d.video_suffix, fps=d.fps, threads=d.decode_threads)
    elif d.source == "frames":
        source = FrameFolder(resolve(d.frame_dir))
    else:
        raise AvaDetectError(f"data.source must be 'video' or 'frames', got {d.source!r}", "config")

    if split == "train":
        gt = read_ground_truth(resolve(d.train_gt), labelmap)
        pred = read_predicted_boxes(resolve(d.train_boxes)) if d.train_use_predicted_boxes else None
        excluded = read_exclusions(resolve(d.train_exclusions)) if d.train_exclusions else set()
        keyframes = training_keyframes(ground_truth=gt, class_ids=class_ids, predicted_boxes=pred,
                                       box_threshold=d.train_box_threshold, iou_threshold=d.label_iou_threshold,
                                       excluded=excluded, time_axis=time_axis)
        transform: Callable = TrainTransform(
            jitter_min=d.train_jitter_min, jitter_max=d.train_jitter_max, crop_size=d.train_crop_size,
            flip=d.train_flip, color_jitter=d.train_color_jitter, mean=tuple(d.mean), std=tuple(d.std),
            input_spec=input_spec_from_config(m))
    elif split in ("val", "test"):
        pred = read_predicted_boxes(resolve(d.val_boxes))
        gt = read_ground_truth(resolve(d.val_gt), labelmap) if d.val_gt else None
        excluded = read_exclusions(resolve(d.exclusions)) if d.exclusions else set()
        keyframes = inference_keyframes(predicted_boxes=pred, class_ids=class_ids, box_threshold=d.test_box_threshold,
                                   excluded=excluded, ground_truth=gt, iou_threshold=d.label_iou_threshold,
                                        time_axis=time_axis)
        transform = build_test_transform(cfg)
    else:
        raise AvaDetectError(f"split must be 'train', 'val' or 'test', got {split!r}")
    logger.info("%s split: %d keyframes, %d boxes, from %s", split, len(keyframes), keyframes.num_boxes,
                source.root)
    return AvaDataset(keyframes=keyframes, source=source, transform=transform, num_frames=m.num_frames,
                      sampling_rate=m.sampling_rate, time_axis=time_axis, skip_missing_videos=d.skip_missing_videos,
                      class_ids=class_ids)
