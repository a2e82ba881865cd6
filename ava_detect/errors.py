"""The one exception type for problems a person has to fix (bad files, configs, arguments)."""

from __future__ import annotations

import errno
import os
from typing import Optional

from ava_detect.io import PathLike


def one_line(text: str) -> str:
    """``text`` on one line: its non-blank lines, stripped, joined with ``"; "``.

    The messages of libraries we pass on (torch, PyAV, yaml) often span lines; an error of ours
    is printed as exactly one line."""
    lines = [line.strip() for line in str(text).splitlines()]
    return "; ".join(line for line in lines if line)


class AvaDetectError(Exception):
    """Bad input: says what was expected, what was found, and where.

    Args:
        message: what is wrong and what was expected, e.g. ``"expected 7 or 8 columns, found 5"``.
            Line breaks in it become ``"; "`` (:func:`one_line`).
        path: the file the problem is in, if any.
        line: 1-based line number inside ``path``, if the problem is in one row.

    ``str(err)`` is one line: ``"path:line: message"`` (parts that are unknown are left out; line
    breaks in a path are shown as ``\\n``). The CLI prints exactly that and exits with status 2.
    """

    def __init__(self, message: str, path: Optional[PathLike] = None, line: Optional[int] = None):
        self.message = one_line(message)
        self.path = os.fspath(path) if path is not None else None
        self.line = line
        super().__init__(self._format())

    def _format(self) -> str:
        where = ""
        if self.path is not None:
            shown = self.path.replace("\r", "\\r").replace("\n", "\\n")
            where = shown if self.line is None else f"{shown}:{self.line}"
            where += ": "
        return where + self.message


def unreadable_file_error(error: OSError, path: PathLike, what: str = "file") -> AvaDetectError:
    """The error to raise when opening or reading ``path`` failed with ``error``: says what happened
    (not found, a folder, permission denied, ...), never that the contents are bad.

    Args:
        what: what the file is, for the message (``"label map"``, ``"checkpoint"``, ...).
    """
    if isinstance(error, FileNotFoundError):
        return AvaDetectError(f"{what} not found", path)
    if isinstance(error, IsADirectoryError):
        return AvaDetectError(f"{what} is a folder, expected a file", path)
    if isinstance(error, PermissionError) or error.errno in (errno.EACCES, errno.EPERM):
        return AvaDetectError(f"cannot read the {what}: permission denied", path)
    return AvaDetectError(f"cannot read the {what}: {error.strerror or error}", path)
