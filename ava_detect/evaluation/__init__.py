"""Frame-mAP@0.5 exactly as the official AVA evaluators compute it (``frame_map``), the
in-process evaluator used by training and testing (``evaluator``), the protocols' rules
(``protocols``) and reports (``report``).

The names below are loaded on first use, so that importing ``ava_detect.evaluation.protocols``
(the ``eval`` command's parser does) loads neither numpy nor pandas."""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "PROTOCOLS": "ava_detect.evaluation.protocols",
    "Protocol": "ava_detect.evaluation.protocols",
    "FrameMAPResult": "ava_detect.evaluation.frame_map",
    "evaluate_files": "ava_detect.evaluation.frame_map",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
