"""CVAT exports of a folder of videos -> a dataset folder that ``train``, ``test`` and ``eval`` read.

Input: "CVAT for video 1.1" exports (the XML, or the zip CVAT downloads; task or project exports),
one task per video, person rectangle tracks with one checkbox attribute per action, and the videos
the tasks were made from (matched by the task's source file name).

**Ground truth** is taken at the whole seconds ``s`` of each video (file time ``s``; the dataset's time
axis starts at 0): the box of each track at the video's own frame shown at that time (CVAT numbers
the video's frames; :mod:`~ava_detect.data.frame_numbers`), interpolated linearly between
keyframes as CVAT interpolates (:func:`~ava_detect.cvat.interpolate.boxes_at_frames`), person id =
track id, actions = the checked attributes in force at that frame. A box with no action checked
cannot be an AVA row: it is counted in the summary and left out.

Written (:class:`~ava_detect.data.layout.DatasetLayout` of ``out``)::

    annotations/{train,val}.csv                      ground truth, split by video (seeded)
    annotations/{train,val}_predicted_boxes.csv      person proposals of the configured detector
    annotations/{train,val}_excluded_timestamps.csv  empty
    annotations/labelmap.pbtxt                       the actions (attribute names), ids 1..N
    frame_lists/{train,val}.csv                      PySlowFast frame lists (frames: ``prep frames``)
    config.yaml                                      the recipe with this dataset's data section
    import.json                                      the summary

Every export is read and checked against the videos before anything is written; a bad input is one
error naming the file and the XML line (or the track and frame). The detector step is resumable
(:func:`~ava_detect.detection.videos.detect_videos`).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from ava_detect.data.ava_files import LabelMap
from ava_detect.data.layout import SPLITS, DatasetLayout
from ava_detect.errors import AvaDetectError
from ava_detect.io import PathLike, atomic_open

if TYPE_CHECKING:
    from ava_detect.config import Config
    from ava_detect.cvat.model import CvatTask, CvatTrack

logger = logging.getLogger(__name__)

#: Files of the dataset folder that the import writes (relative to it).
IMPORT_FILES = tuple(
    [p.as_posix() for s in SPLITS for p in (DatasetLayout().ground_truth(s), DatasetLayout().predicted_boxes(s),
                                             DatasetLayout().exclusions(s), DatasetLayout().frame_list(s))]
    + [DatasetLayout().labelmap.as_posix(), "config.yaml", "import.json"])

#: A box may reach this many pixels past the frame's edge (CVAT's own rounding).
EDGE_TOLERANCE_PX = 1.0
_GT_COLUMNS = ["video_id", "second", "x1", "y1", "x2", "y2", "action_id", "person_id"]


@dataclass(frozen=True)
class SourceVideo:
    """A video of the import: its id (file name without suffix), file, shown size, own frame times
    (``float64 [F]`` seconds; frame ``k`` of CVAT is ``times[k]``) and length."""

    video_id: str
    path: Path
    width: int
    height: int
    times: np.ndarray

    @property
    def num_frames(self) -> int:
        return len(self.times)

    @property
    def duration(self) -> float:
        """Seconds to the end of the last frame (its time plus one frame period)."""
        if not len(self.times):
            return 0.0
        period = float(np.median(np.diff(self.times))) if len(self.times) > 1 else 0.0
        return float(self.times[-1]) + period

    def seconds(self) -> np.ndarray:
        """``int64 [S]``: whole seconds ``0, 1, ...`` inside the video."""
        return np.arange(int(math.ceil(self.duration - 1e-6)), dtype=np.int64)


@dataclass
class ImportSummary:
    """What :func:`import_cvat` found and wrote (also ``import.json``)."""

    out: Path
    videos: Dict[str, List[str]] = field(default_factory=dict)
    keyframes: Dict[str, int] = field(default_factory=dict)
    boxes: Dict[str, int] = field(default_factory=dict)
    proposals: Dict[str, int] = field(default_factory=dict)
    boxes_per_action: Dict[str, int] = field(default_factory=dict)
    boxes_without_action: int = 0
    tracks: int = 0
    tasks: int = 0
    copied_actions: List[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"out": os.fspath(self.out), "videos": self.videos, "keyframes": self.keyframes, "boxes": self.boxes,
                "proposals": self.proposals, "boxes_per_action": self.boxes_per_action,
                "boxes_without_action": self.boxes_without_action, "tracks": self.tracks, "tasks": self.tasks}


# --------------------------------------------------------------------------------------
# Videos
# --------------------------------------------------------------------------------------


def source_videos(paths: Sequence[PathLike]) -> Dict[str, Path]:
    """File name -> path of the videos of ``paths`` (files and folders of videos).

    Raises:
        AvaDetectError: a missing path, a folder without videos, two videos with one id.
    """
    from ava_detect.detection.videos import find_videos

    by_name: Dict[str, Path] = {}
    ids: Dict[str, Path] = {}
    for v in find_videos(paths):
        if v.stem in ids:
            raise AvaDetectError(f"two videos have the id {v.stem!r}: {ids[v.stem]} and {v}", v)
        ids[v.stem] = v
        by_name[v.name] = v
    return by_name


def probe_source_video(path: Path) -> SourceVideo:
    """The facts of one video that the import needs (demuxing only; an unreadable file raises)."""
    from ava_detect.data.ava_files import check_video_id
    from ava_detect.data.frame_numbers import frame_times
    from ava_detect.data.video import probe_video

    video_id = check_video_id(path.stem, path)
    info = probe_video(path, check_end=True)  # a truncated video: warned about, its frames up to its real end
    times = frame_times(path, end=info.duration)
    return SourceVideo(video_id=video_id, path=path, width=info.width, height=info.height, times=times)


# --------------------------------------------------------------------------------------
# Exports -> ground-truth rows
# --------------------------------------------------------------------------------------


class _Collector:
    """Reads the exports' events into ground-truth rows, checking each against its video."""

    def __init__(self, videos: Dict[str, Path], labelmap: Optional[LabelMap]):
        self.videos = videos
        self.fixed_labelmap = labelmap
        self.actions: List[str] = list(labelmap.names[i] for i in labelmap.ids) if labelmap else []
        self.rows: List[Tuple] = []
        self.without_action = 0
        self.tracks = 0
        self.used: Dict[str, Tuple[str, int]] = {}  # video file name -> (export, task id)
        self.sources: Dict[str, SourceVideo] = {}
        self._tasks: Dict[Optional[int], Tuple["CvatTask", SourceVideo]] = {}

    def _video_of(self, task: "CvatTask", export: Path) -> SourceVideo:
        name = Path(task.source).name if task.source else ""
        path = self.videos.get(name)
        if path is None and name:
            stem_matches = [p for n, p in self.videos.items() if Path(n).stem == Path(name).stem]
            path = stem_matches[0] if len(stem_matches) == 1 else None
        if path is None:
            raise AvaDetectError(f"task {task.id} ({task.name!r}) was made from the video {name or '(none named)'!r}, "
                                 f"which is not among the videos given (--videos)", export, task.line)
        if path.name in self.used:
            other, other_id = self.used[path.name]
            raise AvaDetectError(f"task {task.id} names the video {path.name!r}, which task {other_id} of {other} "
                                 "names too: one task per video", export, task.line)
        self.used[path.name] = (os.fspath(export), task.id)
        video = probe_source_video(path)
        self.sources[video.video_id] = video
        return video

    def task(self, task: "CvatTask", export: Path) -> None:
        video = self._video_of(task, export)
        attributes = task.labels.get("person")
        if attributes is None:
            raise AvaDetectError(f"task {task.id} has no label 'person' (labels: {', '.join(task.labels) or 'none'}); "
                                 "the people must be rectangles of the label 'person'", export, task.line)
        kinds = getattr(task, "attribute_types", {}) or {}
        other = [a for a in attributes if kinds.get(a, "checkbox") != "checkbox"]
        if other:
            logger.warning("%s: task %d: attributes that are not checkboxes are not actions and are ignored: %s",
                           export, task.id, ", ".join(other))
        for a in attributes:
            if a in other or a in self.actions:
                continue
            if self.fixed_labelmap is not None:
                raise AvaDetectError(f"task {task.id}: the attribute {a!r} of label 'person' is not an action of the "
                                     f"label map {self.fixed_labelmap.path} ({len(self.actions)} actions)", export,
                                     task.line)
            self.actions.append(a)
        if task.size and task.size != video.num_frames:
            logger.warning("%s: task %d says the video has %d frames, %s has %d; frames are counted in the video",
                           export, task.id, task.size, video.path, video.num_frames)
        self._tasks[task.id] = (task, video)

    def _task_of(self, track: "CvatTrack", export: Path) -> Tuple["CvatTask", SourceVideo]:
        if track.task_id is not None and track.task_id in self._tasks:
            return self._tasks[track.task_id]
        if track.task_id is None and len(self._tasks) == 1:
            return next(iter(self._tasks.values()))
        raise AvaDetectError(f"track {track.id} belongs to no task of this export (task_id {track.task_id})",
                             export, track.line)

    def _check_boxes(self, track: "CvatTrack", video: SourceVideo, export: Path) -> None:
        w, h, tol = video.width, video.height, EDGE_TOLERANCE_PX
        for b in track.boxes:
            if b.frame >= video.num_frames or b.frame < 0:
                raise AvaDetectError(f"track {track.id}: a box at frame {b.frame}, beyond the video's last frame "
                                     f"{video.num_frames - 1} ({video.path.name})", export, b.line)
            if b.outside:
                continue
            if b.xtl < -tol or b.ytl < -tol or b.xbr > w + tol or b.ybr > h + tol:
                raise AvaDetectError(
                    f"track {track.id}, frame {b.frame}: box ({b.xtl:g}, {b.ytl:g}, {b.xbr:g}, {b.ybr:g}) is outside the "
                    f"{w}x{h} frame of {video.path.name}", export, b.line)

    def track(self, track: "CvatTrack", export: Path) -> None:
        from ava_detect.cvat.interpolate import boxes_at_frames
        from ava_detect.data.frame_numbers import frame_shown_at

        task, video = self._task_of(track, export)
        if track.label != "person":
            raise AvaDetectError(f"track {track.id} has the label {track.label!r}; expected 'person' (people are "
                                 "rectangles of the label 'person', actions their checkbox attributes)", export, track.line)
        self._check_boxes(track, video, export)
        self.tracks += 1
        seconds = video.seconds()
        frames = [frame_shown_at(video.times, float(s)) for s in seconds.tolist()]
        column = {a: i + 1 for i, a in enumerate(self.actions)}
        for second, found in zip(seconds.tolist(), boxes_at_frames(track, frames)):
            if found is None:
                continue
            box, attributes = found
            x1, y1, x2, y2 = (float(v) for v in box)
            norm = (min(max(x1 / video.width, 0.0), 1.0), min(max(y1 / video.height, 0.0), 1.0),
                    min(max(x2 / video.width, 0.0), 1.0), min(max(y2 / video.height, 0.0), 1.0))
            actions = [a for a, value in attributes.items() if str(value).strip().lower() == "true" and a in column]
            if not actions:
                self.without_action += 1
                continue
            for a in actions:
                self.rows.append((video.video_id, int(second), *norm, column[a], int(track.id)))


