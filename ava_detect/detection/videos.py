"""Person boxes at the keyframes of many videos -> one AVA predicted-box CSV (the input of ``test``
and ``train``), resumable; optionally compared with ground-truth boxes.

Rows: ``video_id,second,x1,y1,x2,y2,,score`` (coordinates normalised to [0, 1] of the picture as a
player shows it, no header). The video id is the file name without its suffix. Keyframe second
``s`` is file time ``s - second_offset`` (:func:`~ava_detect.detection.keyframes.keyframe_seconds`);
a truncated video is warned about once and gets the keyframes its frames reach.

Resumable: each finished video is kept in a folder beside the output (``.OUT.parts/``) together with
the settings it was made with (detector settings, the weights or box file as it was, keyframes) and
the video file as it was; a second call with the same settings skips finished videos whose file is
unchanged (other settings, or ``restart``, start over; a changed video is detected again). The
folder is made when the first video is done. The output appears only when all videos are done.

With a CVAT folder (``cvat``), each video also gets a "CVAT for video 1.1" XML of the people found,
tracked across keyframes (:mod:`ava_detect.annotate.prelabel`), resumable the same way (a record of
the settings, the video as it was and its keyframes beside each XML; :mod:`ava_detect.reuse`). A
video is detected again when its part or its XML is missing or stale.

Under ``torchrun`` every process does its own share of the videos (:mod:`ava_detect.detection.sharding`)
and writes their parts and XMLs; the first process then joins the output and writes the label
definition.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Protocol, Sequence, Tuple, Union

import pandas as pd
import torch

from ava_detect.data.ava_files import read_ground_truth, read_predicted_boxes, write_predicted_boxes
from ava_detect.data.time_axis import AVA
from ava_detect.data.video import VideoInfo, list_videos, probe_video
from ava_detect.detection import build_detector, keyframes
from ava_detect.detection.base import PersonDetector
from ava_detect.detection.evaluation import PersonBoxReport, evaluate_person_boxes
from ava_detect.detection.sharding import Shard
from ava_detect.errors import AvaDetectError
from ava_detect.io import atomic_open
from ava_detect.structures import pixels_to_normalized
from ava_detect.io import PathLike
from ava_detect.io_paths import IOPaths, files_of

if TYPE_CHECKING:
    from ava_detect.config import DetectorConfig

logger = logging.getLogger(__name__)

#: One video to do: (file, its facts, its keyframe seconds).
_Job = Tuple[Path, VideoInfo, List[int]]


@dataclass(frozen=True)
class PrelabelSummary:
    """The CVAT pre-labels of :func:`detect_videos`.

    Attributes:
        folder: where the XMLs are. labels: the label definition (``labels.json``).
        written: XMLs written by this call (the others were current); tracks, boxes, checked: the
            tracks, person boxes at keyframes and checked action attributes in those.
    """

    folder: Path
    labels: Path
    written: int
    tracks: int
    boxes: int
    checked: int


@dataclass(frozen=True)
class DetectResult:
    """What :func:`detect_videos` did.

    Attributes:
        out: the box CSV written (None: none asked for). videos: videos done; resumed: of those,
            finished by an earlier call. keyframes: keyframes over all videos; boxes: rows of the box
            CSV (without one: the person boxes of the XMLs written by this call).
        report: person-box AP and recall against the ground truth, when one was given.
        cvat: the CVAT pre-labels, when asked for.
    """

    out: Optional[Path]
    videos: int
    resumed: int
    keyframes: int
    boxes: int
    report: Optional[PersonBoxReport] = None
    cvat: Optional[PrelabelSummary] = None


class VideoOutputs(Protocol):
    """What a :class:`PerVideoOutput` wrote for one video."""

    tracks: int
    boxes: int
    checked: int


class PerVideoOutput(Protocol):
    """An output file per video made from its keyframe detections, beside the box CSV or instead of it:
    what :func:`detect_videos` asks of it. The one there is: CVAT pre-labels,
    :class:`~ava_detect.annotate.prelabel.CvatPrelabeller`."""

    folder: Path
    #: ``(flag, path)`` of the files it reads (never to be written).
    inputs: List[Tuple[str, Optional[str]]]

    def output_names(self, videos: Sequence[Path]) -> List[str]:
        """The names it writes into :attr:`folder` for ``videos``."""

    def settings(self) -> Dict[str, Any]:
        """What its outputs depend on besides the detections (JSON values)."""

    def why_not_current(self, video: Path, record: Dict[str, Any]) -> Optional[str]:
        """None when ``video``'s output was made with ``record``; else why it must be made (``"missing"``, ...)."""

    def write(self, video: Path, info: VideoInfo, detections: Sequence[keyframes.KeyframeDetections], *,
              second_offset: int, fps: int, record: Dict[str, Any]) -> VideoOutputs:
        """Write ``video``'s output from its keyframes' detections, recorded as made with ``record``."""

    def write_labels(self) -> Path:
        """Write what the outputs share (once, by the first process, at the end)."""

    def labels_path(self) -> Path:
        """Where :meth:`write_labels` writes."""


