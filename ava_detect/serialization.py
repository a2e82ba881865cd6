"""Torch files on disk: the one safe reader and the one atomic writer.

:func:`load_torch_file` is ``torch.load(weights_only=True)``: only tensors, numbers, strings and
containers are accepted, so no code from the file runs. :func:`save_torch_file` writes with
``torch.save`` to a temporary name and renames it, so a kill during a save leaves the previous file
intact. The model's weights (:mod:`ava_detect.model.weights`), training checkpoints
(:mod:`ava_detect.engine.checkpointing`) and the person detector's weights all go through them.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, Optional, Union

import torch

from ava_detect.errors import AvaDetectError
from ava_detect.io import atomic_path
from ava_detect.io import PathLike


class UnreadableTorchFile(AvaDetectError):
    """``torch.load(weights_only=True)`` could not read a file: not a PyTorch file, truncated, or one
    that would need code to run (:attr:`refused`).

    Attributes:
        is_torch_zip: the file is a zip archive (the format of ``torch.save``), not a plain pickle.
        detail: torch's whole message.
        reason: its first line.
    """

    def __init__(self, path: Path, error: BaseException, what: str):
        self.is_torch_zip = zipfile.is_zipfile(path)
        self.detail = str(error) or type(error).__name__
        self.reason = (self.detail.strip().splitlines() or [type(error).__name__])[0]
        super().__init__(f"cannot read {what} safely: {self.reason}", path)

    @property
    def refused(self) -> bool:
        """True when the file is a PyTorch (zip) file that torch refused because it references objects
        outside the safe set (torch words other failures of a weights-only load alike)."""
        return self.is_torch_zip and ("Weights only load failed" in self.detail or "Unsupported" in self.detail)


def load_torch_file(path: PathLike, *, what: str = "checkpoint",
                    map_location: Optional[Union[str, torch.device]] = "cpu") -> Any:
    """Read a file written by ``torch.save`` without running code from it.

    Args:
        path: the file.
        what: what the file is, for messages (``"checkpoint"``, ``"person detector weights file"``).
        map_location: where tensors are put (``torch.load``'s argument).

    Raises:
        AvaDetectError: ``"<what> not found"``; :class:`UnreadableTorchFile` when torch cannot read it safely.
    """
    path = Path(path)
    if not path.is_file():
        raise AvaDetectError(f"{what} not found", path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # UnpicklingError (refused or not torch), RuntimeError / EOFError on garbage, ...
        raise UnreadableTorchFile(path, e, what) from None


def save_torch_file(path: PathLike, obj: Any) -> None:
    """``torch.save(obj)`` to ``path`` atomically (a temporary name in the same folder, then a rename)."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
