"""Frame-mAP@0.5 exactly as the official AVA evaluators compute it (``frame_map``), the
in-process evaluator used by training and testing (``evaluator``), and reports (``report``)."""

from ava_detect.evaluation.frame_map import PROTOCOLS, FrameMAPResult, evaluate_files

__all__ = ["PROTOCOLS", "FrameMAPResult", "evaluate_files"]