class DetectProgress:
    """What :func:`detect_videos` reports while it runs: these methods do nothing; the command line passes
    an object with the same two methods that prints and shows a progress bar."""

    def start(self, *, videos: int, resumed: int, keyframes: int, detector: Optional[str]) -> None:
        """Before detecting: ``videos`` in all (this process's share under ``torchrun``), ``resumed`` already
        done, ``keyframes`` to detect, and the detector's one-line description (None when nothing is left
        to detect)."""

    def keyframe(self, video: Path) -> None:
        """One keyframe of ``video`` detected."""


def find_videos(paths: Sequence[PathLike]) -> List[Path]:
    """Video files of ``paths`` (files, and the videos of folders), each once, in order.

    Raises:
        AvaDetectError: a missing path or a folder without videos.
    """
    return files_of(paths, list_videos, none_in_folder="folder has no video files",
                    missing="video file or folder not found")


def declared_paths(videos: Sequence[Path], out: Optional[Path], detector: "DetectorConfig",
                   ground_truth: Optional[PathLike] = None, *, cvat: Optional["PerVideoOutput"] = None) -> IOPaths:
    """What :func:`detect_videos` reads (videos, ground truth, the detector's files) and writes
    (``out``, and its resumable parts folder beside it; the CVAT folder with an XML per video and
    the label definition)."""
    paths = IOPaths().input("--videos", list(videos)).input("--gt", ground_truth) \
        .input("detector.weights", detector.weights or None).input("detector.boxes_csv", detector.boxes_csv or None) \
        .output("--out", out)
    if cvat is not None:
        for label, path in cvat.inputs:
            paths.input(label, path)
        paths.folder("--cvat", cvat.folder, writes=cvat.output_names(videos))
    return paths


def _check_ids(videos: Sequence[Path]) -> None:
    ids: Dict[str, Path] = {}
    for v in videos:
        if v.stem in ids and ids[v.stem] != v.resolve():
            raise AvaDetectError(f"two videos have the id {v.stem!r}: {ids[v.stem]} and {v}", v)
        ids[v.stem] = v.resolve()


def _parts_folder(out: Path) -> Path:
    """The folder of finished videos beside ``out``: ``.<name>.parts``."""
    return out.parent / f".{out.name}.parts"


