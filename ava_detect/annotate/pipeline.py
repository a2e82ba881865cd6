"""``annotate``: a video in, the video with boxes and action labels out, plus CSV / JSON results.

Streaming, in one pass over the decoded frames::

    decode -> ring buffer of RGB frames -> keyframe pictures -> person detector -> tracker (ids)
                         \\-> clip around each keyframe -> action model (batches) -> results (CSV / JSON)
    frames whose latest keyframe is scored -> draw boxes + labels -> h264 encoder (+ audio copied)

**Keyframes** are at file times ``0, every, 2 * every, ...`` inside the video (``t = 0`` included,
so every frame has a latest keyframe). A keyframe's picture is the frame shown at its time.
**Clips** are chosen by time, as the AVA dataset chooses them: on the ``fps`` (30) time axis the
clip of the keyframe at time ``t`` takes frames ``clip_frame_indices(round(t * fps), ...)`` (clamped
to the video), and each index ``i`` is the frame shown at ``i / fps`` seconds; a 25 or 60 fps video
thus gets the same temporal spacing as a 30 fps one, and a prepared AVA video gives exactly the
clips of ``ava-detect test``. The clip and boxes go through the test dataset's transform.

**Rendering**: frame ``k`` shows the boxes and labels of the latest keyframe whose picture is at or
before it; boxes of people seen (same track id) at the next keyframe too are interpolated
linearly in time between the two keyframe pictures, others stay where they were.

**Memory** does not grow with the video's length: the buffer holds the frames of the oldest clip
not yet scored up to the newest decoded frame, and frames are encoded as soon as their keyframe's
scores and the next keyframe's boxes exist, so a frame waits about one keyframe interval plus half
a clip (the action model runs early, with fewer clips than its batch size, rather than let frames
wait longer). Results are written keyframe by keyframe.

**Frames as the input plays**: frames are read through
:class:`~ava_detect.data.video_reader.VideoReader`, so a rotated input (display matrix or ``rotate``
tag) is turned upright before the models see it, and the output is written upright (it plays as
the input plays; sizes and box coordinates are those of the upright picture); each output frame
keeps its input frame's presentation time (a variable frame rate is kept, not re-timed); and a
truncated input is annotated as far as its frames go, with one warning.

**Outputs** are written to temporary names and renamed only when everything succeeded; the input
file is never an output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import time
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Deque, Dict, List, Optional, Sequence, Tuple

import av
import numpy as np
import torch

from ava_detect.annotate.action import ActionPredictor
from ava_detect.annotate.options import AnnotateOptions
from ava_detect.annotate.render import DrawnPerson, FrameRenderer, Renderer
from ava_detect.annotate.results import ResultWriter
from ava_detect.annotate.tracking import IoUTracker
from ava_detect.annotate.video_writer import VideoWriter
from ava_detect.data.sampler import clip_frame_indices
from ava_detect.data.video import FRAME_TIME_TOLERANCE_S, VideoInfo, VideoReader, probe_video
from ava_detect.detection.base import PersonDetector
from ava_detect.errors import AvaDetectError
from ava_detect.io import atomic_open, atomic_path
from ava_detect.structures import pixels_to_normalized
from ava_detect.io import PathLike
from ava_detect.io_paths import IOPaths

logger = logging.getLogger(__name__)

_TOL = FRAME_TIME_TOLERANCE_S


def check_output_paths(video: PathLike, outputs: Sequence[Optional[PathLike]],
                       inputs: Sequence[Tuple[str, Optional[PathLike]]] = ()) -> None:
    """Refuse outputs that are the input video (or another input), the same file twice, a folder,
    or in a place that cannot be written (:class:`~ava_detect.io_paths.IOPaths`).

    Args:
        outputs: the annotated video, the CSV, the JSON and the JSON Lines (None: not written).
        inputs: ``(label, path)`` of the other files read (weights, box CSV, label map, config).

    Raises:
        AvaDetectError: naming the offending path.
    """
    paths = IOPaths().input("the input video", video)
    for label, path in inputs:
        paths.input(label, path)
    for label, path in zip(("--out", "--csv", "--json", "--jsonl"), outputs):
        paths.output(label, path)
    paths.check()


@dataclass
class AnnotateStats:
    """What :func:`annotate_video` did.

    Attributes:
        frames: frames written (= frames decoded). keyframes: keyframes scored. boxes: person
            boxes over all keyframes. rows: CSV rows. tracks: distinct person ids.
        video_seconds: duration of the video (s).
        timings: seconds spent in ``decode`` (incl. RGB conversion), ``detect``, ``action``
            (transform + model), ``render`` (drawing), ``encode`` (h264 + muxing) and ``total``.
        max_buffered_frames: most decoded frames held at once (bounded, whatever the video length).
        width, height, rate: of the input as shown (= of the output).
    """

    frames: int = 0
    keyframes: int = 0
    boxes: int = 0
    rows: int = 0
    tracks: int = 0
    video_seconds: float = 0.0
    timings: Dict[str, float] = field(default_factory=lambda: dict.fromkeys(
        ("decode", "detect", "action", "render", "encode", "total"), 0.0))
    max_buffered_frames: int = 0
    width: int = 0
    height: int = 0
    rate: float = 0.0


def summary(stats: AnnotateStats) -> Dict[str, object]:
    """What a pass did, for the last JSON Lines line: frames, keyframes, boxes, people, seconds of video."""
    return {"frames": stats.frames, "keyframes": stats.keyframes, "boxes": stats.boxes,
            "people": stats.tracks, "video_seconds": round(stats.video_seconds, 3)}


@dataclass
class _Frame:
    index: int  # decode order = output frame number
    time: float  # seconds from the start of the video stream
    rgb: np.ndarray
    in_timeline: bool  # False for a frame whose timestamp goes backwards (not used for clips)
    rendered: bool = False


@dataclass
class _Keyframe:
    number: int
    time: float
    second: int
    clip_times: List[float]
    frame_index: int
    frame_time: float
    image: Optional[np.ndarray]
    clip: Optional[List[np.ndarray]] = None
    clip_done: bool = False
    boxes: Optional[torch.Tensor] = None  # [K,4] pixels
    det_scores: Optional[torch.Tensor] = None
    ids: Optional[np.ndarray] = None
    probs: Optional[torch.Tensor] = None  # [K,C]
    drawn: Optional[List[DrawnPerson]] = None


class _Annotator:
    """The state of one streaming pass (see :func:`annotate_video`).

    Args:
        options: the pass's settings. detector, predictor: the two models.
        renderer: draws people on frames; writer: encodes them; results: writes the CSV / JSON.
        video_id: box-CSV key and first CSV column. info: the input's facts (size, frames on the fps axis).
        column_names: the display name of each action-model output column.
        stats: filled in as the pass goes. progress: called with the number of frames written so far.
    """

    def __init__(self, *, options: AnnotateOptions, detector: PersonDetector, predictor: ActionPredictor,
                 renderer: FrameRenderer, writer: VideoWriter, results: ResultWriter, video_id: str, info: VideoInfo,
                 column_names: Sequence[str], stats: AnnotateStats, progress: Optional[Callable[[int], None]]):
        o = self.options = options
        self.detector, self.predictor, self.renderer = detector, predictor, renderer
        self.writer, self.results = writer, results
        self.tracker = IoUTracker(min_iou=o.track_iou, max_age=o.track_max_age)
        self.video_id, self.info, self.column_names = video_id, info, list(column_names)
        self.batch_size, self.detect_batch = max(1, o.batch_size), max(1, o.detect_batch)
        self.every, self.num_frames, self.sampling_rate, self.fps = o.every, o.num_frames, o.sampling_rate, o.fps
        self.stats, self.progress = stats, progress
        #: how long a frame may wait for its keyframe's scores before the action model runs early
        self.max_wait = o.every + o.num_frames * o.sampling_rate / (2.0 * o.fps) + 1.0 / o.fps
        self.buffer: Deque[_Frame] = deque()
        self.last_time: Optional[float] = None  # newest frame time in the timeline
        self.ended = False
        self.end_time = math.inf
        self.next_kf = 0  # number of the next keyframe to create
        self.pending: Deque[_Keyframe] = deque()  # created, not yet scored (in order)
        self.render_kfs: Deque[_Keyframe] = deque()  # keyframes frames may still be drawn from
        self.frames_seen = 0
        self.track_ids: set = set()

    # ---- keyframes and clips -------------------------------------------------------------

    def _kf_time(self, j: int) -> float:
        return j * self.every

    def _clip_times(self, t: float) -> List[float]:
        idx = clip_frame_indices(int(round(t * self.fps)), num_frames=self.num_frames,
                                 sampling_rate=self.sampling_rate, num_video_frames=self.info.num_frames or None)
        return [int(i) / self.fps for i in idx]

    def _frame_at(self, t: float) -> _Frame:
        """The frame shown at time ``t``: the last timeline frame with ``time <= t + tol`` (the first
        frame for times before it)."""
        first = None
        for f in reversed(self.buffer):
            if not f.in_timeline:
                continue
            first = f
            if f.time <= t + _TOL:
                return f
        assert first is not None, "frame buffer lost a needed frame"
        return first

    def _known_until(self, t: float) -> bool:
        """Whether the frame shown at ``t`` is decided (a later frame was decoded, or the stream ended)."""
        return self.ended or (self.last_time is not None and self.last_time > t + _TOL)

    def _create_keyframes(self) -> None:
        while True:
            t = self._kf_time(self.next_kf)
            exists = t + _TOL < self.end_time if self.ended else self._known_until(t)
            if not exists:
                return
            frame = self._frame_at(t)
            second = self.options.second_offset + int(math.floor(t + 1e-6))
            kf = self._new_keyframe(frame, number=self.next_kf, time=t, second=second,
                                    clip_times=self._clip_times(t), frame_index=frame.index, frame_time=frame.time,
                                    image=frame.rgb)
            self.pending.append(kf)
            self.render_kfs.append(kf)
            self.next_kf += 1

    def _new_keyframe(self, frame: _Frame, **fields) -> _Keyframe:
        """The keyframe whose picture is ``frame``."""
        return _Keyframe(**fields)

    def _assemble_clips(self) -> None:
        for kf in self.pending:
            if kf.clip_done:
                continue
            if not self._known_until(kf.clip_times[-1]):
                return
            kf.clip = [self._frame_at(t).rgb for t in kf.clip_times]
            kf.clip_done = True

    # ---- models --------------------------------------------------------------------------

    def _detect(self) -> None:
        todo = [kf for kf in self.pending if kf.ids is None]
        if not todo:
            return
        if not (self.ended or len(todo) >= self.detect_batch or todo[0].clip_done):
            return
        start = time.perf_counter()
        found = self.detector.detect([torch.from_numpy(kf.image) for kf in todo],
                                     keys=[(self.video_id, kf.second) for kf in todo])
        self.stats.timings["detect"] += time.perf_counter() - start
        for kf, (boxes, scores) in zip(todo, found):
            kf.boxes, kf.det_scores = boxes.float().cpu(), scores.float().cpu()
            kf.ids = self.tracker.update(kf.boxes.numpy())
            kf.image = None
            self.track_ids.update(int(i) for i in kf.ids)

    def _oldest_unrendered_time(self) -> Optional[float]:
        for f in self.buffer:
            if not f.rendered:
                return f.time
        return None

    def _score(self) -> None:
        while True:
            ready = []
            for kf in self.pending:
                if kf.ids is None or not kf.clip_done:
                    break
                ready.append(kf)
                if len(ready) == self.batch_size:
                    break
            if not ready:
                return
            oldest = self._oldest_unrendered_time()
            waited_long = oldest is not None and self.last_time is not None and self.last_time - oldest > self.max_wait
            if not (len(ready) >= self.batch_size or self.ended or waited_long):
                return
            start = time.perf_counter()
            probs = self.predictor.predict([kf.clip for kf in ready], [kf.boxes for kf in ready])
            self.stats.timings["action"] += time.perf_counter() - start
            for kf, p in zip(ready, probs):
                kf.probs = p.float().numpy()
                kf.clip = None
                self._finish_keyframe(kf)
                self.pending.popleft()

    def _finish_keyframe(self, kf: _Keyframe) -> None:
        boxes_px = kf.boxes.numpy().astype(np.float64)
        boxes_norm = pixels_to_normalized(kf.boxes, self.info.width, self.info.height).numpy()
        self.results.write_keyframe(time=kf.time, second=kf.second, frame=kf.frame_index, boxes_norm=boxes_norm,
                                    boxes_px=boxes_px, det_scores=kf.det_scores.numpy(), person_ids=kf.ids,
                                    probs=kf.probs, extra=self._result_extra(kf))
        drawn = []
        for k in range(len(boxes_px)):
            labels = [(self.column_names[j], float(kf.probs[k, j])) for j in self.options.labels.drawn(kf.probs[k])]
            drawn.append(DrawnPerson(box=boxes_px[k], person_id=int(kf.ids[k]), labels=labels))
        kf.drawn = drawn
        self.stats.keyframes += 1
        self.stats.boxes += len(boxes_px)

    def _result_extra(self, kf: _Keyframe) -> Optional[Dict[str, object]]:
        """More fields of a keyframe's JSON Lines line (none for files)."""
        return None

    # ---- rendering -----------------------------------------------------------------------

    def _people_at(self, frame: _Frame, cur: _Keyframe, nxt: Optional[_Keyframe]) -> List[DrawnPerson]:
        assert cur.drawn is not None
        if nxt is None or nxt.ids is None or not len(nxt.ids) or frame.index == cur.frame_index:
            return cur.drawn
        span = nxt.frame_time - cur.frame_time
        alpha = min(max((frame.time - cur.frame_time) / span, 0.0), 1.0) if span > 0 else 0.0
        where = {int(i): k for k, i in enumerate(nxt.ids)}
        nxt_boxes = nxt.boxes.numpy().astype(np.float64)
        people = []
        for person in cur.drawn:
            k = where.get(person.person_id)
            if k is None:
                people.append(person)
                continue
            box = (1.0 - alpha) * np.asarray(person.box) + alpha * nxt_boxes[k]
            people.append(DrawnPerson(box=box, person_id=person.person_id, labels=person.labels))
        return people

    def _render_ready(self) -> None:
        for frame in self.buffer:
            if frame.rendered:
                continue
            while len(self.render_kfs) >= 2 and self.render_kfs[1].frame_index <= frame.index:
                self.render_kfs.popleft()
            if not self.render_kfs:
                return
            cur = self.render_kfs[0]
            nxt = self.render_kfs[1] if len(self.render_kfs) >= 2 else None
            all_created = self.ended and not (self._kf_time(self.next_kf) + _TOL < self.end_time)
            if nxt is None and not all_created:
                return
            if cur.drawn is None or (nxt is not None and nxt.ids is None):
                return
            self._write_frame(frame, self._people_at(frame, cur, nxt))
            if self.progress is not None:
                self.progress(self.stats.frames)

    def _write_frame(self, frame: _Frame, people: List[DrawnPerson]) -> np.ndarray:
        """Draw ``people`` on ``frame`` and encode it (timed); returns the drawn picture."""
        start = time.perf_counter()
        image = self.renderer.draw(frame.rgb, people)
        mid = time.perf_counter()
        self.writer.write(image, time=frame.time)
        end = time.perf_counter()
        self.stats.timings["render"] += mid - start
        self.stats.timings["encode"] += end - mid
        frame.rendered = True
        self.stats.frames += 1
        return image

    def _drop_frames(self) -> None:
        # the earliest time a clip not yet assembled (created or not) still needs
        earliest = None
        for kf in self.pending:
            if not kf.clip_done:
                earliest = kf.clip_times[0]
                break
        if earliest is None:
            earliest = self._clip_times(self._kf_time(self.next_kf))[0] if not self.ended else math.inf
        while self.buffer and self.buffer[0].rendered:
            head = self.buffer[0]
            if head.in_timeline:
                later = next((f for f in list(self.buffer)[1:] if f.in_timeline), None)
                if later is None or later.time > earliest + _TOL:
                    break  # the head is still the frame shown at `earliest`
            self.buffer.popleft()

    # ---- driving -------------------------------------------------------------------------

    def _step(self) -> None:
        self._create_keyframes()
        self._assemble_clips()
        self._detect()
        self._score()
        self._render_ready()
        self._drop_frames()

    def add_frame(self, index: int, t: float, rgb: np.ndarray) -> None:
        in_timeline = self.last_time is None or t > self.last_time
        self.buffer.append(_Frame(index=index, time=t, rgb=rgb, in_timeline=in_timeline))
        if in_timeline:
            self.last_time = t
        self.stats.max_buffered_frames = max(self.stats.max_buffered_frames, len(self.buffer))
        self._step()

    def finish(self, end_time: float) -> None:
        self.ended = True
        self.end_time = end_time
        self._step()
        if self.pending or any(not f.rendered for f in self.buffer):
            raise AssertionError("annotate: frames or keyframes left after the end of the video")


