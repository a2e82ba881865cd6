"""Atomic file output: results are written to a temporary name and renamed into place.

A crash or a kill while writing leaves either the previous file or no file, never a
half-written one. What a kill leaves is a hidden temporary file (``.<stem>.<pid>.<random>.tmp<suffix>``);
the next write of the same path removes those whose process is gone (:func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import IO, Iterator, List, Tuple, Union

PathLike = Union[str, "os.PathLike[str]"]

logger = logging.getLogger(__name__)


#: When this process started (close enough: when this module was imported). Temporary files older
#: than that can only be another process's.
_PROCESS_START = time.time()


def _temporary_pattern(path: Path) -> "re.Pattern[str]":
    """Names of the temporary files of ``path``: ``.<stem>.<pid>.<random>.tmp<suffix>``, and the
    ``.<stem>.<random>.tmp<suffix>`` of earlier versions (no pid); ``pid`` is a group."""
    return re.compile(rf"\.{re.escape(path.stem)}\.(?:(\d+)\.)?[A-Za-z0-9_]{{8}}\.tmp{re.escape(path.suffix)}")


def _process_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill there ends the process: never ask, keep its files
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # exists under another user (or cannot be asked): leave its files alone
    return True


def remove_stale_temporaries(path: PathLike) -> List[Path]:
    """Remove what killed writers of ``path`` left behind: its temporary files (and folders, see
    :func:`temporary_dir_for`) whose process is gone and that are older than this process.

    A temporary of another final path is never touched (the name must be exactly ``path``'s pattern);
    neither is one of a process that still runs, nor one made after this process started (another
    machine writing to a shared folder). Names without a pid (earlier versions) go by age alone.
    Called before each write of ``path``, so a rerun cleans up after an interrupted run.

    Returns:
        The paths removed.
    """
    path = Path(path)
    pattern = _temporary_pattern(path)
    removed = []
    try:
        candidates = [p for p in path.parent.iterdir() if pattern.fullmatch(p.name)]
    except OSError:
        return removed
    for p in candidates:
        pid = pattern.fullmatch(p.name).group(1)
        try:
            if (pid is not None and _process_alive(int(pid))) or p.lstat().st_mtime >= _PROCESS_START:
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
        except OSError:
            continue  # gone meanwhile, or not ours to remove
        logger.info("removed %s, left by an interrupted write of %s", p, path.name)
        removed.append(p)
    return removed


def _temporary_name_parts(path: Path) -> Tuple[str, str]:
    return f".{path.stem}.{os.getpid()}.", f".tmp{path.suffix}"


def temporary_path_for(path: PathLike) -> Path:
    """A fresh, unused temporary path in the same folder as ``path`` (same file system,
    so ``os.replace`` is atomic), named ``.<stem>.<pid>.<random>.tmp<suffix>``. The suffix is
    kept so that tools that pick a format from the extension (PyAV, matplotlib) still do.
    Temporaries of ``path`` left by killed processes are removed first
    (:func:`remove_stale_temporaries`)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        prefix, suffix = _temporary_name_parts(path)
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    except OSError as e:  # the declared outputs were checked up front (io_paths); this says why, late
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
    blocker = next((p for p in Path(os.path.abspath(path)).parents if os.path.lexists(p)), None)
    if blocker is not None and not blocker.is_dir():
        reason = f"{blocker} is a file, not a folder"
    return AvaDetectError(f"cannot write: {reason}", path)


def temporary_dir_for(path: PathLike) -> Path:
    """:func:`temporary_path_for` for a folder written whole and renamed into place at the end
    (``.<name>.<pid>.<random>.tmp``); stale ones of killed processes are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    prefix, suffix = _temporary_name_parts(path)
    return Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=path.parent))


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
