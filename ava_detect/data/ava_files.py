"""Readers and writers for the AVA file formats.

Formats (AVA v2.2, coordinates normalised to [0, 1], no header line):

* ground truth: ``video_id,timestamp,x1,y1,x2,y2,action_id[,person_id]`` (7 or 8 columns)
* predicted person boxes: ``video_id,timestamp,x1,y1,x2,y2,,score`` (the action column is empty;
  a value there is ignored, as PySlowFast does)
* detection results: ``video_id,timestamp,x1,y1,x2,y2,action_id,score``
* excluded timestamps: ``video_id,timestamp``
* label maps: ``label { name label_id label_type }`` (all 80 classes) or
  ``item { name id }`` (the 60 evaluated classes)
* PySlowFast frame lists: a header, then space-separated
  ``original_vido_id video_id frame_id path labels``
* the video file-name list: one file name per line (``-5KQ66BBWC4.mkv``)

Readers return :class:`pandas.DataFrame` objects with named columns, one row per CSV row,
in file order (exact duplicate rows merged), plus a ``line`` column (1-based line number in
the file) so later checks can point at the row. ``video_id`` is a categorical column.
:func:`group_boxes` turns rows into one row per box: rows with identical coordinates at one
key are one box carrying several labels.

Every reader reads its file with the one text policy of :mod:`ava_detect.text` (UTF-8, a
leading byte-order mark removed, any line ends). Video ids are names, never paths (see
:func:`video_id_problem`): a row whose id is not is an error. Writers refuse such ids before
writing anything, so every CSV written here is read back by these readers and by Python's
``csv`` module unchanged.

Bad rows raise :class:`~ava_detect.errors.AvaDetectError` naming the file, the line and the
problem. Reading is vectorised (pandas' C parser); a precise row-by-row diagnosis runs only
when something is wrong.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

import numpy as np
import pandas as pd

from ava_detect.errors import AvaDetectError
from ava_detect.io import atomic_open
from ava_detect.structures import image_key
from ava_detect.text import read_text
from ava_detect.io import PathLike

logger = logging.getLogger(__name__)

#: Coordinates may lie this far outside [0, 1] (rounding in the published files); they are clipped.
COORD_TOLERANCE = 1e-3
BOX_COLUMNS = ["x1", "y1", "x2", "y2"]

_KINDS = {
    # kind: (column names, minimum number of columns, description for errors)
    "ground_truth": (
        ["video_id", "second", "x1", "y1", "x2", "y2", "action_id", "person_id"],
        7,
        "video_id,timestamp,x1,y1,x2,y2,action_id[,person_id]",
    ),
    "boxes": (
        ["video_id", "second", "x1", "y1", "x2", "y2", "action_id", "score"],
        8,
        "video_id,timestamp,x1,y1,x2,y2,,score",
    ),
    "detections": (
        ["video_id", "second", "x1", "y1", "x2", "y2", "action_id", "score"],
        8,
        "video_id,timestamp,x1,y1,x2,y2,action_id,score",
    ),
}

#: Class ids, person ids and timestamps must fit a signed 32-bit integer.
MAX_ID = 2**31 - 1


# --------------------------------------------------------------------------------------
# Video ids
# --------------------------------------------------------------------------------------

_CSV_SPECIAL = {",": "a comma", '"': "a double quote"}


def video_id_problem(video_id: str) -> Optional[str]:
    """Why ``video_id`` is not a valid video id, or None when it is.

    A video id is a file name without its suffix (``-5KQ66BBWC4``, ``my clip 2``): not empty,
    no path separator (``/`` or ``\\``), not ``.`` or ``..``, no control character (newline,
    NUL, ...), no leading or trailing blank, and no comma or double quote (a CSV cell and the
    ``video,SSSS`` image key must hold it unquoted). So an id from a data file can never open a
    file outside its dataset folder, and every row we write reads back unchanged.
    """
    if video_id == "" or video_id.strip() == "":
        return "video id is empty"
    if video_id != video_id.strip():
        return f"video id {video_id!r} has leading or trailing blanks"
    if video_id in (".", ".."):
        return f"video id {video_id!r} is a path, not a name"
    for ch in video_id:
        if ch in "/\\":
            return f"video id {video_id!r} is a path, not a name (it contains {ch!r})"
        if ch in _CSV_SPECIAL:
            return f"video id {video_id!r} contains {_CSV_SPECIAL[ch]}"
        if ord(ch) < 32 or ord(ch) == 127:
            return f"video id {video_id!r} contains a control character"
    return None


def check_video_id(video_id: str, path: Optional[PathLike] = None, line: Optional[int] = None) -> str:
    """Return ``video_id`` if it is a valid video id (see :func:`video_id_problem`), else raise.

    Raises:
        AvaDetectError: naming ``path:line`` when given.
    """
    problem = video_id_problem(video_id)
    if problem is not None:
        raise AvaDetectError(f"{problem}; expected a video name (no path, comma, quote or control character)",
                             path, line)
    return video_id


def _check_video_ids(ids: Iterable[object], path: PathLike) -> None:
    """Writers: refuse the first invalid id before anything is written."""
    for video_id in dict.fromkeys(str(v) for v in ids):
        problem = video_id_problem(video_id)
        if problem is not None:
            raise AvaDetectError(f"cannot write {problem}: video ids must be names (no path, comma, quote "
                                 f"or control character)", path)


# --------------------------------------------------------------------------------------
# Label maps
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelMap:
    """An action label map.

    Attributes:
        ids: class ids in file order (AVA: 1..80, or the 60 evaluated ones).
        names: id -> display name.
        types: id -> label type (``PERSON_MOVEMENT``, ``OBJECT_MANIPULATION``,
            ``PERSON_INTERACTION``); empty for the ``item { name id }`` dialect.
        path: the file it was read from, if any.
    """

    ids: Tuple[int, ...]
    names: Dict[int, str]
    types: Dict[int, str] = field(default_factory=dict)
    path: Optional[str] = None

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, class_id: object) -> bool:
        return class_id in self.names

    def name(self, class_id: int) -> str:
        return self.names[class_id]


_PBTXT_TOKEN = re.compile(r'\s*(?:(#[^\n]*)|([A-Za-z_][A-Za-z0-9_]*)|(\{)|(\})|(:)|("(?:[^"\\]|\\.)*")|([^\s{}:"#]+))')


def read_labelmap(path: PathLike) -> LabelMap:
    """Read a label map in either pbtxt dialect.

    ``label { name: "..." label_id: N label_type: T }`` (AVA v2.2, 80 classes) and
    ``item { name: "..." id: N }`` (the official 60-class list) are both accepted.

    Raises:
        AvaDetectError: a syntax error, a block without an id or name, a non-integer id,
            or an id that appears twice (with the line of the block).
    """
    path = Path(path)
    text = read_text(path, "label map")

    ids: List[int] = []
    names: Dict[int, str] = {}
    types: Dict[int, str] = {}
    first_line: Dict[int, int] = {}
    pos, n = 0, len(text)

    def line_of(offset: int) -> int:
        return text.count("\n", 0, offset) + 1

    def start_of(m: "re.Match[str]") -> int:  # position of the token itself, after its leading blanks
        return m.end() - len(m.group(0).lstrip())

    def next_token(start: int):
        m = _PBTXT_TOKEN.match(text, start)
        while m and m.group(1) is not None:  # comment
            m = _PBTXT_TOKEN.match(text, m.end())
        return m

    while True:
        m = next_token(pos)
        if m is None or m.end() == pos and pos >= n:
            break
        if m.group(0).strip() == "":
            break
        if m.group(2) not in ("label", "item"):
            raise AvaDetectError(
                f"expected a 'label {{' or 'item {{' block, found {m.group(0).strip()!r}", path, line_of(start_of(m))
            )
        block_start = start_of(m)
        m = next_token(m.end())
        if m is None or m.group(3) is None:
            raise AvaDetectError("expected '{' after the block name", path, line_of(block_start))
        pos = m.end()
        fields: Dict[str, Tuple[str, int]] = {}
        while True:
            m = next_token(pos)
            if m is None or m.group(0).strip() == "":
                raise AvaDetectError("block is not closed with '}'", path, line_of(block_start))
            if m.group(4) is not None:
                pos = m.end()
                break
            if m.group(2) is None:
                raise AvaDetectError(f"expected a field name, found {m.group(0).strip()!r}", path, line_of(start_of(m)))
            key, key_pos = m.group(2), start_of(m)
            m = next_token(m.end())
            if m is None or m.group(5) is None:
                raise AvaDetectError(f"expected ':' after {key!r}", path, line_of(key_pos))
            m = next_token(m.end())
            if m is None or (m.group(6) is None and m.group(7) is None and m.group(2) is None):
                raise AvaDetectError(f"expected a value for {key!r}", path, line_of(key_pos))
            value = m.group(6)[1:-1] if m.group(6) is not None else m.group(0).strip()
            if key in fields:
                raise AvaDetectError(f"field {key!r} given twice in one block (first on line {fields[key][1]})",
                                     path, line_of(key_pos))
            fields[key] = (value, line_of(key_pos))
            pos = m.end()

        block_line = line_of(block_start)
        class_id = _block_class_id(fields, path, block_line)
        if "name" not in fields:
            raise AvaDetectError(f"class {class_id} has no 'name'", path, block_line)
        if not fields["name"][0].strip():
            raise AvaDetectError(f"class {class_id} has an empty 'name'", path, fields["name"][1])
        id_line = (fields.get("label_id") or fields["id"])[1]
        if class_id in names:
            raise AvaDetectError(f"duplicate class id {class_id} (first on line {first_line[class_id]})", path, id_line)
        first_line[class_id] = id_line
        ids.append(class_id)
        names[class_id] = fields["name"][0]
        if "label_type" in fields:
            types[class_id] = fields["label_type"][0]

    if not ids:
        raise AvaDetectError("label map has no classes", path)
    return LabelMap(ids=tuple(ids), names=names, types=types, path=str(path))


def _block_class_id(fields: Dict[str, Tuple[str, int]], path: Path, block_line: int) -> int:
    """The class id of one label-map block: ``label_id`` or ``id`` (both only if equal), a whole
    number in ``0..MAX_ID``."""
    found = {key: fields[key] for key in ("label_id", "id") if key in fields}
    if not found:
        raise AvaDetectError("block has no 'label_id' or 'id'", path, block_line)
    ids = {}
    for key, (value, line) in found.items():
        if not re.fullmatch(r"[0-9]+", value):
            raise AvaDetectError(f"{key} must be an integer >= 0, found {value!r}", path, line)
        if len(value.lstrip("0")) > len(str(MAX_ID)) or int(value) > MAX_ID:
            raise AvaDetectError(f"{key} {value} is too large (at most {MAX_ID})", path, line)
        ids[key] = int(value)
    if len(set(ids.values())) > 1:
        raise AvaDetectError(f"block has label_id {ids['label_id']} and id {ids['id']}; give one, or equal ones",
                             path, found["id"][1])
    return next(iter(ids.values()))


def write_labelmap(path: PathLike, labelmap: LabelMap) -> None:
    """Write ``labelmap`` in the ``label { name label_id label_type }`` dialect when it has
    types, else in the ``item { name id }`` dialect."""
    lines = []
    for class_id in labelmap.ids:
        name = labelmap.names[class_id].replace("\\", "\\\\").replace('"', '\\"')
        if labelmap.types:
            lines += ["label {", f'  name: "{name}"', f"  label_id: {class_id}"]
            lines += [f"  label_type: {labelmap.types.get(class_id, 'PERSON_MOVEMENT')}", "}"]
        else:
            lines += ["item {", f'  name: "{name}"', f"  id: {class_id}", "}"]
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------
# Box CSVs
# --------------------------------------------------------------------------------------


def _raw_line(path: Path, lineno: int) -> str:
    """Line ``lineno`` (1-based) of a text input, for error messages."""
    lines = read_text(path).split("\n")
    return lines[lineno - 1] if 0 < lineno <= len(lines) else ""


def _diagnose(text: str, path: Path, kind: str) -> AvaDetectError:
    """Find the first bad row of a file the fast reader could not parse, row by row."""
    names, min_cols, layout = _KINDS[kind]
    for lineno, row in enumerate(csv.reader(io.StringIO(text, newline="")), start=1):
        if not row or all(not c.strip() for c in row):
            continue
        if not (min_cols <= len(row) <= len(names)):
            expected = f"{min_cols} or {len(names)}" if min_cols != len(names) else str(len(names))
            return AvaDetectError(
                f"expected {expected} columns ({layout}), found {len(row)}", path, lineno
            )
        for col in range(1, len(row)):
            value = row[col].strip()
            if col == 6 and (kind == "boxes" or value == ""):
                continue
            if col == 7 and kind == "ground_truth" and value == "":
                continue
            try:
                number = float(value)
            except ValueError:
                return AvaDetectError(f"column {col + 1} ({names[col]}) is not a number: {value!r}", path, lineno)
            if not np.isfinite(number):
                return AvaDetectError(
                    f"column {col + 1} ({names[col]}) must be a finite number, found {value!r}", path, lineno
                )
    return AvaDetectError(f"cannot parse as an AVA CSV ({layout})", path)


class _Rows:
    """The columns of a box CSV while it is being checked: numpy arrays, one entry per row.

    ``codes`` index ``names`` (the video ids as written, ``-1`` where the cell is empty);
    ``values`` holds the numeric columns (float64, NaN where empty) by column name.
    """

    __slots__ = ("line", "codes", "names", "values")

    def __init__(self, line: np.ndarray, codes: np.ndarray, names: np.ndarray, values: Dict[str, np.ndarray]):
        self.line = line
        self.codes = codes
        self.names = names
        self.values = values

    def __len__(self) -> int:
        return len(self.line)

    def keep(self, mask: np.ndarray) -> None:
        """Keep only the rows where ``mask`` is True (in place)."""
        self.line = self.line[mask]
        self.codes = self.codes[mask]
        self.values = {k: v[mask] for k, v in self.values.items()}


def _read_box_csv(path: PathLike, kind: str) -> _Rows:
    names, min_cols, layout = _KINDS[kind]
    path = Path(path)
    text = read_text(path, "CSV file")
    dtypes = {name: np.float64 for name in names[1:]}
    dtypes["video_id"] = str
    try:
        # pandas' default float converter gives exactly the float64 that Python's float() gives
        # (what the reference evaluators parse), and lets the C parser use several threads.
        df = pd.read_csv(
            io.StringIO(text, newline=""),
            header=None,
            names=names,
            dtype=dtypes,
            skip_blank_lines=False,
            engine="c",
            na_filter=True,
            keep_default_na=False,
            na_values=[""],
            index_col=False,
        )
    except pd.errors.EmptyDataError:
        df = pd.DataFrame({name: pd.Series(dtype=dtypes[name]) for name in names})
    except (ValueError, pd.errors.ParserError) as e:
        diagnosis = _diagnose(text, path, kind)
        if diagnosis.line is None:
            raise AvaDetectError(f"cannot parse as an AVA CSV ({layout}): {e}", path) from None
        raise diagnosis from None
    del text

    # Video ids become integer codes at once: string operations then run on the few distinct
    # ids, not on every row.
    codes, uniques = pd.factorize(df["video_id"], use_na_sentinel=True)
    rows = _Rows(
        line=np.arange(1, len(df) + 1, dtype=np.int64),
        codes=codes.astype(np.int64, copy=False),
        names=np.asarray(uniques, dtype=object),
        values={name: df[name].to_numpy(dtype=np.float64) for name in names[1:]},
    )
    del df
    blank = rows.codes < 0
    if blank.any():
        for name in names[1:]:
            blank &= np.isnan(rows.values[name])
        if blank.any():
            rows.keep(~blank)
    _validate(rows, path, kind)
    return rows


def _fail(rows: _Rows, mask, path: Path, message: str) -> None:
    mask = np.asarray(mask)
    if mask.any():
        lineno = int(rows.line[np.flatnonzero(mask)[0]])
        count = int(mask.sum())
        more = f" ({count - 1} more such rows)" if count > 1 else ""
        raise AvaDetectError(f"{message}; row: {_raw_line(path, lineno)!r}{more}", path, lineno)


def _not_whole(x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (x != np.floor(x)) | ~np.isfinite(x)


def _validate(rows: _Rows, path: Path, kind: str) -> None:
    names, min_cols, layout = _KINDS[kind]
    required = ["video_id", "second"] + BOX_COLUMNS
    if kind == "ground_truth":
        required.append("action_id")
    elif kind == "detections":
        required += ["action_id", "score"]
    else:
        required.append("score")
    for col in required:
        missing = rows.codes < 0 if col == "video_id" else np.isnan(rows.values[col])
        if missing.any():
            lineno = int(rows.line[np.flatnonzero(missing)[0]])
            raw = _raw_line(path, lineno)
            n_cols = len(next(csv.reader([raw]))) if raw else 0
            if n_cols < min_cols:
                expected = f"{min_cols} or {len(names)}" if min_cols != len(names) else str(len(names))
                msg = f"expected {expected} columns ({layout}), found {n_cols}"
            else:
                msg = f"column {names.index(col) + 1} ({col}) is empty"
            raise AvaDetectError(f"{msg}; row: {raw!r}", path, lineno)

    # Video ids are names, never paths: checked once per distinct id.
    problems = [video_id_problem(str(n).strip()) for n in rows.names]
    bad_name = np.array([p is not None for p in problems], dtype=bool)
    if bad_name.any():
        bad_rows = bad_name[rows.codes]
        first = problems[int(rows.codes[np.flatnonzero(bad_rows)[0]])]
        _fail(rows, bad_rows, path, f"{first}; expected a video name (no path, comma, quote or control character)")
    # Fast path: one comparison per value (NaN fails every comparison); the precise checks
    # below, in the order that decides the message, run only when something is off.
    v = rows.values
    with np.errstate(invalid="ignore"):
        ok = v["second"] >= 0
        ok &= v["second"] == np.floor(v["second"])
        for c in BOX_COLUMNS:
            ok &= v[c] >= -COORD_TOLERANCE
            ok &= v[c] <= 1 + COORD_TOLERANCE
        if "action_id" in required:
            ok &= v["action_id"] == np.floor(v["action_id"])
            ok &= np.abs(v["action_id"]) < np.inf
        if kind == "ground_truth":
            pid = v["person_id"]
            ok &= np.isnan(pid) | ((pid == np.floor(pid)) & (np.abs(pid) < np.inf))
        if "score" in required:
            ok &= np.abs(v["score"]) < np.inf
        ok &= v["second"] <= MAX_ID
        if "action_id" in required:
            ok &= np.abs(v["action_id"]) <= MAX_ID
        if kind == "ground_truth":
            ok &= ~(np.abs(v["person_id"]) > MAX_ID)
    if ok.all():
        return
    second = v["second"]
    with np.errstate(invalid="ignore"):
        _fail(rows, _not_whole(second) | (second < 0), path, "timestamp must be a whole, non-negative second (e.g. 0902)")
        _fail(rows, second > MAX_ID, path, f"timestamp is too large (at most {MAX_ID})")
    coords = [v[c] for c in BOX_COLUMNS]
    bad = np.zeros(len(rows), dtype=bool)
    for c in coords:
        bad |= ~np.isfinite(c)
    _fail(rows, bad, path, "box coordinates must be finite numbers")
    for c in coords:
        bad |= (c < -COORD_TOLERANCE) | (c > 1 + COORD_TOLERANCE)
    _fail(rows, bad, path, f"box coordinates must be normalised to [0, 1] (tolerance {COORD_TOLERANCE})")
    if "action_id" in required:
        _fail(rows, _not_whole(v["action_id"]), path, "action id must be an integer")
        _fail(rows, np.abs(v["action_id"]) > MAX_ID, path, f"action id is too large (at most {MAX_ID} in size)")
    if kind == "ground_truth":
        pid = v["person_id"]
        _fail(rows, ~np.isnan(pid) & _not_whole(pid), path, "person id must be an integer")
        with np.errstate(invalid="ignore"):
            _fail(rows, np.abs(pid) > MAX_ID, path, f"person id is too large (at most {MAX_ID} in size)")
    if "score" in required:
        _fail(rows, ~np.isfinite(v["score"]), path, "score must be a finite number (found NaN or infinity)")
    raise AssertionError("validation fast path and precise checks disagree")


def _row_hash(rows: _Rows, columns: Sequence[str]) -> np.ndarray:
    """A 64-bit hash of each row's video code and ``columns`` (equal rows, equal hashes)."""
    h = rows.codes.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    for name in columns:
        bits = (rows.values[name] + 0.0).view(np.uint64)  # + 0.0 turns -0.0 into 0.0
        h ^= bits + np.uint64(0x9E3779B97F4A7C15) + (h << np.uint64(6)) + (h >> np.uint64(2))
    return h