def _open_parts(out: Path, settings: Dict[str, Any], restart: bool) -> Path:
    """The folder of finished videos beside ``out``: kept when it holds results of ``settings``,
    removed otherwise (or with ``restart``). It is (re)made by :func:`_detect_video` when the first
    video is done, so a run that fails before that (no detector weights offline) leaves nothing."""
    parts = _parts_folder(out)
    if parts.is_dir():
        try:
            old = json.loads((parts / "settings.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = None
        if restart or old != settings:
            if not restart:
                changed = sorted(k for k in settings if not isinstance(old, dict) or old.get(k) != settings[k])
                logger.warning("%s holds results of other settings (%s); starting over", parts,
                               ", ".join(changed) or "no record of them")
            shutil.rmtree(parts)
    return parts


def _video_identity(video: Path, seconds: Sequence[int]) -> Dict[str, Any]:
    """What a finished video's part must match to be reused: the file as it is now and its keyframes."""
    st = video.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "seconds": list(seconds)}


def _part_is_current(parts: Path, job: _Job) -> bool:
    """Whether ``parts`` holds a finished result of this video as it is now (else it is detected again)."""
    v, _, secs = job
    try:
        meta = json.loads((parts / f"{v.stem}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    identity = _video_identity(v, secs)
    current = isinstance(meta, dict) and all(meta.get(k) == identity[k] for k in identity)
    if not current:
        logger.warning("%s: changed since its boxes were detected (or other keyframes); detecting it again", v)
    return current


def _needs_work(job: _Job, parts: Optional[Path], cvat: Optional["PerVideoOutput"], record: Dict[str, Any],
                restart: bool) -> bool:
    """Whether a video must be detected (again): its part of the box CSV or its CVAT XML is missing or stale."""
    if parts is not None and not _part_is_current(parts, job):
        return True
    if cvat is None:
        return False
    if restart:
        return True
    why = cvat.why_not_current(job[0], record)
    if why is not None and why != "missing":
        logger.warning("%s: its CVAT XML was made %s; writing it again", job[0],
                       "without a record of its settings" if why.startswith("no record") else f"with other settings ({why})")
    return why is not None


def _detect_video(job: _Job, detector: PersonDetector, *, second_offset: int, fps: int, chunk: int,
                  parts: Optional[Path], settings: Dict[str, Any],
                  progress: DetectProgress) -> List[keyframes.KeyframeDetections]:
    """Detect one video's keyframes; with ``parts``, write them to ``parts/<id>.csv``, then mark it done
    (``parts/<id>.json``). Returns the keyframes' detections (pixels)."""
    v, info, secs = job
    found, rows = [], []
    for kb in keyframes.detect_keyframes(v, detector=detector, video_id=v.stem, seconds=secs, fps=fps,
                                         second_offset=second_offset, num_frames=info.num_frames, chunk=chunk):
        found.append(kb)
        norm = pixels_to_normalized(kb.boxes, kb.width, kb.height).numpy()
        for box, score in zip(norm, kb.scores.tolist()):
            rows.append((v.stem, kb.second, *box.tolist(), score))
        progress.keyframe(v)
    if parts is None:
        return found
    df = pd.DataFrame(rows, columns=["video_id", "second", "x1", "y1", "x2", "y2", "score"])
    if not (parts / "settings.json").is_file():  # the first finished video makes the folder
        parts.mkdir(parents=True, exist_ok=True)
        with atomic_open(parts / "settings.json", "w", encoding="utf-8") as f:
            json.dump(settings, f)
    write_predicted_boxes(parts / f"{v.stem}.csv", df)
    with atomic_open(parts / f"{v.stem}.json", "w", encoding="utf-8") as f:  # written last: the video is done
        json.dump({"video": str(v), **_video_identity(v, secs), "width": info.width, "height": info.height, "boxes": len(rows)}, f)
    return found


def _join(videos: Sequence[Path], parts: Path,
          out: Path) -> Tuple[List[Tuple[str, int]], Dict[str, Tuple[int, int]], int]:
    """Concatenate the finished videos into ``out``; returns (keys detected, (width, height) per video, rows)."""
    detected_keys, sizes, n_boxes = [], {}, 0
    with atomic_open(out, "w", encoding="utf-8", newline="") as f:
        for v in videos:
            meta = json.loads((parts / f"{v.stem}.json").read_text(encoding="utf-8"))
            detected_keys += [(v.stem, int(s)) for s in meta["seconds"]]
            sizes[v.stem] = (int(meta["width"]), int(meta["height"]))
            n_boxes += int(meta["boxes"])
            f.write((parts / f"{v.stem}.csv").read_text(encoding="utf-8"))
    return detected_keys, sizes, n_boxes


def file_identity(path: Optional[str]) -> Any:
    """A settings entry for an input file: its path, size and time of change (a file replaced under
    the same name is another setting); the path alone when it is no file (a published name)."""
    if not path or not Path(path).is_file():
        return path
    st = Path(path).stat()
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _settings(detector: "DetectorConfig", *, every: Optional[float], seconds: Optional[Tuple[int, int]],
              second_offset: int, fps: int) -> Dict[str, Any]:
    """What the detections depend on besides the video (JSON values; the record of the parts folder)."""
    return {"backend": detector.backend, "model": detector.model, "precision": detector.precision,
            "weights": file_identity(detector.weights),
            "boxes_csv": file_identity(detector.boxes_csv),
            "boxes_format": detector.boxes_format, "detectron2_config": detector.detectron2_config,
            "score_threshold": detector.score_threshold, "min_size": detector.min_size,
            "max_size": detector.max_size, "proposals": detector.proposals, "every": every if every is None else int(every),
            "seconds": None if seconds is None else "{}-{}".format(*seconds), "second_offset": second_offset,
            "fps": fps}


def _plan(videos: Sequence[Path], *, every: Optional[float], seconds: Optional[Tuple[int, int]], second_offset: int,
          fps: int) -> List[_Job]:
    """Each video with its facts (a truncated video: warned about, its real end used) and keyframe seconds."""
    plan = []
    for v in videos:
        info = probe_video(v, fps=fps, check_end=True)
        plan.append((v, info, keyframes.keyframe_seconds(duration=info.duration, second_offset=second_offset,
                                                         every=every, seconds=seconds)))
    return plan


def detect_videos(
    videos: Sequence[PathLike],
    out: Optional[PathLike] = None,
    *,
    detector: "DetectorConfig",
    device: Union[str, torch.device] = "cpu",
    every: Optional[float] = None,
    seconds: Optional[Tuple[int, int]] = None,
    second_offset: int = AVA.start_second,
    fps: int = AVA.fps,
    ground_truth: Optional[PathLike] = None,
    restart: bool = False,
    progress: Optional[DetectProgress] = None,
    cvat: Optional["PerVideoOutput"] = None,
    shard: Optional[Shard] = None,
) -> DetectResult:
    """Detect people at the keyframes of ``videos`` and write one AVA box CSV ``out`` and / or CVAT
    pre-labels (see the module docstring).

    Args:
        videos: video files and / or folders of videos.
        out: the box CSV to write (None: none; then ``cvat`` is needed).
        detector: the ``detector`` config section (backend, weights, threshold, sizes, batch size).
        device: where a neural detector runs (built only when some video is left to detect).
        every: seconds between keyframes from file time 0 (a whole number; default 1), or
        seconds: ``(first, last)`` keyframe seconds instead, e.g. ``(902, 1798)``.
        second_offset: the second of file time 0 (900: prepared AVA videos; 0: plain clips).
        fps: the frame-index time axis (``data.fps``; 30).
        ground_truth: AVA ground-truth CSV to compare the boxes with (read before the long part).
        restart: discard the finished videos of an earlier call.
        progress: told what is being done (:class:`DetectProgress`).
        cvat: also write CVAT pre-labels, one XML per video (:class:`~ava_detect.annotate.prelabel.CvatPrelabeller`).
        shard: this process's share of a ``torchrun`` launch (:class:`~ava_detect.detection.sharding.Shard`;
            default: that of the process group joined, or every video).

    Returns:
        The same totals in every process; the ground-truth report in the first one only.

    Raises:
        AvaDetectError: missing or unreadable videos, two videos with one id, an output that is an
            input or a folder, a bad ground-truth file, detector errors, nothing to write. ``out`` is
            written only at the end.
    """
    progress, shard = progress or DetectProgress(), shard or Shard.current()
    if out is None and cvat is None:
        raise AvaDetectError("nothing to write: give a box CSV (--out) and / or a CVAT folder (--cvat)")
    out = None if out is None else Path(out)
    found = find_videos(videos)
    declared_paths(found, out, detector, ground_truth, cvat=cvat).check()
    _check_ids(found)
    gt = read_ground_truth(ground_truth) if ground_truth else None
    settings = _settings(detector, every=every, seconds=seconds, second_offset=second_offset, fps=fps)
    parts = None
    if out is not None:
        parts = _open_parts(out, settings, restart) if shard.is_main else _parts_folder(out)
        shard.barrier()  # stale parts are gone before any process looks at them
    plan = _plan(shard.owned(found), every=every, seconds=seconds, second_offset=second_offset, fps=fps)
    xml_settings = {**settings, **cvat.settings()} if cvat is not None else {}
    records = {v: {**xml_settings, "video": _video_identity(v, secs)} for v, _, secs in plan}
    todo = [job for job in plan if _needs_work(job, parts, cvat, records[job[0]], restart)]
    model = build_detector(detector, device=device) if todo else None
    progress.start(videos=len(plan), resumed=len(plan) - len(todo), keyframes=sum(len(s) for _, _, s in todo),
                   detector=model.describe() if model is not None else None)
    written = []
    for job in todo:
        found_boxes = _detect_video(job, model, second_offset=second_offset, fps=fps, chunk=max(1, detector.batch_size),
                                    parts=parts, settings=settings, progress=progress)
        if cvat is not None:
            written.append(cvat.write(job[0], job[1], found_boxes, second_offset=second_offset, fps=fps,
                                      record=records[job[0]]))
    return _finish(found, shard.gather(_share(plan, todo, written, parts)), out=out, parts=parts, cvat=cvat, gt=gt,
                   shard=shard)


def _share(plan: Sequence[_Job], todo: Sequence[_Job], written: Sequence["VideoOutputs"],
           parts: Optional[Path]) -> Dict[str, int]:
    """This process's counts: its videos, resumed ones, keyframes, box-CSV rows, and what its XMLs hold."""
    rows = sum(int(json.loads((parts / f"{v.stem}.json").read_text(encoding="utf-8"))["boxes"]) for v, _, _ in plan) \
        if parts is not None else 0
    return {"videos": len(plan), "resumed": len(plan) - len(todo), "keyframes": sum(len(s) for _, _, s in plan),
            "rows": rows, "xmls": len(written), "tracks": sum(w.tracks for w in written),
            "xml_boxes": sum(w.boxes for w in written), "checked": sum(w.checked for w in written)}


def _finish(found: Sequence[Path], shares: Sequence[Dict[str, int]], *, out: Optional[Path], parts: Optional[Path],
            cvat: Optional["PerVideoOutput"], gt: Optional[pd.DataFrame], shard: Shard) -> DetectResult:
    """Once every process is done (``shares`` gathered): the first one writes the label definition, joins
    the box CSV and compares it with the ground truth; every one returns the totals."""
    total = {k: sum(s[k] for s in shares) for k in shares[0]}
    report = None
    if shard.is_main:
        if cvat is not None:
            cvat.write_labels()
        if out is not None:
            detected_keys, sizes, n_boxes = _join(found, parts, out)
            shutil.rmtree(parts)
            logger.debug("wrote %s: %d boxes at %d keyframes of %d videos", out, n_boxes, len(detected_keys), len(found))
            if gt is not None:
                report = evaluate_person_boxes(ground_truth=gt, detections=read_predicted_boxes(out),
                                               detected_keys=detected_keys, image_sizes=sizes)
    prelabels = None
    if cvat is not None:
        prelabels = PrelabelSummary(folder=cvat.folder, labels=cvat.labels_path(), written=total["xmls"],
                                    tracks=total["tracks"], boxes=total["xml_boxes"], checked=total["checked"])
    return DetectResult(out=out, videos=total["videos"], resumed=total["resumed"], keyframes=total["keyframes"],
                        boxes=total["rows"] if out is not None else total["xml_boxes"], report=report, cvat=prelabels)