def read_exports(exports: Sequence[PathLike], videos: Dict[str, Path], *,
                 labelmap: Optional[LabelMap] = None) -> Tuple[pd.DataFrame, LabelMap, Dict[str, SourceVideo], Dict[str, int]]:
    """Read every export (a stream; see the module docstring) into ground-truth rows.

    Args:
        exports: CVAT for video 1.1 files (``.xml`` or ``.zip``).
        videos: file name -> path (:func:`source_videos`).
        labelmap: the actions to keep (attributes outside it are an error); None: built from the
            checkbox attributes of label ``person``, in the order they are declared, ids 1..N.

    Returns:
        ``(rows, labelmap, videos by id, counts)``: rows ``video_id, second, x1, y1, x2, y2, action_id,
        person_id`` (normalised), the label map, the tasks' videos, and ``{"tracks", "tasks",
        "boxes_without_action"}``.

    Raises:
        AvaDetectError: a bad export or a box that does not fit its video (file and line, or track and frame).
    """
    from ava_detect.cvat.model import CvatTask
    from ava_detect.cvat.reader import iter_cvat_export

    collect = _Collector(videos, labelmap)
    tasks = 0
    for export in map(Path, exports):
        collect._tasks = {}
        for item in iter_cvat_export(export):
            if isinstance(item, CvatTask):
                collect.task(item, export)
                tasks += 1
            else:
                collect.track(item, export)
    if labelmap is None:
        if not collect.actions:
            raise AvaDetectError("the exports declare no checkbox attribute of label 'person': no actions to learn",
                                 exports[0] if exports else None)
        labelmap = LabelMap(ids=tuple(range(1, len(collect.actions) + 1)),
                            names={i + 1: a for i, a in enumerate(collect.actions)})
    rows = pd.DataFrame(collect.rows, columns=_GT_COLUMNS)
    rows = rows.sort_values(["video_id", "second", "person_id", "action_id"], kind="stable").reset_index(drop=True)
    counts = {"tracks": collect.tracks, "tasks": tasks, "boxes_without_action": collect.without_action}
    return rows, labelmap, collect.sources, counts


