"""Stream a "CVAT for video 1.1" export (``.xml``, or the ``.zip`` CVAT downloads) as tasks and tracks.

:func:`iter_cvat_export` yields every :class:`CvatTask` of the export's ``<meta>`` first, then one
:class:`CvatTrack` at a time. The file is never held whole: a pyexpat parser is fed 1 MiB at a time
and the tracks completed by each piece are yielded before the next is read, so memory stays at one
track (plus one piece of text) whatever the file's size.

**Parser.** pyexpat with callbacks, hardened as ``defusedxml`` hardens it (its exception types): an
entity declaration (the "billion laughs" bomb, external entities such as
``SYSTEM "file:///etc/passwd"``), an unparsed entity, an external DTD and external entity references
are refused with one line naming the file and the line. pyexpat was chosen over
``defusedxml.ElementTree.iterparse`` because its callbacks know the current line (iterparse reports
elements in batches, after the parser has moved on, so errors could not name a box's line) and it
builds no ``Element`` objects; ``bench/cvat_import.py`` measures both on the same file.

**What is read, and how.**

- Task exports (``<meta><task>``) and project exports (``<meta><project><tasks><task>``, labels at
  project level, tracks carrying ``task_id``). In a project export CVAT numbers frames across the
  tasks of a subset (task after task, by task id); the reader subtracts those offsets, so
  ``CvatBox.frame`` is always the frame of the task's video.
- ``<source>`` (inside ``<task>``, or beside it in ``<meta>`` in older task exports) is the video file
  name; a task without one (older project exports) takes its task name, with a warning.
- ``<frame_filter>`` ``step=N``: frames are still video frames (CVAT writes ``start + i*N``), so they
  are kept; the step is ``CvatTask.frame_step``. Any other filter is refused.
- A ``rotation`` on a box: the box becomes the axis-aligned rectangle around the rotated one
  (counted in a warning).
- Boxes with ``keyframe="0"`` (CVAT's interpolated frames) are kept as written.

**Ignored, counted in one warning at the end:** non-rectangle shapes inside tracks (polygon,
polyline, points, cuboid, ellipse, mask, skeleton; a track left with no box is dropped), shapes and
tags outside tracks, elements the format does not define, ``z_order`` / ``group_id`` / ``color``.

**Refused (AvaDetectError naming the file and the line; for a box also its track and frame):**
malformed or truncated XML; entities as above; a zip without ``annotations.xml`` at its top or with
a member path that is absolute or contains ``..``; a version other than 1.1; the "CVAT for images"
format (``<image>`` elements) and image tasks (``mode`` other than ``interpolation``); job exports;
a task without ``id``, ``size`` or ``original_size``; two tasks naming one video; a label attribute
in the 1.0 text syntax; a track without ``id``/``label``, with a label that is not declared, with an
unknown ``task_id`` (or none in a project of several tasks), or whose id repeats in its task; a box
with a missing or non-numeric coordinate or frame, ``xbr < xtl`` or ``ybr < ytl``, a non-finite
value, an ``outside``/``keyframe``/``occluded`` other than 0/1, a frame before its task (project
offsets), boxes not in increasing frame order; an attribute not declared for the track's label; a
checkbox value other than true/false.
"""

from __future__ import annotations

import contextlib
import logging
import math
import pyexpat
import re
import zipfile
from collections import Counter
from pathlib import Path
from typing import IO, Dict, Iterator, List, Optional, Tuple, Union

from defusedxml.common import EntitiesForbidden, ExternalReferenceForbidden

from ava_detect.cvat.model import CvatBox, CvatTask, CvatTrack
from ava_detect.errors import AvaDetectError, unreadable_file_error
from ava_detect.io import PathLike

logger = logging.getLogger(__name__)

ANNOTATIONS_MEMBER = "annotations.xml"
_CHUNK = 1 << 20
_FLAG = {"0": False, "1": True}
_OTHER_SHAPES = frozenset({"polygon", "polyline", "points", "cuboid", "ellipse", "mask", "skeleton"})
_LIMIT = 1e9  # |coordinate| above this (or inf / nan) is refused


def iter_cvat_export(path: PathLike) -> Iterator[Union[CvatTask, CvatTrack]]:
    """Yield the tasks, then the tracks, of a CVAT-for-video-1.1 export, as a stream.

    Args:
        path: an ``annotations.xml`` or the ``.zip`` CVAT downloads (member ``annotations.xml``).

    Yields:
        every :class:`CvatTask` (in the order of the meta), then each :class:`CvatTrack` with its
        ``task_id`` set and its boxes in increasing frame order.

    Raises:
        AvaDetectError: see the module docstring for what is refused.
    """
    with _open_export(Path(path)) as (stream, shown):
        yield from _ExportParser(shown).parse(stream)


