"""Training, testing, inference, distributed helpers and checkpoints.

The library entry points (what ``ava-detect train`` and ``ava-detect test`` call):
:func:`train` -> :class:`TrainResult` and :func:`run_test` -> :class:`TestResult`. They are
loaded on first use, so that importing a submodule loads only what it needs.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "train": "ava_detect.engine.trainer",
    "TrainResult": "ava_detect.engine.trainer",
    "run_test": "ava_detect.engine.testing",
    "TestResult": "ava_detect.engine.testing",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