def split_videos(video_ids: Sequence[str], *, val_fraction: float, seed: int) -> Dict[str, List[str]]:
    """``{"train": [...], "val": [...]}``: ``round(n * val_fraction)`` videos (at least 1, at most n - 1)
    drawn for val with ``seed``; never a keyframe of one video in both.

    Raises:
        AvaDetectError: fewer than 2 videos.
    """
    ids = sorted(video_ids)
    if len(ids) < 2:
        raise AvaDetectError(f"need at least 2 annotated videos to split into train and val by video, found {len(ids)}")
    num_val = min(len(ids) - 1, max(1, int(round(len(ids) * val_fraction))))
    val = set(np.random.default_rng(seed).choice(len(ids), num_val, replace=False).tolist())
    return {"train": [v for i, v in enumerate(ids) if i not in val], "val": [v for i, v in enumerate(ids) if i in val]}


# --------------------------------------------------------------------------------------
# The dataset folder
# --------------------------------------------------------------------------------------


def _video_folder(videos: Sequence[SourceVideo]) -> Tuple[Path, str]:
    """The one folder and suffix of the dataset's videos (``data.video_dir``, ``data.video_suffix``)."""
    folders = {v.path.resolve().parent for v in videos}
    suffixes = {v.path.suffix for v in videos}
    if len(folders) != 1 or len(suffixes) != 1:
        raise AvaDetectError(
            "the annotated videos must be in one folder with one file suffix (the dataset reads "
            f"<video_dir>/<video_id><suffix>); found folders {', '.join(sorted(map(str, folders)))} and suffixes "
            f"{', '.join(sorted(suffixes))}")
    return folders.pop(), suffixes.pop()


