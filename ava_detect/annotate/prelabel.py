"""Pre-labels for CVAT: the people ``detect`` finds, tracked across keyframes, as one "CVAT for video 1.1"
XML per video, to import into a CVAT task made from that video and correct there.

Per video ``<id>`` (the file name without its suffix) the folder gets ``<id>.xml``: one ``person`` track
per tracked person (:class:`~ava_detect.annotate.tracking.IoUTracker`, ``annotate.track_iou`` /
``annotate.track_max_age``; CVAT's track ids are the tracker's), a box marked as a keyframe at each
keyframe the person is seen at, an ``outside`` box where a track ends or pauses, and one checkbox
attribute per action of the label map. With an action model (``--weights``), a box's checkboxes are
the actions it scores at least ``action_threshold`` for (model-assisted labelling); without, all are
false. The folder also gets ``labels.json``, the label definition to paste into CVAT's label
constructor (Raw) before importing.

**Frames.** CVAT numbers a video's own pictures (0, 1, ... in presentation order, whatever the
frame rate), so a keyframe at second ``s`` goes to the video's own frame shown at file time
``s - second_offset`` (:func:`~ava_detect.data.frame_numbers.frame_shown_at`; ``floor(t * rate)``
for a constant rate), which is the picture the detector saw. The task's size is the video's own
frame count. Boxes are pixels of the picture as a player shows it (CVAT turns rotated videos
upright too), clipped to the frame.

**Clips.** The action model sees the clip the dataset would make for the keyframe: frames
``clip_frame_indices(centre, ...)`` of the ``fps`` axis (``centre = (s - second_offset) * fps``),
read with :func:`~ava_detect.data.video.read_video_frames`, through the test transform.

This is what :func:`~ava_detect.detection.detect_videos` writes per video with ``cvat=`` (a
:class:`~ava_detect.detection.videos.PerVideoOutput`); ``ava-detect detect --cvat`` builds it.

**Resumable.** Each XML is recorded with the settings it was made with, its video as it was and its
keyframes (:mod:`ava_detect.reuse`); a run with the same settings skips videos whose XML is current.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ava_detect import reuse
from ava_detect.annotate.tracking import IoUTracker
from ava_detect.data.frame_numbers import frame_shown_at, frame_times
from ava_detect.data.sampler import clip_frame_indices
from ava_detect.data.video import VideoInfo, read_video_frames
from ava_detect.detection.videos import file_identity
from ava_detect.errors import AvaDetectError
from ava_detect.io import PathLike, atomic_open

if TYPE_CHECKING:
    from ava_detect.annotate.action import ActionPredictor
    from ava_detect.config import Config
    from ava_detect.data.ava_files import LabelMap
    from ava_detect.detection.keyframes import KeyframeDetections

logger = logging.getLogger(__name__)

#: The one label of the pre-labels.
PERSON = "person"
#: The label definition written beside the XMLs.
LABELS_FILE = "labels.json"


@dataclass(frozen=True)
class VideoPrelabels:
    """What :meth:`CvatPrelabeller.write` wrote for one video: the XML, its tracks, boxes (people at
    keyframes) and checked attributes."""

    path: Path
    tracks: int
    boxes: int
    checked: int


class CvatPrelabeller:
    """Writes the CVAT pre-labels of videos into ``folder`` (see the module docstring).

    Args:
        folder: where ``<id>.xml`` and ``labels.json`` go (made when the first is written).
        actions: the checkbox attributes: the label map's action names, in its order (= the model's columns).
        track_iou, track_max_age: tracker settings.
        predictor: the action model behind its test transform (None: all checkboxes false).
        action_threshold: a checkbox is checked when its action scores at least this.
        num_frames, sampling_rate: the action model's clip (fast pathway frames, stride on the ``fps`` axis).
        batch_size: keyframe clips per action-model pass.
        model_settings: what else decides the predictions (weights file, model config), for the reuse record.
        inputs: ``(flag, path)`` of the files it reads (label map, weights), never to be written.
    """

    def __init__(self, folder: PathLike, *, actions: Sequence[str], track_iou: float = 0.3, track_max_age: int = 2,
                 predictor: Optional["ActionPredictor"] = None, action_threshold: float = 0.3, num_frames: int = 32,
                 sampling_rate: int = 2, batch_size: int = 4, model_settings: Optional[Dict[str, Any]] = None,
                 inputs: Sequence[Tuple[str, Optional[str]]] = ()):
        self.folder = Path(folder)
        self.actions = [str(a) for a in actions]
        if len(set(self.actions)) != len(self.actions):
            dup = sorted({a for a in self.actions if self.actions.count(a) > 1})
            raise AvaDetectError(f"the label map names an action twice ({', '.join(map(repr, dup))}); CVAT "
                                 f"attributes need distinct names")
        if predictor is not None and predictor.num_classes != len(self.actions):
            raise AvaDetectError(f"the action model predicts {predictor.num_classes} classes but the label map has "
                                 f"{len(self.actions)}; pass the label map the model was trained with (--labelmap)")
        self.track_iou, self.track_max_age = float(track_iou), int(track_max_age)
        self.predictor, self.action_threshold = predictor, float(action_threshold)
        self.num_frames, self.sampling_rate, self.batch_size = int(num_frames), int(sampling_rate), max(1, batch_size)
        self.model_settings = dict(model_settings or {})
        self.inputs = [(label, path) for label, path in inputs if path]

    @classmethod
    def from_config(cls, cfg: "Config", folder: PathLike, *, labelmap: "LabelMap",
                    predictor: Optional["ActionPredictor"] = None, weights: Optional[str] = None,
                    action_threshold: Optional[float] = None) -> "CvatPrelabeller":
        """The tracker of ``annotate``, the clip of ``model``, the threshold ``annotate.threshold``
        (unless given), the actions of ``labelmap``.

        Raises:
            AvaDetectError: ``model.num_classes`` (with a ``predictor``) differs from the label map's size.
        """
        if predictor is not None:
            check_labelmap_fits(cfg, labelmap)
        a = cfg.annotate
        threshold = float(a.threshold if action_threshold is None else action_threshold)
        model = None
        if predictor is not None:
            from ava_detect.config import config_to_dict

            model = {"weights": file_identity(weights), "model": config_to_dict(cfg)["model"],
                     "test_short_side": cfg.data.test_short_side, "mean": list(cfg.data.mean),
                     "std": list(cfg.data.std), "bf16": predictor.bf16, "fuse_bn": a.fuse_bn}
        return cls(folder, actions=[labelmap.names[i] for i in labelmap.ids], track_iou=a.track_iou,
                   track_max_age=a.track_max_age, predictor=predictor, action_threshold=threshold,
                   num_frames=cfg.model.num_frames, sampling_rate=cfg.model.sampling_rate, batch_size=a.batch_size,
                   model_settings=model, inputs=[("--labelmap", labelmap.path), ("--weights", weights)])

    # ---- files ---------------------------------------------------------------------------------

    def xml_path(self, video: Path) -> Path:
        """``<folder>/<video id>.xml``."""
        return self.folder / f"{video.stem}.xml"

    def output_names(self, videos: Sequence[Path]) -> List[str]:
        """The names written into the folder for ``videos`` (for :class:`~ava_detect.io_paths.IOPaths`)."""
        return [self.xml_path(v).name for v in videos] + [LABELS_FILE]

    def settings(self) -> Dict[str, Any]:
        """What an XML depends on besides the detections (JSON values)."""
        return {"actions": list(self.actions), "track_iou": self.track_iou, "track_max_age": self.track_max_age,
                "action_threshold": self.action_threshold if self.predictor is not None else None,
                "action_model": self.model_settings or None}

    def why_not_current(self, video: Path, record: Dict[str, Any]) -> Optional[str]:
        """None when ``video``'s XML was made with ``record`` (settings, video as it is, keyframes); else why not."""
        return reuse.why_not_reusable(self.xml_path(video), record)

    def labels_path(self) -> Path:
        """``<folder>/labels.json``."""
        return self.folder / LABELS_FILE

    def write_labels(self) -> Path:
        """Write ``labels.json`` (CVAT's label constructor, Raw: one ``person`` label, a checkbox per action)."""
        from ava_detect.cvat.writer import label_constructor

        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.labels_path()
        with atomic_open(path, "w", encoding="utf-8") as f:
            f.write(json.dumps(label_constructor(self.actions), indent=2) + "\n")
        return path

    # ---- one video -----------------------------------------------------------------------------

    def write(self, video: Path, info: VideoInfo, detections: Sequence["KeyframeDetections"], *,
              second_offset: int, fps: int, record: Dict[str, Any]) -> VideoPrelabels:
        """Track one video's keyframe detections, score their actions, write ``<id>.xml`` and its record.

        Args:
            video, info: the file and its facts (:func:`~ava_detect.data.video.probe_video`, ``check_end``).
            detections: its keyframes in time order (pixel boxes of the shown picture).
            second_offset: the second of file time 0. fps: the clip time axis.
            record: what the XML is recorded as made with (:meth:`why_not_current`).

        Raises:
            AvaDetectError: an unreadable or truncated video.
        """
        from ava_detect.cvat.model import CvatTask
        from ava_detect.cvat.tracks import checkbox_attributes, keyframe_tracks
        from ava_detect.cvat.writer import write_cvat_xml

        times = frame_times(video, end=info.duration if info.truncated else None)
        frames = [frame_shown_at(times, kd.second - second_offset) for kd in detections]
        kept = [k for k in range(len(detections)) if k == 0 or frames[k] != frames[k - 1]]
        if len(kept) < len(detections):
            logger.warning("%s: %d keyframes fall on the frame of the keyframe before (a video of under 1 frame "
                           "per second?); only the first of each is written", video, len(detections) - len(kept))
        detections, frames = [detections[k] for k in kept], [frames[k] for k in kept]
        boxes = [_clipped(kd) for kd in detections]
        tracker = IoUTracker(min_iou=self.track_iou, max_age=self.track_max_age)
        ids = [tracker.update(b) for b in boxes]
        probs = self._action_scores(video, info, detections, boxes, second_offset=second_offset, fps=fps)
        observations, checked = [], 0
        for frame, b, i, p in zip(frames, boxes, ids, probs):
            for box, track_id, scores in zip(b.tolist(), i.tolist(), p):
                chosen = [a for a, s in zip(self.actions, scores.tolist()) if s >= self.action_threshold]
                checked += len(chosen)
                observations.append((int(track_id), int(frame), box, checkbox_attributes(chosen, self.actions)))
        tracks = keyframe_tracks(observations, keyframe_frames=frames, num_frames=len(times), label=PERSON)
        task = CvatTask(id=0, name=video.stem, source=video.name, size=len(times), width=info.width,
                        height=info.height, start_frame=0, stop_frame=len(times) - 1,
                        labels={PERSON: list(self.actions)}, attribute_types=dict.fromkeys(self.actions, "checkbox"))
        path = self.xml_path(video)
        self.folder.mkdir(parents=True, exist_ok=True)
        reuse.forget(path)
        write_cvat_xml(path, task, tracks, label_attributes=self.actions)
        reuse.record(path, record)
        return VideoPrelabels(path=path, tracks=len(tracks), boxes=len(observations), checked=checked)

    def _action_scores(self, video: Path, info: VideoInfo, detections: Sequence["KeyframeDetections"],
                       boxes: Sequence[np.ndarray], *, second_offset: int, fps: int) -> List[torch.Tensor]:
        """Per keyframe, ``float [K, len(actions)]`` action probabilities of its boxes (zeros without a model)."""
        if self.predictor is None:
            return [torch.zeros((len(b), len(self.actions))) for b in boxes]
        out: List[torch.Tensor] = []
        for start in range(0, len(detections), self.batch_size):
            clips = []
            for kd, b in zip(detections[start:start + self.batch_size], boxes[start:start + self.batch_size]):
                if not len(b):  # nobody to score: no clip to read
                    clips.append(np.zeros((0,), dtype=np.uint8))
                    continue
                centre = int(round((kd.second - second_offset) * fps))
                idx = clip_frame_indices(centre, num_frames=self.num_frames, sampling_rate=self.sampling_rate,
                                         num_video_frames=info.num_frames)
                clips.append(read_video_frames(video, idx, fps=fps, num_frames=info.num_frames, threads=0).numpy())
            out += self.predictor.predict(clips, [torch.from_numpy(b).float() for b in boxes[start:start + self.batch_size]])
        return out


