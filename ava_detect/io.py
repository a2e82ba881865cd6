"""Atomic file output: results are written to a temporary name and renamed into place.

A crash or a kill while writing leaves either the previous file or no file, never a
half-written one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator, Union

PathLike = Union[str, "os.PathLike[str]"]


def temporary_path_for(path: PathLike) -> Path:
    """A fresh, unused temporary path in the same folder as ``path`` (same file system,
    so ``os.replace`` is atomic). The suffix is kept so that tools that pick a format
    from the extension (PyAV, matplotlib) still do."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    # mkstemp makes the file private (0600); give it the permissions a normal open() would
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path to write to; on success it replaces ``path``, on error it is removed.

    Example::

        with atomic_path("out.mp4") as tmp:
            write_video(tmp)
    """
    path = Path(path)
    tmp = temporary_path_for(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """``open()`` for writing that only replaces ``path`` once the ``with`` block succeeds.

    ``mode`` must be a write mode (``"w"`` or ``"wb"``). The data is flushed and fsynced
    before the rename.
    """
    if mode not in ("w", "wb", "wt"):
        raise ValueError(f"atomic_open only writes whole files, got mode {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