def dataset_config(recipe: "Config", out: Path, *, video_dir: Path, video_suffix: str, num_classes: int) -> "Config":
    """``recipe`` with the data section of the imported dataset at ``out`` (own time axis: t=0 at second 0,
    every annotated second a keyframe), its label map for training and evaluation, and run folders inside it.

    Raises:
        AvaDetectError: the result fails the config's checks.
    """
    import copy

    from ava_detect.config import validate_config

    cfg = copy.deepcopy(recipe)
    root = out.resolve()
    d = cfg.data
    d.root, d.video_dir, d.video_suffix, d.source = os.fspath(root), os.fspath(video_dir), video_suffix, "video"
    layout = DatasetLayout()
    d.train_gt, d.val_gt = layout.ground_truth("train").as_posix(), layout.ground_truth("val").as_posix()
    d.train_boxes, d.val_boxes = layout.predicted_boxes("train").as_posix(), layout.predicted_boxes("val").as_posix()
    d.train_exclusions, d.exclusions = layout.exclusions("train").as_posix(), layout.exclusions("val").as_posix()
    d.labelmap = layout.labelmap.as_posix()
    d.start_second, d.keyframe_range = 0, []
    cfg.model.num_classes = int(num_classes)
    cfg.test.eval_labelmap = os.fspath(root / layout.labelmap)
    cfg.train.output_dir = os.fspath(root / "runs" / "train")
    cfg.test.output_dir = os.fspath(root / "runs" / "test")
    validate_config(cfg, default_source="the imported dataset's config")
    return cfg