def _clipped(kd: "KeyframeDetections") -> np.ndarray:
    """``float64 [K,4]`` the keyframe's pixel boxes clipped to its frame."""
    b = kd.boxes.detach().cpu().double().numpy().reshape(-1, 4).copy()
    b[:, 0::2] = b[:, 0::2].clip(0, kd.width)
    b[:, 1::2] = b[:, 1::2].clip(0, kd.height)
    return b


def check_labelmap_fits(cfg: "Config", labelmap: "LabelMap") -> None:
    """Refuse a label map whose size is not ``model.num_classes`` (the action model's columns).

    Raises:
        AvaDetectError: naming both sizes and the label map file.
    """
    if cfg.model.num_classes != len(labelmap):
        raise AvaDetectError(f"model.num_classes={cfg.model.num_classes} but the label map has {len(labelmap)} "
                             f"classes; pass the label map the model was trained with (--labelmap) or its config "
                             f"(--config)", labelmap.path)


def predictor_for(cfg: "Config", weights: str, device: torch.device) -> "ActionPredictor":
    """The action model of ``cfg.model`` with ``weights``, whose detection head must be in the file
    (pre-labels from a freshly initialised head would be noise).

    Raises:
        AvaDetectError: weights that cannot be read, or do not fit the model (another number of classes).
    """
    from ava_detect.annotate.annotator import build_predictor

    return build_predictor(cfg, weights=weights, device=device, head="load")


__all__ = ["CvatPrelabeller", "VideoPrelabels", "LABELS_FILE", "PERSON", "check_labelmap_fits", "predictor_for"]
