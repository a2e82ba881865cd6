"""Torch files on disk: the one safe reader and the one atomic writer.

:func:`load_torch_file` is ``torch.load(weights_only=True)``: only tensors, numbers, strings and
containers are accepted, so no code from the file runs. :func:`save_torch_file` writes with
``torch.save`` to a temporary name and renames it, so a kill during a save leaves the previous file
intact. The model's weights (:mod:`ava_detect.model.weights`), training checkpoints
(:mod:`ava_detect.engine.checkpointing`) and the person detector's weights all go through them.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any, Optional, Union

import torch

from ava_detect.errors import AvaDetectError, unreadable_file_error
from ava_detect.io import atomic_path
from ava_detect.io import PathLike


#: Terminal colour codes (torch's messages contain some).
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: The first bytes of a zip archive (the format of ``torch.save``); a truncated archive still starts with them.
_ZIP_MAGIC = b"PK\x03\x04"


class UnreadableTorchFile(AvaDetectError):
    """``torch.load(weights_only=True)`` could not read a file: not a PyTorch file, truncated, or one
    that would need code to run (:attr:`refused`).

    Attributes:
        is_torch_zip: the file is a zip archive (the format of ``torch.save``), not a plain pickle;
            also true for a truncated archive (:attr:`truncated`).
        truncated: the file starts as a zip archive but its end (the central directory) is missing.
        detail: torch's whole message.
        reason: its first line; for a refused file, the line naming what it needs (:attr:`refused`).
    """

    def __init__(self, path: Path, error: BaseException, what: str):
        self.truncated = _starts_as_zip(path) and not zipfile.is_zipfile(path)
        self.is_torch_zip = self.truncated or zipfile.is_zipfile(path)
        self.detail = _ANSI_ESCAPE.sub("", str(error)) or type(error).__name__
        self.reason = (self.detail.strip().splitlines() or [type(error).__name__])[0]
        if self.truncated:
            self.reason = "the file is truncated or damaged (a PyTorch zip archive without its end)"
        elif self.refused:
            self.reason = _refusal_reason(self.detail)
        super().__init__(f"cannot read {what} safely: {self.reason}", path)

    @property
    def refused(self) -> bool:
        """True when the file is a PyTorch (zip) file that torch refused because it references objects
        outside the safe set (torch words other failures of a weights-only load alike)."""
        return (self.is_torch_zip and not self.truncated
                and ("Weights only load failed" in self.detail or "Unsupported" in self.detail))


def _refusal_reason(detail: str) -> str:
    """The line of torch's (long, multi-line) refusal message that names what the file needs."""
    for line in detail.splitlines():
        line = line.strip()
        if "Unsupported global" in line or "GLOBAL" in line:
            return line.rstrip(".")
    return "it references objects outside the allowed set"


def _starts_as_zip(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(_ZIP_MAGIC)) == _ZIP_MAGIC
    except OSError:
        return False


def load_torch_file(path: PathLike, *, what: str = "checkpoint",
                    map_location: Optional[Union[str, torch.device]] = "cpu") -> Any:
    """Read a file written by ``torch.save`` without running code from it.

    Args:
        path: the file.
        what: what the file is, for messages (``"checkpoint"``, ``"person detector weights file"``).
        map_location: where tensors are put (``torch.load``'s argument).

    Raises:
        AvaDetectError: a file that cannot be opened, said as it is (``"<what> not found"``, ``"... is a
            folder"``, ``"cannot read the <what>: permission denied"``); :class:`UnreadableTorchFile`
            when torch cannot read its contents safely.
    """
    path = Path(path)
    try:
        f = open(path, "rb")
    except OSError as e:
        raise unreadable_file_error(e, path, what) from None
    with f:
        try:
            return torch.load(f, map_location=map_location, weights_only=True)
        except OSError as e:  # a read error mid-file (I/O error), not bad contents
            raise unreadable_file_error(e, path, what) from None
        except Exception as e:  # UnpicklingError (refused or not torch), RuntimeError / EOFError on garbage, ...
            raise UnreadableTorchFile(path, e, what) from None


def save_torch_file(path: PathLike, obj: Any) -> None:
    """``torch.save(obj)`` to ``path`` atomically (a temporary name in the same folder, then a rename)."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
