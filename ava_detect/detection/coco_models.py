"""torchvision's COCO Faster R-CNN person detectors: which ones the ``torchvision`` backend offers, and
their published accuracy and cost, for choosing speed against accuracy (``detector.model``).

Importing this module is cheap (no torch, no torchvision): the command line reads :data:`COCO_DETECTORS`
for its help text. Accuracy is torchvision's published COCO val2017 box AP (all 80 classes, from
each weights enum's ``meta["_metrics"]``); it cannot be measured offline here. All four share the
Faster R-CNN interface (``min_size``, ``max_size``, RPN proposals), so every ``detector`` setting
applies to each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict


@dataclass(frozen=True)
class CocoDetector:
    """One torchvision detection model with COCO weights.

    Attributes:
        builder: the ``torchvision.models.detection`` function that makes it.
        weights_enum: its weights enum in ``torchvision.models.detection`` (``.DEFAULT`` is used).
        box_ap: published COCO val2017 box AP (%).
        gflops: published GFLOPs per image at torchvision's default input size for the model.
        trained_size: short side (pixels) the published weights were trained and evaluated at.
    """

    builder: str
    weights_enum: str
    box_ap: float
    gflops: float
    trained_size: int

    def describe(self, name: str) -> str:
        return f"{name} ({self.box_ap:g} COCO box AP, {self.gflops:g} GFLOPs at {self.trained_size} px)"


#: ``detector.model`` -> the model. The first is the default (the most accurate).
COCO_DETECTORS: Dict[str, CocoDetector] = {
    "fasterrcnn_resnet50_fpn_v2": CocoDetector(
        "fasterrcnn_resnet50_fpn_v2", "FasterRCNN_ResNet50_FPN_V2_Weights", 46.7, 280.371, 800),
    "fasterrcnn_resnet50_fpn": CocoDetector(
        "fasterrcnn_resnet50_fpn", "FasterRCNN_ResNet50_FPN_Weights", 37.0, 134.38, 800),
    "fasterrcnn_mobilenet_v3_large_fpn": CocoDetector(
        "fasterrcnn_mobilenet_v3_large_fpn", "FasterRCNN_MobileNet_V3_Large_FPN_Weights", 32.8, 4.494, 800),
    "fasterrcnn_mobilenet_v3_large_320_fpn": CocoDetector(
        "fasterrcnn_mobilenet_v3_large_320_fpn", "FasterRCNN_MobileNet_V3_Large_320_FPN_Weights", 22.8, 0.719, 320),
}

#: The default ``detector.model``.
DEFAULT_COCO_DETECTOR = next(iter(COCO_DETECTORS))


def coco_detector_help() -> str:
    """One line per model for ``--help``: name, published box AP, GFLOPs."""
    return "; ".join(m.describe(name) for name, m in COCO_DETECTORS.items())