@contextlib.contextmanager
def _open_export(path: Path) -> Iterator[Tuple[IO[bytes], str]]:
    """The XML byte stream of ``path`` and the name errors show (``x.zip/annotations.xml`` for a zip)."""
    try:
        is_zip = path.suffix.lower() == ".zip" or zipfile.is_zipfile(path)
        if not is_zip:
            with open(path, "rb") as f:
                yield f, str(path)
            return
        with zipfile.ZipFile(path) as archive:
            member = _annotations_member(archive, path)
            with archive.open(member) as f:
                yield f, f"{path}/{ANNOTATIONS_MEMBER}"
    except OSError as e:
        raise unreadable_file_error(e, path, "CVAT export") from None
    # zipfile raises NotImplementedError for a compression method it cannot decode (e.g. Deflate64) and
    # RuntimeError for an encrypted member: both are files we cannot read, said on one line
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError) as e:
        raise AvaDetectError(f"cannot read the zip: {e}", path) from None


def _unsafe_member(name: str) -> bool:
    parts = re.split(r"[/\\]", name)
    return name.startswith(("/", "\\")) or bool(re.match(r"^[A-Za-z]:", name)) or ".." in parts


def _annotations_member(archive: zipfile.ZipFile, path: Path) -> zipfile.ZipInfo:
    infos = archive.infolist()
    for info in infos:
        if _unsafe_member(info.filename):
            raise AvaDetectError(
                f"zip member {info.filename!r} has an absolute path or '..' (it would land outside "
                f"an output folder); refusing the whole zip", path)
    for info in infos:
        if info.filename == ANNOTATIONS_MEMBER:
            return info
    found = ", ".join(repr(i.filename) for i in infos[:5]) + (", ..." if len(infos) > 5 else "")
    raise AvaDetectError(
        f"expected {ANNOTATIONS_MEMBER} at the top of the zip (a CVAT-for-video 1.1 export), found "
        f"{found or 'no files'}", path)


def _int(value: Optional[str], what: str) -> int:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected an integer, found {value!r}") from None


