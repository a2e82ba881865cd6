"""Write one video's tracks as a "CVAT for video 1.1" task export that CVAT imports into a task.

The document: ``<annotations><version>1.1</version><meta><task>`` (mode ``interpolation``, one label
``person`` of type ``rectangle`` with one mutable checkbox attribute per action, default ``false``;
``original_size``; ``source`` = the video file name) then one ``<track>`` per track with its
``<box>`` elements (coordinates with 2 decimals, as CVAT writes them) and, in each box, one
``<attribute>`` per action. It is streamed track by track into a temporary file that replaces the
target at the end (``ava_detect.io``), as ``.xml`` or as the ``.zip`` CVAT also accepts.

:func:`label_constructor` gives the label definition to paste into CVAT's label constructor ("Raw").
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import IO, Dict, Iterable, List, Sequence

from ava_detect.cvat.model import CvatTask, CvatTrack
from ava_detect.cvat.reader import ANNOTATIONS_MEMBER
from ava_detect.io import PathLike, atomic_open, atomic_path

LABEL = "person"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})


def _esc(text: str) -> str:
    """``text`` escaped for XML text and double-quoted attribute values."""
    text = str(text)
    if _NOT_XML.search(text):
        raise ValueError(f"{text!r} holds a character XML cannot carry")
    return text.translate(_ESCAPES)


def label_constructor(actions: Sequence[str]) -> List[dict]:
    """The labels JSON for CVAT's label constructor ("Raw" tab): label ``person`` (rectangle) with one
    mutable checkbox attribute per action, default ``false``."""
    return [{
        "name": LABEL,
        "type": "rectangle",
        "attributes": [{"name": action, "mutable": True, "input_type": "checkbox",
                        "default_value": "false", "values": ["false"]} for action in actions],
    }]


def write_cvat_xml(path: PathLike, task: CvatTask, tracks: Iterable[CvatTrack], *,
                   label_attributes: Sequence[str]) -> None:
    """Write ``task`` and its ``tracks`` to ``path`` as a CVAT-for-video-1.1 XML (atomically).

    Args:
        task: the video (``source``, ``size``, ``width``, ``height``; ``id`` and ``name`` as CVAT shows them).
        tracks: tracks of label ``person``; box attributes must be among ``label_attributes`` and be
            ``"true"`` / ``"false"`` (a missing one is written ``"false"``).
        label_attributes: the checkbox attributes (actions), in the order CVAT shows them.

    Raises:
        ValueError: a track of another label, an attribute that is not declared or not a checkbox value.
    """
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as f:
        _write_document(f, task, tracks, label_attributes)


def write_cvat_zip(path: PathLike, task: CvatTask, tracks: Iterable[CvatTrack], *,
                   label_attributes: Sequence[str]) -> None:
    """:func:`write_cvat_xml` into a zip holding ``annotations.xml`` (what CVAT downloads), atomically."""
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            with archive.open(ANNOTATIONS_MEMBER, "w", force_zip64=True) as raw:
                with io.TextIOWrapper(raw, encoding="utf-8", newline="\n") as f:
                    _write_document(f, task, tracks, label_attributes)


def _write_document(f: IO[str], task: CvatTask, tracks: Iterable[CvatTrack],
                    label_attributes: Sequence[str]) -> None:
    names = list(label_attributes)
    if len(set(names)) != len(names):
        raise ValueError("label_attributes repeat a name")
    f.write('<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>\n')
    f.write(_meta(task, names))
    for track in tracks:
        f.write(_track(track, names))
    f.write("</annotations>\n")


def _meta(task: CvatTask, names: List[str]) -> str:
    stop = task.stop_frame if task.stop_frame is not None else task.start_frame + (task.size - 1) * task.frame_step
    attributes = "".join(
        f"            <attribute>\n              <name>{_esc(n)}</name>\n              <mutable>True</mutable>\n"
        f"              <input_type>checkbox</input_type>\n              <default_value>false</default_value>\n"
        f"              <values>false</values>\n            </attribute>\n" for n in names)
    frame_filter = f"step={task.frame_step}" if task.frame_step != 1 else ""
    return (
        f"  <meta>\n    <task>\n      <id>{int(task.id)}</id>\n      <name>{_esc(task.name)}</name>\n"
        f"      <size>{int(task.size)}</size>\n      <mode>interpolation</mode>\n      <overlap>0</overlap>\n"
        f"      <bugtracker></bugtracker>\n      <subset>{_esc(task.subset or 'default')}</subset>\n"
        f"      <start_frame>{int(task.start_frame)}</start_frame>\n      <stop_frame>{int(stop)}</stop_frame>\n"
        f"      <frame_filter>{frame_filter}</frame_filter>\n      <labels>\n        <label>\n"
        f"          <name>{LABEL}</name>\n          <type>rectangle</type>\n          <attributes>\n"
        f"{attributes}          </attributes>\n        </label>\n      </labels>\n"
        f"      <original_size>\n        <width>{int(task.width)}</width>\n"
        f"        <height>{int(task.height)}</height>\n      </original_size>\n"
        f"      <source>{_esc(task.source)}</source>\n    </task>\n  </meta>\n")


def _track(track: CvatTrack, names: List[str]) -> str:
    if track.label != LABEL:
        raise ValueError(f"track {track.id}: label {track.label!r}, expected {LABEL!r}")
    escaped = [(n, _esc(n)) for n in names]
    declared = set(names)
    parts = [f'  <track id="{int(track.id)}" label="{LABEL}" source="{_esc(track.source)}">\n']
    for b in track.boxes:
        parts.append(
            f'    <box frame="{int(b.frame)}" keyframe="{int(bool(b.keyframe))}" outside="{int(bool(b.outside))}" '
            f'occluded="{int(bool(b.occluded))}" xtl="{b.xtl:.2f}" ytl="{b.ytl:.2f}" xbr="{b.xbr:.2f}" '
            f'ybr="{b.ybr:.2f}" z_order="0">\n')
        attrs: Dict[str, str] = b.attributes
        if not declared.issuperset(attrs):
            raise ValueError(f"track {track.id}, frame {b.frame}: attributes "
                             f"{sorted(set(attrs) - declared)} are not among label_attributes")
        for name, shown in escaped:
            value = attrs.get(name, "false")
            if value not in ("true", "false"):
                raise ValueError(f"track {track.id}, frame {b.frame}: {name}={value!r}, expected true or false")
            parts.append(f'      <attribute name="{shown}">{value}</attribute>\n')
        parts.append("    </box>\n")
    parts.append("  </track>\n")
    return "".join(parts)
