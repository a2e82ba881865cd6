"""The one policy for reading text inputs (CSVs, label maps, YAML configs, frame and video lists).

* UTF-8. A leading byte-order mark is accepted and removed (spreadsheet programs write one);
  it must never end up inside the first video id or key.
* Line ends ``\\n``, ``\\r\\n`` or ``\\r`` are all accepted and become ``\\n`` (Python's universal
  newlines), so line numbers are the same whatever wrote the file.
* Anything else is an :class:`~ava_detect.errors.AvaDetectError` that names the file and the
  line: bytes that are not UTF-8 (with the first bad byte), UTF-16/32 text, NUL bytes (a binary
  file). A file that cannot be read (missing, a folder, permission denied) is one error naming it.
"""

from __future__ import annotations

import codecs

from ava_detect.errors import AvaDetectError, unreadable_file_error
from ava_detect.io import PathLike

_UTF8_BOM = codecs.BOM_UTF8
_OTHER_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),  # before UTF-16: same first bytes
    (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"),
)


def read_bytes(path: PathLike, what: str = "file") -> bytes:
    """The bytes of ``path``; a missing file, a folder or an unreadable file is one error naming it.

    Args:
        what: what the file is, for the message (``"label map"``, ``"config file"``, ...).
    """
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise unreadable_file_error(e, path, what) from None


def decode_text(data: bytes, path: PathLike, what: str = "file") -> str:
    """Decode the bytes of a text input by the policy of this module (see the module docstring)."""
    for bom, name in _OTHER_BOMS:
        if data.startswith(bom):
            raise AvaDetectError(f"{what} is {name} text; expected UTF-8 (save it as UTF-8)", path, 1)
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = _line_of(data, e.start)
        raise AvaDetectError(
            f"{what} is not UTF-8 text: byte 0x{data[e.start]:02x} at column {e.start - _line_start(data, e.start) + 1} "
            f"cannot be decoded (save it as UTF-8)", path, line,
        ) from None
    nul = text.find("\0")
    if nul >= 0:
        raise AvaDetectError(f"{what} contains a NUL byte: a binary file, not text", path,
                             _line_of(data, data.find(b"\0")))
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def read_text(path: PathLike, what: str = "file") -> str:
    """Read a text input: :func:`read_bytes` then :func:`decode_text`.

    Returns:
        The text without a byte-order mark, with ``\\n`` line ends.

    Raises:
        AvaDetectError: unreadable file (naming it) or not UTF-8 text (naming the line).
    """
    return decode_text(read_bytes(path, what), path, what)


def _line_start(data: bytes, offset: int) -> int:
    return max(data.rfind(b"\n", 0, offset), data.rfind(b"\r", 0, offset)) + 1


def _line_of(data: bytes, offset: int) -> int:
    """1-based line of byte ``offset``, counting ``\\n``, ``\\r\\n`` and ``\\r`` as one line end each."""
    head = data[:offset]
    return head.count(b"\n") + head.count(b"\r") - head.count(b"\r\n") + 1

