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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as e:  # the declared outputs were checked up front (io_paths); this says why, late
        from ava_detect.io_paths import check_writable_location

        check_writable_location(path)
        raise _cannot_write(path, e) from None
    os.close(fd)
    # mkstemp makes the file private (0600); give it the permissions a normal open() would
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return Path(tmp)


def _cannot_write(path: Path, why) -> Exception:
    from ava_detect.errors import AvaDetectError  # (errors imports this module)

    reason = why if isinstance(why, str) else (why.strerror or str(why)).lower()
    return AvaDetectError(f"cannot write: {reason}", path)


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
        try:
            os.replace(tmp, path)
        except IsADirectoryError:
            raise _cannot_write(path, "a folder of that name is in the way") from None
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