def _open_outputs(stack: contextlib.ExitStack, video: Path, info: VideoInfo, *, reader: VideoReader, rate: Fraction,
                  out_video: PathLike, out_csv: Optional[PathLike], out_json: Optional[PathLike],
                  header: Dict[str, object], class_ids: Sequence[int], names: Dict[int, str],
                  options: AnnotateOptions, out_jsonl: Optional[PathLike] = None) -> Tuple[VideoWriter, ResultWriter]:
    """The video writer (audio copied) and the CSV / JSON writer, at temporary names renamed when ``stack`` exits
    without an error."""
    stream = reader.stream
    tb = stream.time_base
    video_start = float((stream.start_time or 0) * tb) if tb else 0.0
    tmp_video = stack.enter_context(atomic_path(out_video))
    csv_file = stack.enter_context(atomic_open(out_csv, "w", encoding="utf-8", newline="")) if out_csv else None
    json_file = stack.enter_context(atomic_open(out_json, "w", encoding="utf-8")) if out_json else None
    jsonl_file = stack.enter_context(atomic_open(out_jsonl, "w", encoding="utf-8")) if out_jsonl else None
    try:
        writer = VideoWriter(tmp_video, width=info.width, height=info.height, rate=rate,
                             audio_source=video if reader.container.streams.audio else None, video_start=video_start,
                             crf=options.crf, preset=options.preset, time_base=tb)
    except (av.FFmpegError, ValueError) as e:
        raise AvaDetectError(f"cannot write a video here ({e}); use a .mp4 file name", out_video) from None
    stack.enter_context(writer)
    results = ResultWriter(csv_file=csv_file, json_file=json_file, jsonl_file=jsonl_file, video_id=header["video_id"],
                           header=header, class_ids=class_ids, names=names, labels=options.labels)
    return writer, results