def _duplicates(rows: _Rows, columns: Sequence[str]) -> np.ndarray:
    """Rows equal (video id as written and ``columns``) to an earlier row, like
    ``DataFrame.duplicated(keep="first")``. Rows are hashed first; the exact comparison only
    runs on rows whose hash occurs more than once."""
    n = len(rows)
    dup = np.zeros(n, dtype=bool)
    if n < 2:
        return dup
    candidates = np.flatnonzero(pd.Series(_row_hash(rows, columns)).duplicated(keep=False).to_numpy())
    if len(candidates):
        table = pd.DataFrame({"video": rows.codes[candidates], **{c: rows.values[c][candidates] for c in columns}})
        dup[candidates] = table.duplicated(keep="first").to_numpy()
    return dup


def _finish(rows: _Rows, path: Path, kind: str, labelmap: Optional[LabelMap], degenerate: str,
            raw: bool = False) -> pd.DataFrame:
    """Clip, check box extents, drop unknown actions and exact duplicates, set final dtypes.

    ``raw=True`` keeps the rows as written (no clipping, duplicates kept); ``degenerate="keep"``
    keeps boxes with x2 <= x1 or y2 <= y1.
    """
    v = rows.values
    if not raw:
        for c in BOX_COLUMNS:
            v[c] = np.clip(v[c], 0.0, 1.0)
    keep = np.ones(len(rows), dtype=bool)
    empty = (v["x2"] <= v["x1"]) | (v["y2"] <= v["y1"])
    if empty.any() and degenerate != "keep":
        if degenerate == "error":
            _fail(rows, empty, path, "box must have x2 > x1 and y2 > y1")
        logger.warning("%s: dropped %d rows whose box has x2 <= x1 or y2 <= y1", path, int(empty.sum()))
        keep &= ~empty

    if kind == "ground_truth":
        v["person_id"] = np.where(np.isnan(v["person_id"]), -1.0, v["person_id"])
    if labelmap is not None and kind != "boxes":
        known = np.isin(v["action_id"], np.asarray(labelmap.ids, dtype=np.float64))
        unknown_kept = keep & ~known
        if unknown_kept.any():
            unknown = np.unique(v["action_id"][unknown_kept]).astype(np.int64)
            shown = ", ".join(str(i) for i in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
            logger.warning(
                "%s: skipped %d rows whose action id is not in the label map %s (ids: %s)",
                path, int(unknown_kept.sum()), labelmap.path or "", shown,
            )
            keep &= known
    if not keep.all():
        rows.keep(keep)

    value_cols = [c for c in _KINDS[kind][0][1:] if not (kind == "boxes" and c == "action_id")]
    if not raw:
        dup = _duplicates(rows, value_cols)
        if dup.any():
            logger.info("%s: merged %d exact duplicate rows", path, int(dup.sum()))
            rows.keep(~dup)

    v = rows.values
    # Video ids: stripped, equal ones merged, categories sorted (as ``astype("category")`` makes them).
    stripped = np.array([str(n).strip() for n in rows.names], dtype=object)
    categories = np.unique(stripped) if len(stripped) else np.array([], dtype=object)
    remap = np.searchsorted(categories, stripped).astype(np.int64) if len(stripped) else np.zeros(0, np.int64)
    video = pd.Categorical.from_codes(remap[rows.codes] if len(rows) else np.zeros(0, np.int64),
                                      categories=pd.Index(categories, dtype=object))
    out = {"line": rows.line, "video_id": video, "second": v["second"].astype(np.int64)}
    for c in BOX_COLUMNS:
        out[c] = v[c]
    if kind != "boxes":
        out["action_id"] = v["action_id"].astype(np.int64)
    if kind == "ground_truth":
        out["person_id"] = v["person_id"].astype(np.int64)
    else:
        out["score"] = v["score"]
    return pd.DataFrame(out, copy=False)  # the arrays are ours: no copy


def read_ground_truth(path: PathLike, labelmap: Optional[LabelMap] = None, *, raw: bool = False) -> pd.DataFrame:
    """Read an AVA ground-truth CSV (7 or 8 columns).

    Args:
        path: the CSV file.
        labelmap: rows whose action is not in it are skipped with one warning counting them.
        raw: keep the rows exactly as written: coordinates within the tolerance are not clipped
            and exact duplicate rows are kept (what the reference evaluators count). Validation
            is the same.

    Returns:
        DataFrame with columns ``line, video_id (category), second (int64), x1, y1, x2, y2
        (float64, normalised, clipped to [0,1]), action_id (int64), person_id (int64, -1 when
        the file has no person ids)``; one row per (box, action). Rows whose action is not in
        ``labelmap`` are skipped with one warning counting them; exact duplicate rows are merged.

    Raises:
        AvaDetectError: a malformed row (column count, non-number, coordinate outside [0,1]
            beyond 1e-3, x2 <= x1 or y2 <= y1, bad timestamp, non-integer action id), with file:line.
    """
    path = Path(path)
    rows = _read_box_csv(path, "ground_truth")
    return _finish(rows, path, "ground_truth", labelmap, degenerate="error", raw=raw)


def read_predicted_boxes(path: PathLike, degenerate: str = "drop") -> pd.DataFrame:
    """Read a predicted person-box CSV (``video_id,timestamp,x1,y1,x2,y2,,score``).

    Returns:
        DataFrame with columns ``line, video_id, second, x1, y1, x2, y2, score``.
        Boxes with x2 <= x1 or y2 <= y1 are dropped with one warning (``degenerate="drop"``)
        or raise (``degenerate="error"``).
    """
    path = Path(path)
    rows = _read_box_csv(path, "boxes")
    return _finish(rows, path, "boxes", None, degenerate=degenerate)


def read_detections(
    path: PathLike, labelmap: Optional[LabelMap] = None, degenerate: str = "drop", *, raw: bool = False
) -> pd.DataFrame:
    """Read a detection-result CSV (``video_id,timestamp,x1,y1,x2,y2,action_id,score``).

    Args:
        path: the CSV file.
        labelmap: rows whose action is not in it are skipped with one warning counting them.
        degenerate: boxes with x2 <= x1 or y2 <= y1 are dropped with one counting warning
            (``"drop"``, as the reference evaluators drop them), raise (``"error"``) or are
            kept (``"keep"``, for callers that drop them later themselves).
        raw: keep the rows exactly as written: coordinates within the tolerance are not clipped
            and exact duplicate rows are kept (what the reference evaluators see).

    Returns:
        DataFrame with columns ``line, video_id, second, x1, y1, x2, y2, action_id, score``,
        in file order. NaN or infinite scores raise.
    """
    path = Path(path)
    rows = _read_box_csv(path, "detections")
    return _finish(rows, path, "detections", labelmap, degenerate=degenerate, raw=raw)


def group_boxes(df: pd.DataFrame) -> pd.DataFrame:
    """Rows -> one row per distinct box: rows with identical coordinates at one key are one box.

    Args:
        df: the output of :func:`read_ground_truth`, :func:`read_predicted_boxes` or
            :func:`read_detections`.

    Returns:
        DataFrame, in order of first appearance, with columns ``video_id, second, x1, y1, x2, y2``,
        ``labels`` (tuple of action ids in file order, ``()`` for predicted person boxes),
        ``person_id`` (first seen; ground truth only) and ``score`` (maximum; files with scores only).
    """
    keys = ["video_id", "second"] + BOX_COLUMNS
    grouped = df.groupby(keys, sort=False, observed=True)
    out = grouped.size().reset_index()[keys]
    if "action_id" in df.columns:
        out["labels"] = grouped["action_id"].agg(tuple).to_numpy()
    else:
        out["labels"] = [()] * len(out)
    if "person_id" in df.columns:
        out["person_id"] = grouped["person_id"].first().to_numpy()
    if "score" in df.columns:
        out["score"] = grouped["score"].max().to_numpy()
    return out


def _format_rows(df: pd.DataFrame, last: str, coord_digits: int) -> Iterable[str]:
    fmt_c = f"{{:.{coord_digits}f}}"
    cols = [df["video_id"].astype(str).to_numpy(), df["second"].to_numpy()]
    coords = df[BOX_COLUMNS].to_numpy(dtype=np.float64)
    if last == "person_id":
        tail = [df["action_id"].to_numpy(), df["person_id"].to_numpy()]
        for v, s, c, a, p in zip(cols[0], cols[1], coords, *tail):
            person = "" if p < 0 else f",{int(p)}"
            yield f"{v},{int(s):04d},{fmt_c.format(c[0])},{fmt_c.format(c[1])},{fmt_c.format(c[2])},{fmt_c.format(c[3])},{int(a)}{person}\n"
    else:
        actions = df["action_id"].to_numpy() if "action_id" in df.columns else None
        scores = df["score"].to_numpy(dtype=np.float64)
        for i, (v, s, c, sc) in enumerate(zip(cols[0], cols[1], coords, scores)):
            action = "" if actions is None else str(int(actions[i]))
            yield f"{v},{int(s):04d},{fmt_c.format(c[0])},{fmt_c.format(c[1])},{fmt_c.format(c[2])},{fmt_c.format(c[3])},{action},{sc:.9g}\n"


def _write_box_rows(path: PathLike, df: pd.DataFrame, last: str, coord_digits: int) -> None:
    """Refuse invalid video ids (nothing written), then write the rows atomically."""
    _check_video_ids(pd.unique(df["video_id"].astype(str)), path)
    _write_rows(path, _format_rows(df, last, coord_digits))


def _write_rows(path: PathLike, lines: Iterable[str]) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        f.writelines(lines)


def write_ground_truth(path: PathLike, df: pd.DataFrame, coord_digits: int = 3) -> None:
    """Write ground-truth rows (columns as :func:`read_ground_truth` returns them; ``person_id``
    < 0 or absent writes 7 columns). Atomic: the file appears complete or not at all."""
    if "person_id" not in df.columns:
        df = df.assign(person_id=-1)
    _write_box_rows(path, df, "person_id", coord_digits)


def write_predicted_boxes(path: PathLike, df: pd.DataFrame, coord_digits: int = 3) -> None:
    """Write predicted person boxes ``video,SSSS,x1,y1,x2,y2,,score`` (needs a ``score`` column)."""
    _write_box_rows(path, df.drop(columns=["action_id"], errors="ignore"), "score", coord_digits)


def write_detections(path: PathLike, df: pd.DataFrame, coord_digits: int = 3) -> None:
    """Write detection results ``video,SSSS,x1,y1,x2,y2,action_id,score``; scores keep 9
    significant digits so that distinct scores do not become ties."""
    _write_box_rows(path, df, "score", coord_digits)


# --------------------------------------------------------------------------------------
# Exclusions, frame lists, video lists
# --------------------------------------------------------------------------------------


def read_exclusions(path: PathLike) -> Set[str]:
    """Read excluded timestamps (``video_id,timestamp`` per line) -> set of image keys."""
    path = Path(path)
    keys: Set[str] = set()
    for lineno, row in _csv_lines(read_text(path, "exclusions file")):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != 2:
            raise AvaDetectError(f"expected 2 columns (video_id,timestamp), found {len(row)}", path, lineno)
        video_id, second = check_video_id(row[0].strip(), path, lineno), row[1].strip()
        if not _WHOLE.fullmatch(second):
            raise AvaDetectError(f"timestamp must be a whole, non-negative second, found {second!r}", path, lineno)
        if int(second) > MAX_ID:
            raise AvaDetectError(f"timestamp {second} is too large (at most {MAX_ID})", path, lineno)
        keys.add(image_key(video_id, int(second)))
    return keys


_WHOLE = re.compile(r"[0-9]+")


def _csv_lines(text: str) -> Iterable[Tuple[int, List[str]]]:
    """``(line number, cells)`` of each physical line of CSV text (a quoted cell cannot span lines)."""
    for lineno, line in enumerate(text.split("\n"), start=1):
        yield lineno, next(csv.reader([line]), [])


def write_exclusions(path: PathLike, keys: Iterable[str]) -> None:
    """Write image keys (``"video,SSSS"``) as an excluded-timestamps CSV, sorted.

    Raises:
        AvaDetectError: a key whose video id is not a valid name (nothing is written).
    """
    keys = sorted(keys)
    _check_video_ids((k.rpartition(",")[0] for k in keys), path)
    _write_rows(path, (k + "\n" for k in keys))


FRAME_LIST_HEADER = ["original_vido_id", "video_id", "frame_id", "path", "labels"]


def read_frame_list(path: PathLike) -> pd.DataFrame:
    """Read a PySlowFast frame list (header ``original_vido_id video_id frame_id path labels``,
    space separated).

    Returns:
        DataFrame with columns ``original_vido_id (str), video_id (int), frame_id (int), path (str),
        labels (str)``.
    """
    path = Path(path)
    lines = read_text(path, "frame list").split("\n")
    rows = []
    header = lines[0].split()
    if header != FRAME_LIST_HEADER:
        raise AvaDetectError(f"expected the header {' '.join(FRAME_LIST_HEADER)!r}, found {' '.join(header)!r}", path, 1)
    for lineno, line in enumerate(lines[1:], start=2):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 5:
            raise AvaDetectError(f"expected 5 space-separated fields ({' '.join(FRAME_LIST_HEADER)}), found {len(parts)}", path, lineno)
        if not (_WHOLE.fullmatch(parts[1]) and _WHOLE.fullmatch(parts[2])):
            raise AvaDetectError(f"video_id and frame_id must be integers, found {parts[1]!r} {parts[2]!r}", path, lineno)
        if int(parts[1]) > MAX_ID or int(parts[2]) > MAX_ID:
            raise AvaDetectError(f"video_id and frame_id must be at most {MAX_ID}, found {parts[1]} {parts[2]}", path, lineno)
        check_video_id(parts[0], path, lineno)
        rows.append((parts[0], int(parts[1]), int(parts[2]), parts[3], parts[4]))
    return pd.DataFrame(rows, columns=FRAME_LIST_HEADER)


def write_frame_list(path: PathLike, df: pd.DataFrame) -> None:
    """Write a PySlowFast frame list (columns as :func:`read_frame_list` returns them).

    Raises:
        AvaDetectError: a video id that is not a valid name or has blanks (the list is space
            separated), or a path with blanks (nothing is written).
    """
    _check_video_ids(df["original_vido_id"], path)
    for column in ("original_vido_id", "path", "labels"):
        spaced = [str(v) for v in df[column] if len(str(v).split()) != 1]
        if spaced:
            raise AvaDetectError(f"cannot write {column} {spaced[0]!r}: frame lists are space separated", path)
    lines = [" ".join(FRAME_LIST_HEADER) + "\n"]
    for row in df[FRAME_LIST_HEADER].itertuples(index=False):
        lines.append(f"{row[0]} {int(row[1])} {int(row[2])} {row[3]} {row[4]}\n")
    _write_rows(path, lines)


def read_video_list(path: PathLike) -> Dict[str, str]:
    """Read the AVA video file-name list (``ava_file_names_trainval_v2.1.txt``: one file name
    per line, e.g. ``-5KQ66BBWC4.mkv``) -> ``{video_id: file_name}``."""
    path = Path(path)
    out: Dict[str, str] = {}
    for lineno, line in enumerate(read_text(path, "video list").split("\n"), start=1):
        name = line.strip()
        if not name:
            continue
        if "," in name or "/" in name or " " in name:
            raise AvaDetectError(f"expected one file name per line (like '-5KQ66BBWC4.mkv'), found {name!r}", path, lineno)
        video_id = check_video_id(os.path.splitext(name)[0], path, lineno)
        if video_id in out:
            raise AvaDetectError(f"video {video_id!r} is listed twice", path, lineno)
        out[video_id] = name
    return out
