"""Person detectors behind one interface (:class:`PersonDetector`): frames in, pixel boxes and scores out.

Backends: torchvision's Faster R-CNN (:class:`TorchvisionPersonDetector`, the default), a detectron2
model-zoo detector when detectron2 is installed (imported only when chosen), and precomputed AVA
box CSVs (:class:`CsvPersonDetector`). :func:`build_detector` reads the ``detector`` section of
the config once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

import torch

from ava_detect.detection.base import Detections, FrameKey, PersonDetector, as_frame_list, empty_detections
from ava_detect.detection.csv_backend import CsvPersonDetector
from ava_detect.errors import AvaDetectError

if TYPE_CHECKING:
    from ava_detect.config import Config

#: The backends :func:`build_detector` knows.
BACKENDS = ("torchvision", "detectron2", "csv")

__all__ = ["BACKENDS", "CsvPersonDetector", "Detections", "FrameKey", "PersonDetector", "as_frame_list",
           "build_detector", "empty_detections"]


def build_detector(cfg: "Config", *, device: Union[str, torch.device] = "cpu", progress: bool = True) -> PersonDetector:
    """The person detector described by ``cfg.detector``.

    Args:
        device: where a neural detector runs.
        progress: show a download progress bar (default weights, first use).

    Raises:
        AvaDetectError: unknown backend, a missing box CSV, detectron2 not installed, weights that
            cannot be downloaded or do not fit.
    """
    d = cfg.detector
    if d.backend == "csv":
        if not d.boxes_csv:
            raise AvaDetectError("the csv person detector needs a box CSV: --boxes FILE (config: detector.boxes_csv)")
        return CsvPersonDetector(path=d.boxes_csv, score_threshold=d.score_threshold, format=d.boxes_format)
    if d.min_size < 1 or d.max_size < d.min_size:
        raise AvaDetectError(f"detector input size: need 1 <= min_size <= max_size, got min_size={d.min_size}, "
                             f"max_size={d.max_size}", "config")
    if d.proposals < 1:
        raise AvaDetectError(f"detector.proposals must be >= 1, got {d.proposals}", "config")
    if d.backend == "torchvision":
        from ava_detect.detection.torchvision_backend import TorchvisionPersonDetector

        return TorchvisionPersonDetector(weights=d.weights, score_threshold=d.score_threshold, min_size=d.min_size,
                                         max_size=d.max_size, proposals=d.proposals, batch_size=d.batch_size,
                                         device=device, progress=progress)
    if d.backend == "detectron2":
        from ava_detect.detection.detectron2_backend import Detectron2PersonDetector

        return Detectron2PersonDetector(config=d.detectron2_config, weights=d.weights,
                                        score_threshold=d.score_threshold, min_size=d.min_size, max_size=d.max_size,
                                        batch_size=d.batch_size, device=device)
    raise AvaDetectError(f"unknown person detector backend {d.backend!r}; expected one of {', '.join(BACKENDS)}",
                         "config")