class _ExportParser:
    """One pass over one export: the meta phase collects tasks and labels, the track phase streams."""

    def __init__(self, shown: str):
        self.shown = shown
        self.p = pyexpat.ParserCreate()
        self.p.buffer_text = True
        self.p.buffer_size = 1 << 16
        self.p.SetParamEntityParsing(pyexpat.XML_PARAM_ENTITY_PARSING_NEVER)
        self.p.StartDoctypeDeclHandler = self._doctype
        self.p.EntityDeclHandler = self._entity_decl
        self.p.UnparsedEntityDeclHandler = self._unparsed_entity_decl
        self.p.ExternalEntityRefHandler = self._external_ref
        self.p.StartElementHandler = self._meta_start
        self.p.EndElementHandler = self._meta_end
        self.text: List[str] = []
        self.p.CharacterDataHandler = self.text.append
        self.out: List[Union[CvatTask, CvatTrack]] = []
        self.ignored: Counter = Counter()
        self.rotated = 0
        # meta phase
        self.stack: List[str] = []
        self.meta_seen = False
        self.is_project = False
        self.raw_tasks: List[Dict] = []
        self.task_labels: Dict[int, List[Dict]] = {}
        self.project_labels: Optional[List[Dict]] = None
        self.cur_task: Optional[Dict] = None
        self.cur_label: Optional[Dict] = None
        self.cur_attr: Optional[Dict] = None
        self.meta_misc: Dict[str, str] = {}
        self.meta_size: Dict[str, str] = {}
        # track phase
        self.tasks: Dict[int, CvatTask] = {}
        self.attribute_types: Dict[str, str] = {}
        self.offsets: Dict[int, int] = {}
        self.label_attrs: Dict[str, frozenset] = {}
        self.track: Optional[CvatTrack] = None
        self.track_ids: Dict[int, set] = {}
        self.box: Optional[CvatBox] = None
        self.allowed: frozenset = frozenset()
        self.offset = 0
        self.last_frame = -1
        self.attr_name: Optional[str] = None
        self.skip_depth = 0

    # -- errors and hardening ------------------------------------------------------------------

    def error(self, message: str, line: Optional[int] = None) -> AvaDetectError:
        return AvaDetectError(message, self.shown, line if line is not None else self.p.CurrentLineNumber)

    def _doctype(self, name, sysid, pubid, has_internal_subset):
        if sysid or pubid:
            raise self.error(f"external DTD {sysid or pubid!r} refused (CVAT exports have no DTD)")

    def _entity_decl(self, name, is_parameter_entity, value, base, sysid, pubid, notation_name):
        if sysid or pubid:
            raise ExternalReferenceForbidden(name, base, sysid, pubid)
        raise EntitiesForbidden(name, value, base, sysid, pubid, notation_name)

    def _unparsed_entity_decl(self, name, base, sysid, pubid, notation_name):
        raise EntitiesForbidden(name, None, base, sysid, pubid, notation_name)

    def _external_ref(self, context, base, sysid, pubid):
        raise ExternalReferenceForbidden(context, base, sysid, pubid)

    # -- driving --------------------------------------------------------------------------------

    def parse(self, stream: IO[bytes]) -> Iterator[Union[CvatTask, CvatTrack]]:
        while True:
            chunk = self._read(stream)
            self._feed(chunk, final=not chunk)
            if self.out:
                yield from self.out
                self.out.clear()
            if not chunk:
                break
        if not self.meta_seen:
            raise self.error("no <meta> element: not a CVAT XML export")
        self._log_ignored()

    def _read(self, stream: IO[bytes]) -> bytes:
        try:
            return stream.read(_CHUNK)
        except (OSError, zipfile.BadZipFile, EOFError) as e:
            raise self.error(f"cannot read: {e}", self.p.CurrentLineNumber) from None

    def _feed(self, chunk: bytes, final: bool) -> None:
        try:
            self.p.Parse(chunk, final)
        except pyexpat.ExpatError as e:
            reason = pyexpat.ErrorString(e.code)
            if final:
                message = f"the XML ends early (truncated file?): {reason}"
            else:
                message = f"malformed XML: {reason} (column {e.offset + 1})"
            raise self.error(message, e.lineno) from None
        except ExternalReferenceForbidden as e:
            raise self.error(
                f"external entity {e.context or ''!r} (SYSTEM {e.sysid!r}) refused: an export must "
                f"not read other files") from None
        except EntitiesForbidden as e:
            raise self.error(
                f"entity declaration {e.name!r} refused: entities can expand without bound (an "
                f"entity bomb) and CVAT exports declare none") from None

    def _log_ignored(self) -> None:
        if self.ignored:
            what = ", ".join(f"{n} {name}" for name, n in sorted(self.ignored.items()))
            logger.warning("%s: ignored what the importer cannot use: %s", self.shown, what)
        if self.rotated:
            logger.warning("%s: %d rotated boxes were replaced by the upright rectangles around them",
                           self.shown, self.rotated)

    # -- meta phase -----------------------------------------------------------------------------

    def _meta_start(self, name: str, attrs: Dict[str, str]) -> None:
        self.text.clear()
        stack = self.stack
        parent = stack[-1] if stack else None
        stack.append(name)
        if parent is None:
            if name != "annotations":
                raise self.error(f"expected <annotations> as the root element, found <{name}>")
        elif name in ("track", "image", "box", "tag") + tuple(_OTHER_SHAPES) and parent == "annotations":
            if name == "image":
                raise self.error("this is a 'CVAT for images' export (<image> elements); export the "
                                 "task as 'CVAT for video 1.1'")
            raise self.error(f"<{name}> before the end of <meta>: expected the meta first")
        elif name == "job" and parent == "meta":
            raise self.error("this is a job export; export the task or the project instead")
        elif name == "meta":
            self.meta_seen = True
        elif name == "project" and parent == "meta":
            self.is_project = True
        elif name == "task" and parent in ("meta", "tasks"):
            self.cur_task = {"line": self.p.CurrentLineNumber, "original_size": {}}
            self.raw_tasks.append(self.cur_task)
        elif name == "label" and parent == "labels":
            self.cur_label = {"attributes": [], "line": self.p.CurrentLineNumber}
            owner = stack[-3]
            if owner == "task" and self.cur_task is not None:
                self.cur_task.setdefault("labels", []).append(self.cur_label)
            elif owner == "project":
                self.project_labels = (self.project_labels or []) + [self.cur_label]
        elif name == "attribute" and parent == "attributes" and self.cur_label is not None:
            self.cur_attr = {"line": self.p.CurrentLineNumber}

    def _meta_end(self, name: str) -> None:
        stack = self.stack
        stack.pop()
        parent = stack[-1] if stack else None
        text = "".join(self.text).strip()
        self.text.clear()
        if name == "meta":
            self._finish_meta()
            return
        if name == "attribute" and self.cur_attr is not None and parent == "attributes":
            if "name" not in self.cur_attr:
                raise self.error("label attribute without <name> (the CVAT XML 1.0 syntax); "
                                 "export as CVAT for video 1.1")
            self.cur_label["attributes"].append(self.cur_attr)
            self.cur_attr = None
        elif parent == "attribute" and self.cur_attr is not None:
            self.cur_attr[name] = text
        elif parent == "label" and self.cur_label is not None and name in ("name", "type"):
            self.cur_label[name] = text
        elif name == "label" and parent == "labels":
            self.cur_label = None
        elif parent == "original_size":
            target = self.cur_task["original_size"] if self.cur_task is not None else self.meta_size
            target[name] = text
        elif parent == "task" and self.cur_task is not None and name != "original_size":
            self.cur_task.setdefault(name, text)
        elif name == "task" and parent in ("meta", "tasks"):
            self.cur_task = None
        elif parent == "meta" and name == "source":
            self.meta_misc["source"] = text
        elif parent == "annotations" and name == "version" and text != "1.1":
            raise self.error(f"expected CVAT XML version 1.1, found {text!r}")

    def _finish_meta(self) -> None:
        if not self.raw_tasks:
            raise self.error("<meta> holds no <task>: expected a task or project export of CVAT for video 1.1")
        project = self.is_project
        names: Dict[str, CvatTask] = {}
        for raw in self.raw_tasks:
            labels = (self.project_labels if project else raw.get("labels")) or []
            task = self._make_task(raw, labels)
            if task.id in self.tasks:
                raise self.error(f"two tasks with id {task.id}", task.line)
            if task.source in names:
                first = names[task.source]
                raise self.error(
                    f"tasks {first.id} (line {first.line}) and {task.id} both name the video "
                    f"{task.source!r}: expected one task per video", task.line)
            names[task.source] = task
            self.tasks[task.id] = task
            self.track_ids[task.id] = set()
        self.offsets = _project_offsets(self.tasks.values()) if project else {t: 0 for t in self.tasks}
        for task in self.tasks.values():
            for label, attributes in task.labels.items():
                self.label_attrs[label] = frozenset(attributes) | self.label_attrs.get(label, frozenset())
        self.attribute_types = {k: v for t in self.tasks.values() for k, v in t.attribute_types.items()}
        self.out.extend(self.tasks.values())
        self.p.StartElementHandler = self._start
        self.p.EndElementHandler = self._end

    def _make_task(self, raw: Dict, labels: List[Dict]) -> CvatTask:
        line = raw["line"]
        try:
            task_id = _int(raw.get("id"), "task <id>")
            size = _int(raw.get("size"), "task <size>")
            width = _int(raw["original_size"].get("width", self.meta_size.get("width")), "<original_size><width>")
            height = _int(raw["original_size"].get("height", self.meta_size.get("height")), "<original_size><height>")
            start = _int(raw.get("start_frame") or "0", "<start_frame>")
            stop = _int(raw["stop_frame"], "<stop_frame>") if raw.get("stop_frame") else None
        except ValueError as e:
            raise self.error(str(e), line) from None
        mode = raw.get("mode", "interpolation")
        if mode != "interpolation":
            raise self.error(f"task {task_id} is an image task (mode {mode!r}); expected a video task "
                             f"(mode 'interpolation')", line)
        if width <= 0 or height <= 0 or size <= 0:
            raise self.error(f"task {task_id}: expected a positive size and frame size, found size "
                             f"{size}, {width}x{height}", line)
        step = self._frame_step(raw.get("frame_filter", ""), task_id, line)
        source = raw.get("source")
        if not source and len(self.raw_tasks) == 1:
            source = self.meta_misc.get("source")  # older task exports: <meta><source>
        if not source:
            source = raw.get("name", "")
            logger.warning("%s:%d: task %d has no <source>; taking its name %r as the video file name",
                           self.shown, line, task_id, source)
        label_map: Dict[str, List[str]] = {}
        types: Dict[str, str] = {}
        for label in labels:
            label_map[label.get("name", "")] = [a["name"] for a in label["attributes"]]
            for a in label["attributes"]:
                types.setdefault(a["name"], a.get("input_type", "text"))
        return CvatTask(id=task_id, name=raw.get("name", ""), source=source, size=size, width=width,
                        height=height, start_frame=start, stop_frame=stop, labels=label_map,
                        attribute_types=types, frame_step=step, subset=raw.get("subset", ""), line=line)

    def _frame_step(self, frame_filter: str, task_id: int, line: int) -> int:
        if not frame_filter:
            return 1
        match = re.fullmatch(r"step\s*=\s*(\d+)", frame_filter.strip())
        if not match or int(match.group(1)) < 1:
            raise self.error(f"task {task_id}: frame filter {frame_filter!r} not understood "
                             f"(expected 'step=N')", line)
        return int(match.group(1))

    # -- track phase (hot path) -----------------------------------------------------------------

    def _start(self, name: str, a: Dict[str, str]) -> None:
        if self.skip_depth:
            self.skip_depth += 1
            return
        if name == "attribute":
            if self.box is None:
                self.skip_depth = 1
                self.ignored["attributes outside boxes"] += 1
                return
            self.attr_name = a.get("name")
            self.text.clear()
        elif name == "box":
            if self.track is None:
                self.ignored["boxes outside tracks"] += 1
                self.skip_depth = 1
                return
            self.text.clear()
            self.box = self._box(a)
        elif name == "track":
            self._open_track(a)
        elif name in _OTHER_SHAPES:
            self.ignored[f"{name} shapes" + ("" if self.track is not None else " outside tracks")] += 1
            self.skip_depth = 1
        elif name == "image":
            raise self.error("<image> element: this is a 'CVAT for images' export; export the task "
                             "as 'CVAT for video 1.1'")
        else:
            self.ignored[f"<{name}> elements"] += 1
            self.skip_depth = 1

    def _end(self, name: str) -> None:
        if self.skip_depth:
            self.skip_depth -= 1
            return
        if name == "attribute":
            text = self.text
            value = text[0] if len(text) == 1 else "".join(text)
            self._set_attribute(self.attr_name, value)
        elif name == "box":
            box = self.box
            if box.frame <= self.last_frame:
                raise self.error(
                    f"track {self.track.id}: box at frame {box.frame} comes after frame "
                    f"{self.last_frame}: expected boxes in increasing frame order", box.line)
            self.last_frame = box.frame
            self.track.boxes.append(box)
            self.box = None
        elif name == "track":
            track = self.track
            self.track = None
            if track.boxes:
                self.out.append(track)
            else:
                self.ignored["tracks without a box"] += 1

    def _box(self, a: Dict[str, str]) -> CvatBox:
        try:
            frame = int(a["frame"]) - self.offset
            xtl, ytl, xbr, ybr = float(a["xtl"]), float(a["ytl"]), float(a["xbr"]), float(a["ybr"])
            outside, keyframe, occluded = _FLAG[a["outside"]], _FLAG[a["keyframe"]], _FLAG[a["occluded"]]
        except (KeyError, ValueError):
            raise self._bad_box(a) from None
        if not (-_LIMIT < xtl <= xbr < _LIMIT and -_LIMIT < ytl <= ybr < _LIMIT) or frame < 0:
            raise self._bad_box(a)
        rotation = a.get("rotation")
        if rotation is not None:
            try:
                degrees = float(rotation)
            except ValueError:
                raise self.error(f"track {self.track.id}, frame {a['frame']}: rotation {rotation!r} "
                                 f"is not a number") from None
            if degrees % 360.0:
                xtl, ytl, xbr, ybr = _upright(xtl, ytl, xbr, ybr, degrees)
                self.rotated += 1
        return CvatBox(frame, xtl, ytl, xbr, ybr, outside, occluded, keyframe, {}, self.p.CurrentLineNumber)

    def _bad_box(self, a: Dict[str, str]) -> AvaDetectError:
        """The error for a box the fast path refused: says which value is wrong."""
        where = f"track {self.track.id}, frame {a.get('frame', '?')}: "
        for key in ("frame", "xtl", "ytl", "xbr", "ybr", "outside", "keyframe", "occluded"):
            if key not in a:
                return self.error(where + f"<box> has no {key!r} attribute")
        try:
            int(a["frame"])
        except ValueError:
            return self.error(where + f"frame {a['frame']!r} is not an integer")
        for key in ("outside", "keyframe", "occluded"):
            if a[key] not in _FLAG:
                return self.error(where + f"{key}={a[key]!r}: expected 0 or 1")
        values = {}
        for key in ("xtl", "ytl", "xbr", "ybr"):
            try:
                values[key] = float(a[key])
            except ValueError:
                return self.error(where + f"{key}={a[key]!r} is not a number")
            if not math.isfinite(values[key]) or abs(values[key]) >= _LIMIT:
                return self.error(where + f"{key}={a[key]!r}: expected a finite pixel coordinate")
        if values["xbr"] < values["xtl"] or values["ybr"] < values["ytl"]:
            return self.error(where + f"box ({a['xtl']}, {a['ytl']}, {a['xbr']}, {a['ybr']}) has "
                              f"xbr < xtl or ybr < ytl: expected x2 >= x1 and y2 >= y1")
        return self.error(where + f"frame {int(a['frame'])} is before the task's first frame "
                          f"(project frame offset {self.offset})")

    def _set_attribute(self, name: Optional[str], value: str) -> None:
        box = self.box
        if name not in self.allowed:
            declared = ", ".join(sorted(self.allowed)) or "none"
            raise self.error(f"track {self.track.id}, frame {box.frame}: attribute {name!r} is not "
                             f"declared for label {self.track.label!r} (declared: {declared})")
        if self.attribute_types.get(name) == "checkbox" and value not in ("true", "false"):
            if value.lower() not in ("true", "false"):
                raise self.error(f"track {self.track.id}, frame {box.frame}: checkbox {name!r} = "
                                 f"{value!r}: expected true or false")
            value = value.lower()
        box.attributes[name] = value

    def _open_track(self, a: Dict[str, str]) -> None:
        line = self.p.CurrentLineNumber
        if "id" not in a or "label" not in a:
            raise self.error("<track> without an 'id' or 'label' attribute")
        try:
            track_id = int(a["id"])
        except ValueError:
            raise self.error(f"track id {a['id']!r} is not an integer") from None
        task_id = self._task_of(a, track_id)
        label = a["label"]
        if label not in self.tasks[task_id].labels:
            declared = ", ".join(sorted(self.tasks[task_id].labels)) or "none"
            raise self.error(f"track {track_id}: label {label!r} is not one of the export's labels "
                             f"({declared})")
        if track_id in self.track_ids[task_id]:
            raise self.error(f"track id {track_id} appears twice in task {task_id}")
        self.track_ids[task_id].add(track_id)
        self.track = CvatTrack(track_id, label, [], task_id, a.get("source", "manual"), line)
        self.allowed = self.label_attrs.get(label, frozenset())
        self.offset = self.offsets[task_id]
        self.last_frame = -1

    def _task_of(self, a: Dict[str, str], track_id: int) -> int:
        raw = a.get("task_id")
        if raw is None:
            if len(self.tasks) == 1:
                return next(iter(self.tasks))
            raise self.error(f"track {track_id} has no task_id in an export of {len(self.tasks)} tasks")
        try:
            task_id = int(raw)
        except ValueError:
            raise self.error(f"track {track_id}: task_id {raw!r} is not an integer") from None
        if task_id not in self.tasks:
            known = ", ".join(str(t) for t in sorted(self.tasks))
            raise self.error(f"track {track_id}: task_id {task_id} is not a task of the export "
                             f"(tasks: {known})")
        return task_id


def _project_offsets(tasks) -> Dict[int, int]:
    """CVAT's project-wide frame numbering: within a subset, tasks follow each other by id, each
    taking ``start_frame + step * size`` frames. Returns task id -> the offset to subtract."""
    offsets: Dict[int, int] = {}
    ends: Dict[str, int] = {}
    for task in sorted(tasks, key=lambda t: (t.subset, t.id)):
        offsets[task.id] = ends.get(task.subset, 0)
        ends[task.subset] = offsets[task.id] + task.start_frame + task.frame_step * task.size
    return offsets


def _upright(xtl: float, ytl: float, xbr: float, ybr: float, degrees: float) -> Tuple[float, float, float, float]:
    """The axis-aligned rectangle around ``(xtl, ytl, xbr, ybr)`` rotated by ``degrees`` about its centre."""
    cx, cy, w, h = (xtl + xbr) / 2, (ytl + ybr) / 2, xbr - xtl, ybr - ytl
    c, s = abs(math.cos(math.radians(degrees))), abs(math.sin(math.radians(degrees)))
    half_w, half_h = (w * c + h * s) / 2, (w * s + h * c) / 2
    return cx - half_w, cy - half_h, cx + half_w, cy + half_h
