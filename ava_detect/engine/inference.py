"""Inference over a keyframe dataset, sharded over processes, into an :class:`AVAEvaluator`.

Every process runs the keyframes ``rank, rank + n, ...`` (no padded repeats: PySlowFast's
distributed test repeats keyframes to fill the last batches and counts the repeats as false
positives); the evaluator gathers what all processes added and evaluates once.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Dict, Optional, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ava_detect.engine import distributed as du
from ava_detect.engine.hooks import ProgressFactory
from ava_detect.engine.sample_order import ShardedInferenceSampler, worker_context
from ava_detect.evaluation.evaluator import AVAEvaluator

logger = logging.getLogger(__name__)


def predict_into(
    model: nn.Module,
    dataset: Dataset,
    evaluator: AVAEvaluator,
    *,
    class_ids: Sequence[int],
    batch_size: int,
    num_workers: int,
    device: torch.device,
    bf16: bool = False,
    progress: Optional[ProgressFactory] = None,
) -> Dict[str, float]:
    """Run ``model`` on this process's share of ``dataset`` and add the results to ``evaluator``.

    Args:
        model: an :class:`~ava_detect.model.ActionDetector` (any mode; evaluated in eval mode).
        dataset: a keyframe dataset whose items :func:`~ava_detect.data.dataset.collate` batches.
        class_ids: the action id of each output column of the model.
        bf16: bfloat16 autocast (CPU or GPU).
        progress: ``make_bar(total=, initial=, desc=)`` for a progress bar on the main process
            (the CLI passes tqdm's); None or False: none.

    Returns:
        ``{"keyframes", "boxes", "seconds"}`` for this process.
    """
    from ava_detect.data.dataset import collate
    from ava_detect.model.detector import require_finite_scores

    sampler = ShardedInferenceSampler(len(dataset), num_replicas=du.get_world_size(), rank=du.get_rank())
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                        collate_fn=collate, pin_memory=device.type == "cuda",
                        multiprocessing_context=worker_context(num_workers))
    was_training = model.training
    model.eval()
    start, n_keys, n_boxes = time.perf_counter(), 0, 0
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    bar = progress(total=len(loader), initial=0, desc="inference") if progress and du.is_main_process() else None
    try:
        with torch.inference_mode(), autocast:
            for batch in loader:
                inputs = [x.to(device, non_blocking=True) for x in batch["inputs"]]
                rois = batch["rois"].to(device, non_blocking=True)
                probs = require_finite_scores(model(inputs, rois).float().cpu())
                evaluator.add(batch["video_ids"], batch["seconds"], batch["boxes"], probs, class_ids)
                n_keys += len(batch["keys"])
                n_boxes += int(rois.shape[0])
                if bar is not None:
                    bar.update(1)
    finally:
        model.train(was_training)
        if bar is not None:
            bar.close()
    return {"keyframes": n_keys, "boxes": n_boxes, "seconds": time.perf_counter() - start}


def build_evaluator(cfg: Any, split: str = "val") -> AVAEvaluator:
    """The evaluator of the validation split as ``cfg.data`` / ``cfg.test`` describe it.

    Label map: ``test.eval_labelmap``, else ``data.labelmap``, else the official 60-class list.
    """
    from ava_detect.data.ava_files import read_exclusions
    from ava_detect.data.labelmaps import resolve_labelmap
    from ava_detect.data.layout import resolve_data_path

    d = cfg.data
    labelmap = resolve_labelmap(cfg.test.eval_labelmap, kind="evaluated", data=d)
    excluded = read_exclusions(resolve_data_path(d, d.exclusions)) if d.exclusions else set()
    return AVAEvaluator(ground_truth=resolve_data_path(d, d.val_gt), labelmap=labelmap,
                        protocol=cfg.test.protocol, excluded=excluded)


def evaluate_split(
    cfg: Any, model: nn.Module, split: str = "val", *, device: Optional[torch.device] = None,
    progress: Optional[ProgressFactory] = None, dataset: Optional[Dataset] = None,
) -> Dict[str, Any]:
    """Frame-mAP of ``model`` on ``split`` with the configured protocol (used for validation
    during training). Returns ``{"mAP": float, "result": FrameMAPResult, ...}`` on every process."""
    from ava_detect.data.dataset import build_dataset

    device = device or next(model.parameters()).device
    dataset = dataset if dataset is not None else build_dataset(cfg, split)
    evaluator = build_evaluator(cfg, split)
    stats = predict_into(model, dataset, evaluator, class_ids=dataset.class_ids, batch_size=cfg.test.batch_size,
                         num_workers=cfg.data.num_workers, device=device, bf16=cfg.test.bf16,
                         progress=progress)
    result = evaluator.evaluate()
    return {"mAP": float(result.mAP), "result": result, "evaluator": evaluator, **stats}
