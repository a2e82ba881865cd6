"""Learning works: the synthetic recipe trains a SlowFast from scratch well above chance.

The full run (``configs/synthetic/slowfast_tiny.yaml`` on the default synthetic set, 16 epochs in
about 10 minutes on 2 cores) is a benchmark, ``bench/synthetic_training.py``. This is its short
version for CI: the same recipe (model, optimiser, schedule shape, input sizes) on a
smaller synthetic set with fewer epochs, validated with the predicted boxes exactly as the full run.

The bar. An untrained model, or one whose learning is broken (no gradient reaching the weights,
labels shuffled against boxes, a schedule stuck at zero, ...), ranks the boxes no better than
random scores. Random scores do not give AP 0: a class's AP is then about its share of the
evaluated boxes (``stand`` is on half of the people), so the chance level is computed here, on
the same split with the same evaluator: the mean and spread of the frame-mAP of uniform random
scores over many draws (about 0.29 +- 0.017 on this split; the best of 50 draws 0.32). The trained
model must beat that mean by ``max(MARGIN, 4 standard deviations)``, about 0.37: a model that learned
nothing lands there with a chance well under 1 in 10,000. The bar is far below what the full run
reaches because this run sees about a quarter of the training keyframes (6 videos, 12 s each) for 96
steps, and 26 validation keyframes make its mAP coarse; with these settings it measured 0.41.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np
import torch

from ava_detect.config import load_config
from ava_detect.data.dataset import build_dataset
from ava_detect.data.synthetic import make_synthetic_dataset
from ava_detect.engine.inference import build_evaluator
from ava_detect.engine.trainer import train
from conftest import ROOT

RECIPE = ROOT / "configs" / "synthetic" / "slowfast_tiny.yaml"

# A smaller synthetic set: 9 videos (6 train, 3 val) x 12 s at 160x120 -> 54 training keyframes
# (about 200 people) and 26 validation keyframes with predicted boxes. The recipe's inputs (112 px
# short side) fit these frames as they fit the default 320x240 set, so only the data and the number
# of epochs change: 16 epochs of 6 steps.
SET = dict(seed=0, num_videos=9, seconds=12, size=(160, 120))
OVERRIDES = ["train.epochs=16", "train.eval_period=0", "train.checkpoint_period=0"]

#: The trained model must beat the random-score mean by at least this, and by 4 of its standard deviations.
MARGIN = 0.08


def chance_map(cfg, draws: int = 50) -> Tuple[float, float]:
    """Mean and standard deviation of the frame-mAP of uniform random scores on the validation
    boxes (same split, same evaluator)."""
    dataset = build_dataset(cfg, "val")
    kf = dataset.keyframes
    counts = np.diff(kf.offsets)
    video_ids = list(np.repeat(kf.video_ids, counts))
    seconds = torch.from_numpy(np.repeat(kf.seconds, counts))
    boxes = torch.from_numpy(kf.boxes)
    rng = np.random.default_rng(0)
    maps = []
    for _ in range(draws):
        evaluator = build_evaluator(cfg)
        evaluator.add(video_ids, seconds, boxes, torch.from_numpy(rng.random((len(boxes), len(dataset.class_ids)))),
                      dataset.class_ids)
        maps.append(evaluator.evaluate().mAP)
    return float(np.mean(maps)), float(np.std(maps))


def test_slowfast_learns_synthetic_actions(tmp_path):
    data = tmp_path / "data"
    make_synthetic_dataset(data, **SET)
    cfg = load_config(RECIPE, [f"data.root={data}", f"train.output_dir={tmp_path / 'run'}", *OVERRIDES])
    chance, spread = chance_map(cfg)
    assert 0.1 < chance < 0.5  # the evaluator and the split are what the bar assumes

    result = train(cfg, progress=False)
    assert result.iterations == cfg.train.epochs * (len(build_dataset(cfg, "train")) // cfg.train.batch_size)
    assert np.isfinite(result.last_map)
    bar = chance + max(MARGIN, 4 * spread)
    assert result.last_map >= bar, (
        f"val frame-mAP {result.last_map:.3f} < {bar:.3f} (random scores: {chance:.3f} +- {spread:.3f})")
