"""A simulated person detector: predicted boxes with scores drawn from the ground truth (misses,
jitter, false positives)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ava_detect.structures import pixels_to_normalized

#: Chance that a ground-truth person has no predicted box at a keyframe.
MISS_RATE = 0.05
#: Mean number of false-positive boxes per keyframe.
FALSE_POSITIVES_PER_KEY = 0.3
#: Standard deviation of the jitter of each box side, as a fraction of the box width / height.
BOX_JITTER = 0.05


def predict_boxes(rng: np.random.Generator, gt: pd.DataFrame, width: int, height: int) -> pd.DataFrame:
    """Simulate a person detector from ground-truth boxes.

    Args:
        rng: generator (the output depends on nothing else).
        gt: one row per ground-truth box: ``video_id, second, x1, y1, x2, y2`` (normalised).
        width, height: frame size, pixels (the jitter and false positives are drawn in pixels).

    Returns:
        ``video_id, second, x1, y1, x2, y2, score`` (normalised): per ground-truth box, with
        probability ``1 - MISS_RATE``, the box with each side moved by ``N(0, BOX_JITTER)`` of its
        size (IoU mostly > 0.7) and a score ``1 - |N(0, 0.07)|`` (mostly >= 0.8); plus, per
        keyframe, ``Poisson(FALSE_POSITIVES_PER_KEY)`` person-shaped boxes at random places with
        scores ``U(0.3, 0.95)``. Rows per keyframe are sorted by decreasing score.
    """
    rows = []
    for (video_id, second), group in gt.groupby(["video_id", "second"], sort=False):
        boxes = group[["x1", "y1", "x2", "y2"]].to_numpy() * [width, height, width, height]
        found = []
        for box in boxes:
            if rng.random() < MISS_RATE:
                continue
            w, h = box[2] - box[0], box[3] - box[1]
            jitter = rng.normal(0, BOX_JITTER, 4) * [w, h, w, h]
            new = np.clip(box + jitter, 0, [width, height, width, height])
            if new[2] - new[0] < 2 or new[3] - new[1] < 2:
                new = box
            score = float(np.clip(1 - abs(rng.normal(0, 0.07)), 0.3, 0.999))
            found.append((new, score))
        for _ in range(int(rng.poisson(FALSE_POSITIVES_PER_KEY))):
            bh = rng.uniform(0.2, 0.5) * height
            bw = bh * rng.uniform(0.3, 0.8)
            x1 = rng.uniform(0, width - bw)
            y1 = rng.uniform(0, height - bh)
            found.append((np.array([x1, y1, x1 + bw, y1 + bh]), float(rng.uniform(0.3, 0.95))))
        found.sort(key=lambda item: -item[1])
        for box, score in found:
            nb = pixels_to_normalized(box[None, :], width, height)[0]
            rows.append((video_id, second, *nb, score))
    return pd.DataFrame(rows, columns=["video_id", "second", "x1", "y1", "x2", "y2", "score"])
