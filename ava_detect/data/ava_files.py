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

Bad rows raise :class:`~ava_detect.errors.AvaDetectError` naming the file, the line and the
problem. Reading is vectorised (pandas' C parser); a precise row-by-row diagnosis runs only
when something is wrong.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

import numpy as np
import pandas as pd

from ava_detect.errors import AvaDetectError
from ava_detect.io import atomic_open
from ava_detect.structures import image_key

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

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
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AvaDetectError("label map file not found", path) from None
    except (OSError, UnicodeDecodeError) as e:
        raise AvaDetectError(f"cannot read label map: {e}", path) from None

    ids: List[int] = []
    names: Dict[int, str] = {}
    types: Dict[int, str] = {}
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
            fields[key] = (value, line_of(key_pos))
            pos = m.end()

        block_line = line_of(block_start)
        id_field = fields.get("label_id") or fields.get("id")
        if id_field is None:
            raise AvaDetectError("block has no 'label_id' or 'id'", path, block_line)
        try:
            class_id = int(id_field[0])
        except ValueError:
            raise AvaDetectError(f"class id must be an integer, found {id_field[0]!r}", path, id_field[1]) from None
        if "name" not in fields:
            raise AvaDetectError(f"class {class_id} has no 'name'", path, block_line)
        if class_id in names:
            raise AvaDetectError(f"duplicate class id {class_id}", path, id_field[1])
        ids.append(class_id)
        names[class_id] = fields["name"][0]
        if "label_type" in fields:
            types[class_id] = fields["label_type"][0]

    if not ids:
        raise AvaDetectError("label map has no classes", path)
    return LabelMap(ids=tuple(ids), names=names, types=types, path=str(path))


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
    with open(path, "r", encoding="utf-8", errors="replace", newline="") as f:
        for i, line in enumerate(f, start=1):
            if i == lineno:
                return line.rstrip("\r\n")
    return ""


def _diagnose(path: Path, kind: str) -> AvaDetectError:
    """Find the first bad row of a file the fast reader could not parse, row by row."""
    names, min_cols, layout = _KINDS[kind]
    with open(path, "r", encoding="utf-8", errors="replace", newline="") as f:
        for lineno, row in enumerate(csv.reader(f), start=1):
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


def _read_box_csv(path: PathLike, kind: str) -> pd.DataFrame:
    names, min_cols, layout = _KINDS[kind]
    path = Path(path)
    if not path.is_file():
        raise AvaDetectError("file not found" if not path.exists() else "not a file", path)
    dtypes = {name: np.float64 for name in names[1:]}
    dtypes["video_id"] = str
    try:
        df = pd.read_csv(
            path,
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
        diagnosis = _diagnose(path, kind)
        if diagnosis.line is None:
            raise AvaDetectError(f"cannot parse as an AVA CSV ({layout}): {e}", path) from None
        raise diagnosis from None
    except UnicodeDecodeError as e:
        raise AvaDetectError(f"not a text CSV file ({e.reason})", path) from None

    df.insert(0, "line", np.arange(1, len(df) + 1, dtype=np.int64))
    blank = df["video_id"].isna() & df[names[1:]].isna().all(axis=1)
    if blank.any():
        df = df[~blank]
    _validate(df, path, kind)
    return df


def _first_bad(df: pd.DataFrame, mask: np.ndarray) -> int:
    return int(df["line"].to_numpy()[np.flatnonzero(mask)[0]])


def _fail(df: pd.DataFrame, mask, path: Path, message: str) -> None:
    mask = np.asarray(mask)
    if mask.any():
        lineno = _first_bad(df, mask)
        count = int(mask.sum())
        more = f" ({count - 1} more such rows)" if count > 1 else ""
        raise AvaDetectError(f"{message}; row: {_raw_line(path, lineno)!r}{more}", path, lineno)


def _validate(df: pd.DataFrame, path: Path, kind: str) -> None:
    names, min_cols, layout = _KINDS[kind]
    required = ["video_id", "second"] + BOX_COLUMNS
    if kind == "ground_truth":
        required.append("action_id")
    elif kind == "detections":
        required += ["action_id", "score"]
    else:
        required.append("score")
    for col in required:
        missing = df[col].isna().to_numpy()
        if missing.any():
            lineno = _first_bad(df, missing)
            raw = _raw_line(path, lineno)
            n_cols = len(next(csv.reader([raw]))) if raw else 0
            if n_cols < min_cols:
                expected = f"{min_cols} or {len(names)}" if min_cols != len(names) else str(len(names))
                msg = f"expected {expected} columns ({layout}), found {n_cols}"
            else:
                msg = f"column {names.index(col) + 1} ({col}) is empty"
            raise AvaDetectError(f"{msg}; row: {raw!r}", path, lineno)

    _fail(df, (df["video_id"].str.strip() == "").to_numpy(), path, "video id is empty")
    second = df["second"].to_numpy()
    _fail(df, (second != np.floor(second)) | (second < 0) | ~np.isfinite(second), path,
          "timestamp must be a whole, non-negative second (e.g. 0902)")
    coords = df[BOX_COLUMNS].to_numpy()
    bad = ~np.isfinite(coords).all(axis=1)
    _fail(df, bad, path, "box coordinates must be finite numbers")
    out = ((coords < -COORD_TOLERANCE) | (coords > 1 + COORD_TOLERANCE)).any(axis=1)
    _fail(df, out, path, f"box coordinates must be normalised to [0, 1] (tolerance {COORD_TOLERANCE})")
    if "action_id" in required:
        action = df["action_id"].to_numpy()
        _fail(df, (action != np.floor(action)) | ~np.isfinite(action), path, "action id must be an integer")
    if kind == "ground_truth":
        pid = df["person_id"].to_numpy()
        present = ~np.isnan(pid)
        _fail(df, present & ((pid != np.floor(pid)) | ~np.isfinite(pid)), path, "person id must be an integer")
    if "score" in required:
        score = df["score"].to_numpy()
        _fail(df, ~np.isfinite(score), path, "score must be a finite number (found NaN or infinity)")


def _finish(df: pd.DataFrame, path: Path, kind: str, labelmap: Optional[LabelMap], degenerate: str) -> pd.DataFrame:
    """Clip, check box extents, drop unknown actions and exact duplicates, set final dtypes."""
    df[BOX_COLUMNS] = df[BOX_COLUMNS].clip(0.0, 1.0)
    coords = df[BOX_COLUMNS].to_numpy()
    empty = (coords[:, 2] <= coords[:, 0]) | (coords[:, 3] <= coords[:, 1])
    if empty.any():
        if degenerate == "error":
            _fail(df, empty, path, "box must have x2 > x1 and y2 > y1")
        logger.warning("%s: dropped %d rows whose box has x2 <= x1 or y2 <= y1", path, int(empty.sum()))
        df = df[~empty]

    df["second"] = df["second"].astype(np.int64)
    if kind == "boxes":
        df = df.drop(columns=["action_id"])
    else:
        df["action_id"] = df["action_id"].astype(np.int64)
    if kind == "ground_truth":
        df["person_id"] = df["person_id"].fillna(-1).astype(np.int64)

    if labelmap is not None and kind != "boxes":
        known = df["action_id"].isin(np.asarray(labelmap.ids, dtype=np.int64)).to_numpy()
        if not known.all():
            unknown = np.unique(df["action_id"].to_numpy()[~known])
            shown = ", ".join(str(i) for i in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
            logger.warning(
                "%s: skipped %d rows whose action id is not in the label map %s (ids: %s)",
                path, int((~known).sum()), labelmap.path or "", shown,
            )
            df = df[known]

    value_cols = [c for c in df.columns if c != "line"]
    dup = df.duplicated(subset=value_cols, keep="first").to_numpy()
    if dup.any():
        logger.info("%s: merged %d exact duplicate rows", path, int(dup.sum()))
        df = df[~dup]
    df["video_id"] = df["video_id"].astype(str).str.strip().astype("category")
    return df.reset_index(drop=True)


def read_ground_truth(path: PathLike, labelmap: Optional[LabelMap] = None) -> pd.DataFrame:
    """Read an AVA ground-truth CSV (7 or 8 columns).

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
    df = _read_box_csv(path, "ground_truth")
    return _finish(df, path, "ground_truth", labelmap, degenerate="error")


def read_predicted_boxes(path: PathLike, degenerate: str = "drop") -> pd.DataFrame:
    """Read a predicted person-box CSV (``video_id,timestamp,x1,y1,x2,y2,,score``).

    Returns:
        DataFrame with columns ``line, video_id, second, x1, y1, x2, y2, score``.
        Boxes with x2 <= x1 or y2 <= y1 are dropped with one warning (``degenerate="drop"``)
        or raise (``degenerate="error"``).
    """
    path = Path(path)
    df = _read_box_csv(path, "boxes")
    return _finish(df, path, "boxes", None, degenerate=degenerate)


def read_detections(
    path: PathLike, labelmap: Optional[LabelMap] = None, degenerate: str = "drop"
) -> pd.DataFrame:
    """Read a detection-result CSV (``video_id,timestamp,x1,y1,x2,y2,action_id,score``).

    Returns:
        DataFrame with columns ``line, video_id, second, x1, y1, x2, y2, action_id, score``,
        in file order. NaN or infinite scores raise; degenerate boxes are dropped with one
        counting warning (``degenerate="drop"``, as the reference evaluators drop them).
    """
    path = Path(path)
    df = _read_box_csv(path, "detections")
    return _finish(df, path, "detections", labelmap, degenerate=degenerate)


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


def keys_of(df: pd.DataFrame) -> np.ndarray:
    """Image keys (``"video,SSSS"``) of each row of a reader's DataFrame, as an object array."""
    return np.array([image_key(v, s) for v, s in zip(df["video_id"].astype(str), df["second"])], dtype=object)


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


def _write_rows(path: PathLike, lines: Iterable[str]) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        f.writelines(lines)


def write_ground_truth(path: PathLike, df: pd.DataFrame, coord_digits: int = 3) -> None:
    """Write ground-truth rows (columns as :func:`read_ground_truth` returns them; ``person_id``
    < 0 or absent writes 7 columns). Atomic: the file appears complete or not at all."""
    if "person_id" not in df.columns:
        df = df.assign(person_id=-1)
    _write_rows(path, _format_rows(df, "person_id", coord_digits))


def write_predicted_boxes(path: PathLike, df: pd.DataFrame, coord_digits: int = 3) -> None:
    """Write predicted person boxes ``video,SSSS,x1,y1,x2,y2,,score`` (needs a ``score`` column)."""
    _write_rows(path, _format_rows(df.drop(columns=["action_id"], errors="ignore"), "score", coord_digits))


def write_detections(path: PathLike, df: pd.DataFrame, coord_digits: int = 3) -> None:
    """Write detection results ``video,SSSS,x1,y1,x2,y2,action_id,score``; scores keep 9
    significant digits so that distinct scores do not become ties."""
    _write_rows(path, _format_rows(df, "score", coord_digits))


# --------------------------------------------------------------------------------------
# Exclusions, frame lists, video lists
# --------------------------------------------------------------------------------------


def read_exclusions(path: PathLike) -> Set[str]:
    """Read excluded timestamps (``video_id,timestamp`` per line) -> set of image keys."""
    path = Path(path)
    if not path.is_file():
        raise AvaDetectError("exclusions file not found", path)
    keys: Set[str] = set()
    with open(path, "r", encoding="utf-8", newline="") as f:
        for lineno, row in enumerate(csv.reader(f), start=1):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != 2:
                raise AvaDetectError(f"expected 2 columns (video_id,timestamp), found {len(row)}", path, lineno)
            video_id, second = row[0].strip(), row[1].strip()
            if not video_id:
                raise AvaDetectError("video id is empty", path, lineno)
            if not second.isdigit():
                raise AvaDetectError(f"timestamp must be a whole, non-negative second, found {second!r}", path, lineno)
            keys.add(image_key(video_id, int(second)))
    return keys


def write_exclusions(path: PathLike, keys: Iterable[str]) -> None:
    """Write image keys (``"video,SSSS"``) as an excluded-timestamps CSV, sorted."""
    _write_rows(path, (k + "\n" for k in sorted(keys)))


FRAME_LIST_HEADER = ["original_vido_id", "video_id", "frame_id", "path", "labels"]


def read_frame_list(path: PathLike) -> pd.DataFrame:
    """Read a PySlowFast frame list (header ``original_vido_id video_id frame_id path labels``,
    space separated).

    Returns:
        DataFrame with columns ``original_vido_id (str), video_id (int), frame_id (int), path (str),
        labels (str)``.
    """
    path = Path(path)
    if not path.is_file():
        raise AvaDetectError("frame list not found", path)
    rows = []
    with open(path, "r", encoding="utf-8") as f:
        header = f.readline().split()
        if header != FRAME_LIST_HEADER:
            raise AvaDetectError(f"expected the header {' '.join(FRAME_LIST_HEADER)!r}, found {' '.join(header)!r}", path, 1)
        for lineno, line in enumerate(f, start=2):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 5:
                raise AvaDetectError(f"expected 5 space-separated fields ({' '.join(FRAME_LIST_HEADER)}), found {len(parts)}", path, lineno)
            if not (parts[1].isdigit() and parts[2].isdigit()):
                raise AvaDetectError(f"video_id and frame_id must be integers, found {parts[1]!r} {parts[2]!r}", path, lineno)
            rows.append((parts[0], int(parts[1]), int(parts[2]), parts[3], parts[4]))
    return pd.DataFrame(rows, columns=FRAME_LIST_HEADER)


def write_frame_list(path: PathLike, df: pd.DataFrame) -> None:
    """Write a PySlowFast frame list (columns as :func:`read_frame_list` returns them)."""
    lines = [" ".join(FRAME_LIST_HEADER) + "\n"]
    for row in df[FRAME_LIST_HEADER].itertuples(index=False):
        lines.append(f"{row[0]} {int(row[1])} {int(row[2])} {row[3]} {row[4]}\n")
    _write_rows(path, lines)


def read_video_list(path: PathLike) -> Dict[str, str]:
    """Read the AVA video file-name list (``ava_file_names_trainval_v2.1.txt``: one file name
    per line, e.g. ``-5KQ66BBWC4.mkv``) -> ``{video_id: file_name}``."""
    path = Path(path)
    if not path.is_file():
        raise AvaDetectError("video list not found", path)
    out: Dict[str, str] = {}
    with open(path, "r", encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            name = line.strip()
            if not name:
                continue
            if "," in name or "/" in name or " " in name:
                raise AvaDetectError(f"expected one file name per line (like '-5KQ66BBWC4.mkv'), found {name!r}", path, lineno)
            video_id = os.path.splitext(name)[0]
            if video_id in out:
                raise AvaDetectError(f"video {video_id!r} is listed twice", path, lineno)
            out[video_id] = name
    return out


def write_video_list(path: PathLike, names: Sequence[str]) -> None:
    """Write the video file-name list, one name per line."""
    _write_rows(path, (n + "\n" for n in names))
