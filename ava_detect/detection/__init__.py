"""Person detectors behind one interface (:class:`PersonDetector`): frames in, pixel boxes and scores out.

Backends: torchvision's Faster R-CNN (:class:`TorchvisionPersonDetector`, the default), a detectron2
model-zoo detector when detectron2 is installed (imported only when chosen), and precomputed AVA
box CSVs (:class:`CsvPersonDetector`). :func:`build_detector` reads the ``detector`` section of
the config once. :func:`detect_videos` runs a detector over the keyframes of many videos into one
AVA box CSV (resumable).

Importing this package is cheap (no torch): the command line reads :data:`BACKENDS` to list its
choices, and the names below are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Dict, Union

if TYPE_CHECKING:
    import torch

    from ava_detect.config import Config, DetectorConfig
    from ava_detect.detection.base import PersonDetector

#: Backend name (``detector.backend``, ``--detector``) -> the module that implements it. Each module
#: has ``build(d: DetectorConfig, *, device, progress) -> PersonDetector`` and is imported only when
#: its backend is chosen. A new backend is one module plus one line here.
BACKENDS: Dict[str, str] = {
    "torchvision": "ava_detect.detection.torchvision_backend",
    "detectron2": "ava_detect.detection.detectron2_backend",
    "csv": "ava_detect.detection.csv_backend",
}

#: Public names -> the module that defines them (imported on first access).
_LAZY = {
    "Detections": "ava_detect.detection.base", "FrameKey": "ava_detect.detection.base",
    "PersonDetector": "ava_detect.detection.base", "as_frame_list": "ava_detect.detection.base",
    "empty_detections": "ava_detect.detection.base", "CsvPersonDetector": "ava_detect.detection.csv_backend",
    "DetectResult": "ava_detect.detection.videos", "DetectProgress": "ava_detect.detection.videos",
    "detect_videos": "ava_detect.detection.videos",
}

__all__ = ["BACKENDS", "build_detector", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_detector(cfg: Union["Config", "DetectorConfig"], *, device: Union[str, "torch.device"] = "cpu",
                   progress: bool = True) -> "PersonDetector":
    """The person detector described by ``cfg.detector`` (or by a ``DetectorConfig`` section itself).

    Args:
        device: where a neural detector runs.
        progress: show a download progress bar (default weights, first use).

    Raises:
        AvaDetectError: unknown backend, a missing box CSV, detectron2 not installed, weights that
            cannot be downloaded or do not fit.
    """
    from ava_detect.errors import AvaDetectError

    d = getattr(cfg, "detector", cfg)
    if d.backend not in BACKENDS:
        raise AvaDetectError(f"unknown person detector backend {d.backend!r}; expected one of "
                             f"{', '.join(BACKENDS)}", "config")
    return importlib.import_module(BACKENDS[d.backend]).build(d, device=device, progress=progress)
