"""``AVAEvaluator``: reset / add / evaluate, the detections CSV, and gathering across processes."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ava_detect.data.ava_files import read_detections
from ava_detect.evaluation.evaluator import AVAEvaluator
from ava_detect.evaluation.frame_map import evaluate_files

from common import FIXTURES

EXCERPT = FIXTURES / "eval" / "ava_val_excerpt"
TOL = 1e-12


def _boxes_and_scores():
    """The excerpt's detection rows regrouped as the model gives them: per box, 80 scores
    (0 for classes the file has no row for), boxes in file order."""
    det = read_detections(EXCERPT / "pred.csv")
    det["video_id"] = det["video_id"].astype(str)
    boxes = det.groupby(["video_id", "second", "x1", "y1", "x2", "y2"], sort=False).size().reset_index()
    scores = np.zeros((len(boxes), 80))
    index = {tuple(r): i for i, r in enumerate(boxes[["video_id", "second", "x1", "y1", "x2", "y2"]].itertuples(index=False))}
    for r in det.itertuples(index=False):
        scores[index[(r.video_id, r.second, r.x1, r.y1, r.x2, r.y2)], r.action_id - 1] = r.score
    return boxes, scores


def _add_all(evaluator, boxes, scores, batch=5):
    for start in range(0, len(boxes), batch):
        part = boxes.iloc[start:start + batch]
        evaluator.add(list(part["video_id"]), torch.tensor(part["second"].to_numpy(copy=True)),
                      torch.tensor(part[["x1", "y1", "x2", "y2"]].to_numpy(copy=True)),
                      torch.as_tensor(scores[start:start + batch]), class_ids=range(1, 81))


@pytest.mark.parametrize("protocol", ["activitynet", "pyslowfast"])
def test_evaluator_equals_files(tmp_path, protocol):
    boxes, scores = _boxes_and_scores()
    evaluator = AVAEvaluator(ground_truth=EXCERPT / "gt.csv", protocol=protocol)
    evaluator.add(["junk"], [902], torch.tensor([[0.1, 0.1, 0.5, 0.5]]), torch.ones(1, 80), class_ids=range(1, 81))
    evaluator.reset()
    _add_all(evaluator, boxes, scores)
    result = evaluator.evaluate()
    # the same detections through a CSV (rows per box x 80 classes, as the evaluator writes them)
    out = tmp_path / "det.csv"
    evaluator.write_detections(out)
    assert len(out.read_text().splitlines()) == len(boxes) * 80
    expected = evaluate_files(gt_path=EXCERPT / "gt.csv", pred_path=out, protocol=protocol)
    for cid, ap in expected.per_class_ap.items():
        got = result.per_class_ap[cid]
        assert (math.isnan(ap) and math.isnan(got)) or abs(got - ap) <= TOL, cid
    assert abs(result.mAP - expected.mAP) <= TOL
    assert result.mAP > 0.3  # the excerpt's predictions are noisy copies of the ground truth


def test_add_checks_shapes():
    evaluator = AVAEvaluator(ground_truth=EXCERPT / "gt.csv")
    with pytest.raises(ValueError, match="do not match"):
        evaluator.add(["a", "b"], [902], torch.zeros(2, 4), torch.zeros(2, 80), class_ids=range(1, 81))


def _worker(rank, world, out_dir):
    # rendezvous through a file (no port to pick and release before the processes bind it)
    store = Path(out_dir) / "rendezvous"
    dist.init_process_group("gloo", init_method=store.as_uri(), rank=rank, world_size=world)
    assert dist.get_backend() == "gloo"
    try:
        boxes, scores = _boxes_and_scores()
        keys = boxes["second"].to_numpy()
        seconds = sorted(set(keys.tolist()))
        # rank r gets every other keyframe; both also get the first keyframe (a padded sampler)
        mine = [s for i, s in enumerate(seconds) if i % world == rank or i == 0]
        take = np.isin(keys, mine)
        evaluator = AVAEvaluator(ground_truth=EXCERPT / "gt.csv")
        _add_all(evaluator, boxes[take].reset_index(drop=True), scores[take])
        result = evaluator.evaluate()
        evaluator.write_detections(os.path.join(out_dir, "det.csv"))
        with open(os.path.join(out_dir, f"map{rank}.txt"), "w") as f:
            f.write(repr(result.mAP))
    finally:
        dist.destroy_process_group()


def test_gathers_across_processes_without_duplicate_keys(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    single = AVAEvaluator(ground_truth=EXCERPT / "gt.csv")
    boxes, scores = _boxes_and_scores()
    _add_all(single, boxes, scores)
    expected = single.evaluate().mAP
    for rank in range(2):
        assert abs(float((tmp_path / f"map{rank}.txt").read_text()) - expected) <= TOL
    rows = pd.read_csv(tmp_path / "det.csv", header=None)
    assert len(rows) == len(boxes) * 80  # the keyframe both ranks saw is there once
