"""What a "CVAT for video 1.1" export holds, as plain data: tasks (one per video), tracks, boxes.

Coordinates are pixels of the video's original frame size (``xtl, ytl`` top-left, ``xbr, ybr``
bottom-right, as CVAT writes them). Frame numbers are frames of the task's video file (for a
project export the reader removes CVAT's project-wide frame offsets, see ``reader.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional


@dataclass
class CvatBox:
    """One ``<box>`` of a track.

    Attributes:
        frame: frame number in the task's video.
        xtl, ytl, xbr, ybr: the rectangle, pixels.
        outside: the object has left the view from this frame on (until the next box that is not outside).
        occluded: the object is hidden at this frame (kept, not used by the importer).
        keyframe: CVAT's keyframe flag (a box the annotator placed; 0 for interpolated ones).
        attributes: attribute name -> value as written (checkbox values are ``"true"`` / ``"false"``).
        line: the XML line of the ``<box>`` element, when read from a file.
    """

    frame: int
    xtl: float
    ytl: float
    xbr: float
    ybr: float
    outside: bool = False
    occluded: bool = False
    keyframe: bool = True
    attributes: Dict[str, str] = field(default_factory=dict)
    line: Optional[int] = None


@dataclass
class CvatTrack:
    """One ``<track>``: one object (person) over time; ``boxes`` are in increasing frame order.

    Attributes:
        id: the track id of the export (unique within a task).
        label: the label name (``"person"``).
        boxes: the shapes of the track, one per listed frame.
        task_id: the task (video) the track belongs to; set by the reader for task exports too.
        source: CVAT's track source (``manual``, ``auto``, ``semi-auto``, ``file``).
        line: the XML line of the ``<track>`` element, when read from a file.
    """

    id: int
    label: str
    boxes: List[CvatBox]
    task_id: Optional[int] = None
    source: str = "manual"
    line: Optional[int] = None


@dataclass
class CvatTask:
    """One task of the export = one video.

    Attributes:
        id: CVAT's task id.
        name: the task name.
        source: the video file name (``<source>``; the task name when an older export has none).
        size: number of frames of the task.
        width, height: the video's frame size (``<original_size>``), pixels.
        start_frame, stop_frame: the task's first and last video frame (``stop_frame`` None = unknown).
        labels: label name -> names of its attributes, in declaration order.
        attribute_types: attribute name -> CVAT input type (``checkbox``, ``select``, ``radio``,
            ``number``, ``text``).
        frame_step: the ``step=N`` of the task's frame filter (1 = every frame).
        subset: the task's subset in a project (``""`` when the export does not say).
        line: the XML line of the ``<task>`` element.
    """

    id: int
    name: str
    source: str
    size: int
    width: int
    height: int
    start_frame: int = 0
    stop_frame: Optional[int] = None
    labels: Dict[str, List[str]] = field(default_factory=dict)
    attribute_types: Dict[str, str] = field(default_factory=dict)
    frame_step: int = 1
    subset: str = ""
    line: Optional[int] = None
