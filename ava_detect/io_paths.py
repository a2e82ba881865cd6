"""What a command reads and writes, declared once and checked before any work starts.

Every command (and the library function behind it) lists its inputs, its output files and its
output folders in an :class:`IOPaths`, then calls :meth:`IOPaths.check`. The check refuses, with
one :class:`~ava_detect.errors.AvaDetectError` naming the path and the flag:

* an output that is one of the inputs: the same path, or the same file reached through another
  path, a symbolic link or a hard link (an input is never overwritten);
* an output folder that is an input folder, or one that holds an input file that it writes
  under the same name;
* the same output named twice;
* an output file that is an existing folder, and an output folder that is an existing file;
* an output whose folder cannot exist (a file is in the way: ``notes.txt/out.csv``) or cannot be
  written (permission denied, read-only file system) -- found by creating and removing a hidden
  probe file in the nearest existing folder, which is what the real write would need;
* an input that exists but cannot be read.

Missing inputs are left to their readers, which know what the file is and say so.

Example::

    IOPaths().input("--gt", args.gt).input("--pred", args.pred) \\
        .output("--json", args.json).folder("--plots", args.plots, writes=PLOT_FILES).check()
"""

from __future__ import annotations

import errno
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Sequence, Tuple, Union

from ava_detect.errors import AvaDetectError
from ava_detect.io import PathLike

_Paths = Union[None, PathLike, Sequence[PathLike]]


@dataclass(frozen=True)
class _Entry:
    label: str
    path: Path


def _entries(label: str, paths: _Paths) -> List[_Entry]:
    if paths is None:
        return []
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    return [_Entry(label, Path(p)) for p in paths if p is not None and os.fspath(p) != ""]


def _identity(path: Path) -> Optional[Tuple[int, int]]:
    """(device, inode) of an existing path (through links), else None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _same(a: Path, b: Path) -> bool:
    """Whether two paths name the same file or folder: same resolved path, or same inode (hard links)."""
    if a.resolve() == b.resolve():
        return True
    ia = _identity(a)
    return ia is not None and ia == _identity(b)


def _named(entry: _Entry, shown: Path) -> str:
    """``--gt`` or ``--gt (data/gt.csv)`` when the path differs from the one the message starts with."""
    return entry.label if os.fspath(entry.path) == os.fspath(shown) else f"{entry.label} ({entry.path})"


def _nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (``lexists``: a dangling link counts)."""
    path = Path(os.path.abspath(path))
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def _why_not_writable(folder: Path) -> Optional[str]:
    """None if a file can be created in ``folder`` (an existing folder), else why not."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".ava-detect-write-check.", dir=folder)
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EPERM):
            return "permission denied"
        if e.errno == errno.EROFS:
            return "read-only file system"
        return e.strerror or str(e)
    os.close(fd)
    os.unlink(probe)
    return None


def check_writable_location(path: PathLike, label: str = "output", *, is_folder: bool = False) -> None:
    """Refuse an output location that cannot be written: a folder in the way of a file (or a file
    in the way of a folder), a file where a parent folder should be, or a folder that cannot be
    written to. Folders that do not exist yet are fine (they are created), if they can be.

    Raises:
        AvaDetectError: naming ``path``, ``label`` and what is wrong.
    """
    path = Path(path)
    what = "folder" if is_folder else "file"
    if path.is_dir() and not is_folder:
        raise AvaDetectError(f"{label} is a folder; expected a file name", path)
    if path.exists() and not path.is_dir() and is_folder:
        raise AvaDetectError(f"{label} is a file; expected a folder", path)
    start = path if (is_folder and path.is_dir()) else path.parent
    nearest = _nearest_existing(start)
    if not nearest.is_dir():
        raise AvaDetectError(f"cannot write the {label} {what}: {nearest} is a file, not a folder", path)
    why = _why_not_writable(nearest)
    if why is not None:
        where = "" if nearest == Path(os.path.abspath(start)) else f" (in {nearest}, the nearest existing folder)"
        raise AvaDetectError(f"cannot write the {label} {what}: {why}{where}", path)


@dataclass
class IOPaths:
    """A command's inputs, output files and output folders (see the module docstring).

    Each method takes a label (the flag or config key the user set, for messages) and a path, a list
    of paths, or None (not given: nothing to check); they return ``self`` so that calls chain.
    """

    inputs: List[_Entry] = field(default_factory=list)
    outputs: List[_Entry] = field(default_factory=list)
    folders: List[Tuple[_Entry, Tuple[str, ...]]] = field(default_factory=list)

    def input(self, label: str, paths: _Paths) -> "IOPaths":
        """Files or folders the command reads (names that are not paths, e.g. published weights, are
        fine: only existing paths are compared)."""
        self.inputs += _entries(label, paths)
        return self

    def output(self, label: str, paths: _Paths) -> "IOPaths":
        """Files the command writes (whole files, replaced atomically)."""
        self.outputs += _entries(label, paths)
        return self

    def folder(self, label: str, paths: _Paths, writes: Iterable[str] = ()) -> "IOPaths":
        """Folders the command writes into, created when missing.

        Args:
            writes: names (relative paths) of the files it writes there; each is also checked as an
                output file (an input of that name in the folder would be overwritten).
        """
        names = tuple(writes)
        for entry in _entries(label, paths):
            self.folders.append((entry, names))
        return self

    def check(self) -> None:
        """Run every check of the module docstring; the first problem found is raised.

        Raises:
            AvaDetectError: one line naming the path, the flag and what to do.
        """
        for entry in self.inputs:
            if entry.path.is_file() and not os.access(entry.path, os.R_OK):
                raise AvaDetectError(f"cannot read {entry.label}: permission denied", entry.path)
        files = list(self.outputs)
        for folder, names in self.folders:
            check_writable_location(folder.path, folder.label, is_folder=True)
            for inp in self.inputs:
                if _same(folder.path, inp.path):
                    raise AvaDetectError(f"{folder.label} is the same folder as {_named(inp, folder.path)}; "
                                         f"refusing to write into an input folder, choose another", folder.path)
            files += [_Entry(f"{folder.label}/{name}", folder.path / name) for name in names]
        seen: List[_Entry] = []
        for out in files:
            for inp in self.inputs:
                if _same(out.path, inp.path):
                    raise AvaDetectError(f"{out.label} is the same file as {_named(inp, out.path)}; refusing to "
                                         f"overwrite the input, choose another output name", out.path)
            for other in seen:
                if _same(out.path, other.path):
                    raise AvaDetectError(f"{out.label} and {other.label} are the same file; give each output "
                                         f"its own name", out.path)
            seen.append(out)
            check_writable_location(out.path, out.label)


def files_of(paths: Iterable[PathLike], in_folder: Callable[[Path], List[Path]], *, none_in_folder: str,
             missing: str) -> List[Path]:
    """The files a command is given as ``paths``: files as they are, folders -> ``in_folder(folder)``
    (e.g. its videos); each file once, in order.

    Raises:
        AvaDetectError: a path that does not exist (``missing``) or a folder without such files
            (``none_in_folder``), naming the path.
    """
    files: List[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = in_folder(p)
            if not found:
                raise AvaDetectError(none_in_folder, p)
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            raise AvaDetectError(missing, p)
    return list(dict.fromkeys(files))
