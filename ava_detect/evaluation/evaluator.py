"""In-process frame-mAP: collect model outputs during training or testing, evaluate at the end.

``AVAEvaluator`` follows detectron2's evaluator shape: :meth:`~AVAEvaluator.reset`,
:meth:`~AVAEvaluator.add` per batch, :meth:`~AVAEvaluator.evaluate` once. Under
``torch.distributed`` it gathers what every process added (``all_gather_object``) before
evaluating; a keyframe seen by several processes (a distributed sampler pads the last batch by
repeating samples) is counted once, from the first process (by rank) that added it.
"""

from __future__ import annotations

import logging
from typing import Dict, List, Optional, Sequence, Set, Union

import numpy as np
import pandas as pd
import torch

from ava_detect.data.ava_files import LabelMap
from ava_detect.evaluation.frame_map import (FrameMAPResult, Matching, check_protocol, frame_map_matching,
                                             load_labelmap, rows_from_frames)
from ava_detect.structures import image_key
from ava_detect.io import PathLike

logger = logging.getLogger(__name__)


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized() \
        and torch.distributed.get_world_size() > 1


class AVAEvaluator:
    """Frame-mAP@0.5 of detections added batch by batch.

    Args:
        ground_truth: the ground-truth CSV, or its rows as :func:`~ava_detect.data.ava_files.read_ground_truth`
            returns them (read with ``raw=True`` and no label map for numbers identical to the
            official evaluator's).
        labelmap: :class:`LabelMap`, a label-map file, or None for the packaged 60-class list.
        protocol: ``"activitynet"`` (default) or ``"pyslowfast"``.
        excluded: image keys ``"video,SSSS"`` to leave out (e.g. from
            :func:`~ava_detect.data.ava_files.read_exclusions`).

    Example::

        evaluator = AVAEvaluator(ground_truth="ava_val_v2.2.csv")
        evaluator.reset()
        for batch in loader:
            probs = model(batch)                       # Tensor[K, 80]
            evaluator.add(batch.video_ids, batch.seconds, batch.boxes, probs, class_ids=range(1, 81))
        result = evaluator.evaluate()                  # FrameMAPResult, on every process
    """

    def __init__(
        self,
        *,
        ground_truth: Union[PathLike, pd.DataFrame],
        labelmap: Optional[Union[LabelMap, PathLike]] = None,
        protocol: str = "activitynet",
        excluded: Optional[Set[str]] = None,
    ):
        check_protocol(protocol)
        self.labelmap = load_labelmap(labelmap)
        self.protocol = protocol
        self.excluded = set(excluded or ())
        self._ground_truth = ground_truth
        self._gt_df: Optional[pd.DataFrame] = None
        self.reset()

    # ---------------------------------------------------------------------------- state

    def reset(self) -> None:
        """Forget everything added so far (and the last evaluation's :attr:`matching`)."""
        self._batches: List[Dict[str, object]] = []
        #: The per-detection matching behind the last :meth:`evaluate` (for the report page), or None.
        self.matching: Optional[Matching] = None

    def add(
        self,
        video_ids: Sequence[str],
        seconds: Union[Sequence[int], torch.Tensor],
        boxes: torch.Tensor,
        scores: torch.Tensor,
        class_ids: Sequence[int],
    ) -> None:
        """Add the detections of one batch.

        Args:
            video_ids: ``K`` video ids, one per box.
            seconds: ``K`` keyframe seconds (``Sequence[int]`` or ``Tensor[K]``).
            boxes: ``Tensor[K,4]`` ``(x1, y1, x2, y2)`` normalised to [0, 1].
            scores: ``Tensor[K,C]`` action scores (probabilities), column ``j`` for ``class_ids[j]``.
            class_ids: ``C`` action ids; classes outside the label map are ignored.
        """
        boxes_np = torch.as_tensor(boxes).detach().to("cpu", torch.float64).numpy().reshape(-1, 4)
        scores_np = torch.as_tensor(scores).detach().to("cpu", torch.float64).numpy()
        k = boxes_np.shape[0]
        scores_np = scores_np.reshape(k, -1)
        seconds_np = torch.as_tensor(seconds).detach().to("cpu").numpy().astype(np.int64).reshape(-1)
        class_ids = [int(c) for c in class_ids]
        if len(video_ids) != k or len(seconds_np) != k or scores_np.shape[1] != len(class_ids):
            raise ValueError(f"add(): {len(video_ids)} video ids, {len(seconds_np)} seconds, {k} boxes, "
                             f"scores {tuple(scores_np.shape)} and {len(class_ids)} class ids do not match")
        self._batches.append({"video_ids": [str(v) for v in video_ids], "seconds": seconds_np,
                              "boxes": boxes_np, "scores": scores_np, "class_ids": class_ids})

    # ---------------------------------------------------------------------------- gathering

    def _gathered(self) -> List[Dict[str, object]]:
        """All batches of all processes, rank by rank; a keyframe that several processes added
        is taken from the first of them (by rank) only."""
        per_rank: List[List[Dict[str, object]]] = [self._batches]
        if _distributed():
            gathered: List[Optional[List[Dict[str, object]]]] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(gathered, self._batches)
            per_rank = [b or [] for b in gathered]
        seen: Set[str] = set()
        out = []
        for batches in per_rank:
            mine: Set[str] = set()
            for batch in batches:
                keys = [image_key(v, s) for v, s in zip(batch["video_ids"], batch["seconds"].tolist())]
                keep = np.array([key not in seen for key in keys], dtype=bool)
                mine.update(keys)
                if not keep.all():
                    batch = {"video_ids": [v for v, k in zip(batch["video_ids"], keep) if k],
                             "seconds": batch["seconds"][keep], "boxes": batch["boxes"][keep],
                             "scores": batch["scores"][keep], "class_ids": batch["class_ids"]}
                if len(batch["video_ids"]):
                    out.append(batch)
            seen |= mine
        return out

    def detections_frame(self) -> pd.DataFrame:
        """Everything added (gathered across processes, keys de-duplicated) as detection rows:
        columns ``video_id, second, x1, y1, x2, y2, action_id, score``; per box, one row per
        class, in the order added."""
        parts = []
        for batch in self._gathered():
            k, c = batch["scores"].shape
            parts.append(pd.DataFrame({
                "video_id": np.repeat(np.asarray(batch["video_ids"], dtype=object), c),
                "second": np.repeat(batch["seconds"], c),
                **{name: np.repeat(batch["boxes"][:, j], c) for j, name in enumerate(("x1", "y1", "x2", "y2"))},
                "action_id": np.tile(np.asarray(batch["class_ids"], dtype=np.int64), k),
                "score": batch["scores"].reshape(-1),
            }))
        if not parts:
            return pd.DataFrame({"video_id": pd.Series(dtype=object), "second": pd.Series(dtype=np.int64),
                                 **{n: pd.Series(dtype=np.float64) for n in ("x1", "y1", "x2", "y2")},
                                 "action_id": pd.Series(dtype=np.int64), "score": pd.Series(dtype=np.float64)})
        return pd.concat(parts, ignore_index=True)

    def write_detections(self, path: PathLike) -> None:
        """Write everything added as an AVA detection CSV (``video,SSSS,x1,y1,x2,y2,action,score``),
        atomically. Under torch.distributed, every process must call it (it gathers); only
        rank 0 writes."""
        from ava_detect.data.ava_files import write_detections

        frame = self.detections_frame()
        if not _distributed() or torch.distributed.get_rank() == 0:
            write_detections(path, frame)

    # ---------------------------------------------------------------------------- evaluation

    def _ground_truth_frame(self) -> pd.DataFrame:
        if self._gt_df is None:
            if isinstance(self._ground_truth, pd.DataFrame):
                self._gt_df = self._ground_truth
            else:
                from ava_detect.data.ava_files import read_ground_truth

                self._gt_df = read_ground_truth(self._ground_truth, None, raw=True)
        return self._gt_df

    def evaluate(self) -> FrameMAPResult:
        """Frame-mAP of everything added (on every process, after gathering). The matching
        behind it stays in :attr:`matching` until the next evaluation or reset."""
        gt_rows, det_rows, ex_keys = rows_from_frames(self._ground_truth_frame(), self.detections_frame(), self.excluded)
        self.matching = frame_map_matching(gt=gt_rows, detections=det_rows, labelmap=self.labelmap,
                                           protocol=self.protocol, excluded_keys=ex_keys)
        return self.matching.result