def _decode_into(annotator: _Annotator, reader: VideoReader, info: VideoInfo) -> float:
    """Feed every decoded frame (upright, with its presentation time) to ``annotator``; returns the
    end time of the last frame (s). A truncated video is warned about once."""
    index = 0
    frames = reader.frames()
    timings = annotator.stats.timings
    try:
        while True:
            t0 = time.perf_counter()
            item = next(frames, None)
            if item is None:
                break
            t, frame = item
            rgb = reader.rgb(frame, info.width, info.height)  # one size (also after a mid-stream size change)
            timings["decode"] += time.perf_counter() - t0
            annotator.add_frame(index, t, rgb)
            index += 1
    except av.FFmpegError as e:
        raise AvaDetectError(f"decoding failed near second {reader.end or 0.0:.2f} of the file "
                             f"(truncated or corrupt video?): {e}", reader.path) from None
    if reader.end is None:
        raise AvaDetectError("no frame could be decoded (zero-length or corrupt video)", reader.path)
    reader.check_end()
    return reader.end


def annotate_video(
    video: PathLike,
    *,
    out_video: PathLike,
    detector: PersonDetector,
    predictor: ActionPredictor,
    class_ids: Sequence[int],
    names: Dict[int, str],
    options: AnnotateOptions,
    out_csv: Optional[PathLike] = None,
    out_json: Optional[PathLike] = None,
    video_id: Optional[str] = None,
    renderer: Callable[..., FrameRenderer] = Renderer,
    progress: Optional[Callable[[int], None]] = None,
    out_jsonl: Optional[PathLike] = None,
) -> AnnotateStats:
    """Annotate one video (see the module docstring).

    Args:
        video: input file (any container / codec PyAV reads).
        out_video: annotated video (h264; the suffix picks the container, e.g. ``.mp4``).
        detector: person detector (for a box CSV, keys are ``(video_id, second)``).
        predictor: the action model with the test transform.
        class_ids: AVA action id of each model output column; names: id -> display name.
        options: keyframes, clip, labels, batches, tracking, encoding (:class:`AnnotateOptions`).
        out_csv, out_json, out_jsonl: result files (optional; JSON Lines: one line per keyframe).
        video_id: first CSV column and box-CSV key (default: the file name without its suffix).
        renderer: ``renderer(width=W, height=H)`` makes what draws the people on the frames
            (default :class:`~ava_detect.annotate.render.Renderer`).
        progress: called with the number of frames written so far.

    Returns:
        :class:`AnnotateStats`.

    Raises:
        AvaDetectError: unreadable, non-video or empty input; an output that is the input; decoding errors.
            No output file is left behind on any error.
    """
    start_all = time.perf_counter()
    video = Path(video)
    if len(class_ids) != predictor.num_classes:
        raise AvaDetectError(f"the label map has {len(class_ids)} classes but the action model predicts "
                             f"{predictor.num_classes}; pass the label map the model was trained with")
    check_output_paths(video, [out_video, out_csv, out_json, out_jsonl])
    if not Path(out_video).suffix:
        raise AvaDetectError("output video needs a file suffix that names the container, e.g. .mp4", out_video)
    info = probe_video(video, fps=options.fps)
    width, height = options.working_size(info.width, info.height)
    if (width, height) != (info.width, info.height):
        info = dataclasses.replace(info, width=width, height=height)  # pictures scaled on reading
    video_id = video_id if video_id is not None else video.stem
    stats = AnnotateStats(width=info.width, height=info.height, video_seconds=info.duration)

    reader = VideoReader(video, threads=0)
    with contextlib.ExitStack() as stack:
        stack.callback(reader.close)
        stream = reader.stream
        rate = stream.average_rate or stream.guessed_rate or Fraction(info.rate).limit_denominator(1001)
        stats.rate = float(rate)
        header = {"video": os.fspath(video), "video_id": video_id, "width": info.width, "height": info.height,
                  "fps": float(rate), "every": options.every, "second_offset": options.second_offset,
                  "threshold": options.labels.threshold, "labels": {str(i): names.get(int(i), "") for i in class_ids}}
        writer, results = _open_outputs(stack, video, info, reader=reader, rate=rate,
                                        out_video=out_video, out_csv=out_csv, out_json=out_json, header=header,
                                        class_ids=class_ids, names=names, options=options, out_jsonl=out_jsonl)
        annotator = _Annotator(
            options=options, detector=detector, predictor=predictor,
            renderer=renderer(width=info.width, height=info.height), writer=writer, results=results,
            video_id=video_id, info=info, column_names=[names.get(c, str(c)) for c in class_ids], stats=stats,
            progress=progress)
        annotator.finish(_decode_into(annotator, reader, info))
        if reader.is_truncated():
            stats.video_seconds = reader.end
        stats.tracks = len(annotator.track_ids)
        results.close(summary(stats))
        stats.rows = results.rows
    stats.timings["total"] = time.perf_counter() - start_all
    if writer.retimed:
        logger.warning("%s: %d frames have a timestamp that repeats or goes backwards; each was written one tick "
                       "(%g s) after the frame before it, all other frames keep their times", video, writer.retimed,
                       float(writer.time_base))
    if stats.boxes == 0:
        logger.warning("%s: no people found at any of the %d keyframes; the video is written without boxes%s",
                       video, stats.keyframes, " and the CSV has no rows" if out_csv else "")
    return stats
