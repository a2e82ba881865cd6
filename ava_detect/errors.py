"""The one exception type for problems a person has to fix (bad files, configs, arguments)."""

from __future__ import annotations

import os
from typing import Optional

from ava_detect.io import PathLike


class AvaDetectError(Exception):
    """Bad input: says what was expected, what was found, and where.

    Args:
        message: what is wrong and what was expected, e.g. ``"expected 7 or 8 columns, found 5"``.
        path: the file the problem is in, if any.
        line: 1-based line number inside ``path``, if the problem is in one row.

    ``str(err)`` is one line: ``"path:line: message"`` (parts that are unknown are left out).
    The CLI prints exactly that and exits with status 2.
    """

    def __init__(self, message: str, path: Optional[PathLike] = None, line: Optional[int] = None):
        self.message = message
        self.path = os.fspath(path) if path is not None else None
        self.line = line
        super().__init__(self._format())

    def _format(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path if self.line is None else f"{self.path}:{self.line}"
            where += ": "
        return where + self.message