def _write_split(layout: DatasetLayout, split: str, rows: pd.DataFrame, videos: Dict[str, SourceVideo],
                 ids: List[str], fps: int) -> None:
    from ava_detect.data.ava_files import write_exclusions, write_frame_list, write_ground_truth
    from ava_detect.prep.frames import frame_list_rows

    write_ground_truth(layout.ground_truth(split), rows[rows["video_id"].isin(ids)].reset_index(drop=True))
    write_exclusions(layout.exclusions(split), [])
    counts = {v: max(0, int(math.ceil(videos[v].duration * fps - 1e-3))) for v in ids}
    write_frame_list(layout.frame_list(split), frame_list_rows(ids, counts))


def import_cvat(
    exports: Sequence[PathLike],
    videos: Sequence[PathLike],
    out: PathLike,
    *,
    recipe: "Config",
    val_fraction: float = 0.2,
    seed: int = 0,
    labelmap: Optional[LabelMap] = None,
    device: str = "cpu",
    progress=None,
) -> ImportSummary:
    """Import CVAT exports into the dataset folder ``out`` (see the module docstring).

    Args:
        exports: CVAT for video 1.1 exports (``.xml`` / ``.zip``). videos: the videos (files, folders).
        out: the dataset folder (made; files of an earlier import there are replaced).
        recipe: the config to start from (model, training); its ``detector`` section makes the proposals.
        val_fraction, seed: the split by video. labelmap: fixed actions (None: from the attributes).
        device: where the person detector runs. progress: passed to the detector (:class:`~ava_detect.detection.videos.DetectProgress`).

    Raises:
        AvaDetectError: bad exports, missing or unreadable videos, an output that is an input; nothing is
            written then (the detector's finished videos are kept for a rerun).
    """
    from ava_detect.config import save_config
    from ava_detect.data.ava_files import write_labelmap
    from ava_detect.detection.videos import detect_videos
    from ava_detect.io_paths import IOPaths

    out = Path(out)
    if not exports:
        raise AvaDetectError("no CVAT export given (--cvat)")
    IOPaths().input("--cvat", [Path(e) for e in exports]).input("--videos", [Path(v) for v in videos]) \
        .input("detector.weights", recipe.detector.weights or None) \
        .input("detector.boxes_csv", recipe.detector.boxes_csv or None) \
        .folder("--out", out, writes=IMPORT_FILES).check()
    rows, labelmap, sources, counts = read_exports(exports, source_videos(videos), labelmap=labelmap)
    splits = split_videos(list(sources), val_fraction=val_fraction, seed=seed)
    video_dir, suffix = _video_folder(list(sources.values()))
    cfg = dataset_config(recipe, out, video_dir=video_dir, video_suffix=suffix, num_classes=len(labelmap))

    layout = DatasetLayout(out)
    out.mkdir(parents=True, exist_ok=True)
    layout.annotations_dir.mkdir(exist_ok=True)
    layout.frame_lists_dir.mkdir(exist_ok=True)
    write_labelmap(layout.labelmap, labelmap)
    summary = ImportSummary(out=out, videos=splits, tracks=counts["tracks"], tasks=counts["tasks"],
                            boxes_without_action=counts["boxes_without_action"])
    for split in SPLITS:
        part = rows[rows["video_id"].isin(splits[split])]
        _write_split(layout, split, rows, sources, splits[split], cfg.data.fps)
        boxes = part.drop_duplicates(["video_id", "second", "person_id"])
        summary.keyframes[split] = int(len(boxes.drop_duplicates(["video_id", "second"])))
        summary.boxes[split] = int(len(boxes))
    names = dict(labelmap.names)
    per_action = Counter(rows["action_id"].tolist())
    summary.boxes_per_action = {names[i]: int(per_action.get(i, 0)) for i in labelmap.ids}
    save_config(cfg, out / "config.yaml")
    for split in SPLITS:
        result = detect_videos([sources[v].path for v in splits[split]], layout.predicted_boxes(split),
                               detector=cfg.detector, device=device, every=1, second_offset=0, progress=progress)
        summary.proposals[split] = result.boxes
    with atomic_open(out / "import.json", "w", encoding="utf-8") as f:
        f.write(json.dumps(summary.to_json(), indent=2) + "\n")
    logger.info("%s: %d + %d videos, %d + %d keyframes", out, len(splits["train"]), len(splits["val"]),
                summary.keyframes["train"], summary.keyframes["val"])
    return summary
