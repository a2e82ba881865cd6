"""``annotate`` on a live stream: a camera or network feed annotated as it arrives, within a latency budget.

The frames, keyframes, clips, tracks, results and drawings are those of a file
(:mod:`ava_detect.annotate.pipeline`: keyframes at stream times 0, every, 2 * every, ..., clips
chosen by time, boxes interpolated between keyframes); what differs is time::

    source thread:  decode -> frames stamped with their arrival (a short queue; never blocks the stream)
    main thread:    frames -> keyframes and clips -> draw + encode each frame by its deadline -> outputs
    model thread:   one keyframe at a time: person detector, then the action model on its clip

**Latency budget** (``max_latency``): every frame is written (video, live view) at most
``max_latency`` seconds after it arrived. A frame waits for its keyframe's scores and the next
keyframe's boxes, as in a file, but only until its deadline; then it is drawn with what is known
(the latest scored keyframe's people, not interpolated). A keyframe is scored when its clip is
complete (half a clip after its picture) and the model thread is free. When the models cannot
keep up, whole keyframes are **skipped**, never queued: when several keyframes are waiting and
they cannot all be scored within their deadlines at the measured speed of the models, the newest
is scored and the older ones are skipped (``"behind"``); a keyframe whose scores would come after
its deadline is skipped too (``"late"``). Skipped keyframes have a JSON Lines line that says so.
Frames are dropped only if drawing and encoding cannot keep up with the stream (counted).

**Memory** is bounded by the budget: frames are held until written and while a pending clip
needs them, and neither outlives its deadline by more than a clip.

**Outputs** grow in place (they are usable while running and after a crash): JSON Lines and CSV
flushed per keyframe, the video as fragmented MP4 (:class:`~ava_detect.annotate.video_writer.VideoWriter`
``live=True``), and optionally the live view page (:class:`~ava_detect.annotate.live_view.LiveView`).
Existing files are never overwritten. **Stopping**: the end of the stream, or ``stop`` being set
(SIGINT / SIGTERM in the command), finalises every output; a stalled stream does too, then
raises :class:`StreamStalled`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Deque, Dict, List, Optional, Sequence, Tuple
from urllib.parse import urlsplit

import numpy as np
import torch

from ava_detect.annotate.action import ActionPredictor
from ava_detect.annotate.options import AnnotateOptions
from ava_detect.annotate.pipeline import AnnotateStats, _Annotator, _Frame, _Keyframe, summary
from ava_detect.annotate.render import DrawnPerson, FrameRenderer, Renderer
from ava_detect.annotate.results import ResultWriter
from ava_detect.annotate.video_writer import VideoWriter
from ava_detect.data.live_source import LIVE_SCHEMES, LiveFrame, LiveSource
from ava_detect.data.video import VideoInfo
from ava_detect.detection.base import PersonDetector
from ava_detect.errors import AvaDetectError
from ava_detect.io import PathLike
from ava_detect.io_paths import IOPaths

logger = logging.getLogger(__name__)

#: Frames are drawn at least this long (s) before their deadline, for drawing and encoding themselves
#: (more, for a while, after a frame was late).
RENDER_MARGIN_S = 0.1
#: Latency histogram resolution (s) and range (longer latencies count in the last bin).
_BIN_S, _BINS = 0.01, 6000


class StreamStalled(AvaDetectError):
    """The stream sent no frame for ``stall_timeout`` seconds (outputs were finalised first); ``stats``
    is the pass's :class:`LiveStats`."""

    stats: Optional["LiveStats"] = None


@dataclass(frozen=True)
class LiveOptions:
    """How a live stream is read and how far behind it the outputs may be.

    Attributes:
        max_latency: seconds from a frame's arrival to its written, labelled output (> half the clip).
        stall_timeout: seconds without a frame after which the stream is stalled.
        reconnect: reopen a stalled or ended stream (back-off 1, 2, 4, ... 30 s) instead of ending.
        follow: read a regular file as a growing one (``--live``).
    """

    max_latency: float = 5.0
    stall_timeout: float = 10.0
    reconnect: bool = False
    follow: bool = False

    @classmethod
    def from_config(cls, cfg, *, follow: bool = False) -> "LiveOptions":
        """``annotate.max_latency``, ``annotate.stall_timeout`` and ``annotate.reconnect``."""
        a = cfg.annotate
        return cls(max_latency=float(a.max_latency), stall_timeout=float(a.stall_timeout),
                   reconnect=bool(a.reconnect), follow=follow)

    def check(self, options: AnnotateOptions) -> None:
        """Refuse a budget that a keyframe's clip alone exceeds.

        Raises:
            AvaDetectError: ``max_latency`` below half the clip plus :data:`RENDER_MARGIN_S` + 0.1 s.
        """
        least = half_clip_seconds(options) + RENDER_MARGIN_S + 0.1
        if not self.max_latency >= least:
            raise AvaDetectError(f"--max-latency {self.max_latency:g} s is too short: a keyframe's clip reaches "
                                 f"{half_clip_seconds(options):.2f} s past it, so its scores cannot come sooner; "
                                 f"use at least {least:.2f} s (plus the time the models take per keyframe)")
        if not self.stall_timeout > 0:
            raise AvaDetectError(f"--stall-timeout must be > 0 seconds, got {self.stall_timeout:g}")


def half_clip_seconds(options: AnnotateOptions) -> float:
    """How far (s) a keyframe's clip reaches past the keyframe: half of ``num_frames * sampling_rate / fps``."""
    return options.num_frames * options.sampling_rate / (2.0 * options.fps)


class LatencyHistogram:
    """Latencies (s) in 10 ms bins up to 60 s: constant memory however long the stream."""

    def __init__(self) -> None:
        self.counts = np.zeros(_BINS + 1, dtype=np.int64)
        self.n = 0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        self.counts[min(max(int(seconds / _BIN_S), 0), _BINS)] += 1
        self.n += 1
        self.max = max(self.max, seconds)

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (upper edge of its bin); 0 before any value."""
        if not self.n:
            return 0.0
        k = int(np.searchsorted(np.cumsum(self.counts), max(1, math.ceil(q * self.n))))
        return self.max if k >= _BINS else min((k + 1) * _BIN_S, self.max)


@dataclass
class LiveStats(AnnotateStats):
    """:class:`~ava_detect.annotate.pipeline.AnnotateStats` of a live pass, plus:

    Attributes:
        skipped: keyframes not scored, by reason (``behind``, ``late``, ``stopped``).
        frame_latency, result_latency: seconds from a frame's arrival to its written output, and from a
            keyframe picture's arrival to its results (:class:`LatencyHistogram`).
        over_budget: frames written later than ``max_latency``.
        dropped: frames dropped because drawing and encoding fell behind the stream.
        end_reason: ``end of stream``, ``stopped``, ``stalled`` or ``error: ...``. reconnects: successful ones.
        model_seconds: mean seconds per keyframe of the models (detector + action model).
        wall_seconds: seconds from the first frame to the end.
    """

    skipped: Dict[str, int] = field(default_factory=dict)
    frame_latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    result_latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    over_budget: int = 0
    dropped: int = 0
    end_reason: str = ""
    reconnects: int = 0
    model_seconds: float = 0.0
    wall_seconds: float = 0.0

    def status(self) -> Dict[str, object]:
        """A small summary for progress lines, the live view and the JSON Lines' last line."""
        return {"stream_seconds": round(self.video_seconds, 2), "frames": self.frames, "keyframes": self.keyframes,
                "skipped": dict(self.skipped), "dropped": self.dropped,
                "latency_p50": round(self.frame_latency.quantile(0.5), 3),
                "latency_p95": round(self.frame_latency.quantile(0.95), 3),
                "latency_max": round(self.frame_latency.max, 3), "over_budget": self.over_budget,
                "model_seconds": round(self.model_seconds, 3), "wall_seconds": round(self.wall_seconds, 2)}


@dataclass
class _LiveFrame(_Frame):
    arrival: float = 0.0


@dataclass
class _LiveKeyframe(_Keyframe):
    arrival: float = 0.0
    deadline: float = math.inf
    skipped: Optional[str] = None


def _view_picture(image: np.ndarray, most: int = 960) -> np.ndarray:
    """``image`` for the live view: halved until at most ``most`` pixels wide (a copy: it outlives the frame)."""
    step = 1
    while image.shape[1] // step > most:
        step *= 2
    return np.ascontiguousarray(image[::step, ::step]) if step > 1 else image


def _run_models(detector: PersonDetector, predictor: ActionPredictor, key: Tuple[str, int], image: np.ndarray,
                clip: List[np.ndarray]) -> Tuple[torch.Tensor, torch.Tensor, np.ndarray, float, float]:
    """One keyframe on the model thread -> ``(boxes [K,4], scores [K], probs [K,C], detect s, action s)``."""
    start = time.perf_counter()
    (boxes, scores), = detector.detect([torch.from_numpy(image)], keys=[key])
    boxes, scores = boxes.float().cpu(), scores.float().cpu()
    mid = time.perf_counter()
    probs = predictor.predict([clip], [boxes])[0].float().numpy()
    return boxes, scores, probs, mid - start, time.perf_counter() - mid


class _LiveAnnotator(_Annotator):
    """The state of one live pass (see the module docstring); the file pass's keyframes, clips, results
    and drawing, with scheduling by deadline."""

    def __init__(self, *, live: LiveOptions, view=None, wall_offset: float, **kw):
        super().__init__(**kw)
        self.live, self.view = live, view
        self.stats: LiveStats
        self.wall_offset = wall_offset  # time.time() - time.monotonic()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ava-detect-models")
        self.job: Optional[Future] = None
        self.job_kf: Optional[_LiveKeyframe] = None
        self.estimate = 0.0  # seconds per keyframe of the models (running mean)
        self.scored: Deque[Tuple[int, List[DrawnPerson]]] = deque()  # (picture index, people) of scored keyframes
        self.stopping = False
        self.warned_late = False
        self.margin = RENDER_MARGIN_S
        self.shows: Deque[Tuple[float, np.ndarray]] = deque()  # (arrival, picture) not yet shown in the view

    # ---- keyframes -------------------------------------------------------------------------------

    def _new_keyframe(self, frame: _Frame, **fields) -> _Keyframe:
        arrival = getattr(frame, "arrival", time.monotonic())
        return _LiveKeyframe(**fields, arrival=arrival, deadline=arrival + self.live.max_latency - self.margin)

    def _result_extra(self, kf: _Keyframe) -> Dict[str, object]:
        now = time.monotonic()
        latency = now - kf.arrival
        self.stats.result_latency.add(latency)
        return {"arrival": round(kf.arrival + self.wall_offset, 3), "latency": round(latency, 3)}

    def _skip(self, kf: _LiveKeyframe, reason: str) -> None:
        kf.skipped, kf.clip, kf.image, kf.clip_done = reason, None, None, True
        self.stats.skipped[reason] = self.stats.skipped.get(reason, 0) + 1
        self.results.write_skipped(time=kf.time, second=kf.second, frame=kf.frame_index, reason=reason,
                                   extra={"arrival": round(kf.arrival + self.wall_offset, 3)})
        self.pending.remove(kf)

    # ---- the model thread ------------------------------------------------------------------------

    def _collect(self, wait: bool = False) -> None:
        """Take the finished job's results (``wait``: wait for the job)."""
        if self.job is None or not (wait or self.job.done()):
            return
        job, kf = self.job, self.job_kf
        self.job = self.job_kf = None
        boxes, scores, probs, t_detect, t_action = job.result()  # a model error ends the pass here
        self.stats.timings["detect"] += t_detect
        self.stats.timings["action"] += t_action
        n = self.stats.keyframes
        self.estimate = (self.estimate * min(n, 9) + t_detect + t_action) / (min(n, 9) + 1)  # mean of the last ~10
        self.stats.model_seconds = self.estimate
        kf.boxes, kf.det_scores = boxes, scores
        kf.ids = self.tracker.update(boxes.numpy())
        self.track_ids.update(int(i) for i in kf.ids)
        kf.probs, kf.clip, kf.image = probs, None, None
        self._finish_keyframe(kf)
        self.scored.append((kf.frame_index, kf.drawn))
        self.pending.remove(kf)

    def _schedule(self) -> None:
        """Start the model thread on a keyframe whose clip is complete, or skip keyframes it cannot reach."""
        while self.job is None and not self.stopping:
            ready = [kf for kf in self.pending if kf.clip_done]
            if not ready:
                return
            now = time.monotonic()
            fits = all(now + self.estimate * (i + 1) <= kf.deadline for i, kf in enumerate(ready))
            if not fits and len(ready) > 1:
                for kf in ready[:-1]:
                    self._skip(kf, "behind")
                continue
            kf = ready[0]
            if now + self.estimate > kf.deadline:
                self._warn_late()
                self._skip(kf, "late")
                continue
            image, kf.image = kf.image, None
            self.job_kf = kf
            self.job = self.pool.submit(_run_models, self.detector, self.predictor, (self.video_id, kf.second),
                                        image, kf.clip)

    def _warn_late(self) -> None:
        """Warn once when no keyframe can be scored within the budget, even with the models free (a keyframe
        that waited for the models is skipped without a warning: the summary counts those)."""
        least = half_clip_seconds(self.options) + self.estimate + self.margin + 0.2
        if self.warned_late or least <= self.live.max_latency:
            return
        self.warned_late = True
        logger.warning("the models take %.2f s per keyframe, so keyframes cannot be scored within --max-latency "
                       "%g s and are skipped; at least %.1f s would let them through (or make the models' work "
                       "lighter: --fast, --max-height)", self.estimate, self.live.max_latency, least)

    # ---- drawing -----------------------------------------------------------------------------------

    def _held_people(self, frame: _Frame) -> List[DrawnPerson]:
        """The people of the latest scored keyframe whose picture is at or before ``frame`` (frames come in
        order, so older scored keyframes are forgotten here)."""
        while len(self.scored) >= 2 and self.scored[1][0] <= frame.index:
            self.scored.popleft()
        if self.scored and self.scored[0][0] <= frame.index:
            return self.scored[0][1]
        return []

    def _render_ready(self) -> None:
        now = time.monotonic()
        for frame in self.buffer:
            if frame.rendered:
                continue
            while len(self.render_kfs) >= 2 and self.render_kfs[1].frame_index <= frame.index:
                self.render_kfs.popleft()
            due = self.stopping or now >= frame.arrival + self.live.max_latency - self.margin
            cur = self.render_kfs[0] if self.render_kfs else None
            nxt = self.render_kfs[1] if len(self.render_kfs) >= 2 else None
            all_created = self.ended and not (self._kf_time(self.next_kf) + 1e-3 < self.end_time)
            nxt_known = nxt is not None and (nxt.ids is not None or nxt.skipped is not None)
            ready = (cur is not None and (cur.drawn is not None or cur.skipped is not None)
                     and (nxt_known or (nxt is None and all_created)))
            if not (ready or due):
                return
            held = self._held_people(frame)
            if cur is not None and cur.drawn is not None:
                people = self._people_at(frame, cur, nxt)  # interpolated when the next keyframe has boxes
            else:
                people = held
            self._write_frame(frame, people)

    def _write_frame(self, frame: _Frame, people: List[DrawnPerson]) -> np.ndarray:
        image = super()._write_frame(frame, people)
        latency = time.monotonic() - frame.arrival
        self.stats.frame_latency.add(latency)
        self.stats.over_budget += latency > self.live.max_latency
        # frames are drawn `margin` before their deadline: widen it when one was late (the CPU was busy
        # with the models), narrow it back slowly (about 12 ms per second of 25 fps frames)
        over = latency - self.live.max_latency
        if over > 0:
            self.margin = min(self.margin + over + 0.02, self.live.max_latency / 4)
        else:
            self.margin = max(RENDER_MARGIN_S, self.margin - 0.0005)
        self.stats.video_seconds = max(self.stats.video_seconds, frame.time)
        if self.view is not None:
            self.shows.append((frame.arrival, _view_picture(image)))
        if self.progress is not None:
            self.progress(self.stats)
        return image

    def _show(self) -> None:
        """Give the live view the newest frame that is due: frames are shown at a steady delay after their
        arrival (the 99th percentile of the latency so far, at most the budget), so the page plays smoothly
        although frames are written in bursts (a keyframe interval's frames at once)."""
        if self.view is None or not self.shows:
            return
        delay = min(self.live.max_latency, self.stats.frame_latency.quantile(0.99) + 0.05)
        now = time.monotonic()
        due = None
        while self.shows and (self.ended or self.shows[0][0] + delay <= now):
            due = self.shows.popleft()
        if due is not None:
            self.view.publish(due[1], self.stats.status())

    # ---- driving -------------------------------------------------------------------------------------

    def _step(self) -> None:
        self._create_keyframes()
        self._assemble_clips()
        self._collect()
        self._schedule()
        self._render_ready()
        self._drop_frames()
        self._show()

    def add_live_frame(self, frame: LiveFrame) -> None:
        in_timeline = self.last_time is None or frame.time > self.last_time
        self.buffer.append(_LiveFrame(index=frame.index, time=frame.time, rgb=frame.rgb, in_timeline=in_timeline,
                                      arrival=frame.arrival))
        if in_timeline:
            self.last_time = frame.time
        self.stats.max_buffered_frames = max(self.stats.max_buffered_frames, len(self.buffer))
        self._step()

    def run(self, source: LiveSource, stop: threading.Event) -> None:
        """Annotate until the stream ends, stalls, or ``stop`` is set; then finish every keyframe (scored
        within its deadline, or skipped) and write every frame."""
        first = None
        try:
            while True:
                if stop.is_set() and not self.stopping:
                    self.stopping = True
                    source.stop("stopped")
                frame = source.get(timeout=0.02)
                if frame is not None:
                    first = first if first is not None else frame.arrival
                    self.add_live_frame(frame)
                    continue
                if source.ended or self.stopping:
                    break
                if not self.live.reconnect and source.silent_for() > self.live.stall_timeout + 2.0:
                    source.stop("stalled")  # the reading thread is stuck in a read that does not time out
                    break
                self._step()
            self.stats.dropped = source.dropped
            self.stats.reconnects = source.reconnects
            self.stats.end_reason = source.end_reason or "end of stream"
            self._finish_stream(stop)
        finally:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.stats.wall_seconds = time.monotonic() - (first if first is not None else time.monotonic())

    def _finish_stream(self, stop: threading.Event) -> None:
        if self.last_time is None:
            return
        self.ended = True
        self.end_time = self.last_time + 1.0 / max(self.info.rate, 1.0)
        while True:
            self.stopping = self.stopping or stop.is_set()
            self._create_keyframes()
            self._assemble_clips()
            if self.stopping:
                self._render_ready()  # every frame now (they are all due), then the keyframe being scored
                self._collect(wait=True)
                for kf in list(self.pending):
                    self._skip(kf, "stopped")
            else:
                self._collect()
                self._schedule()
            self._render_ready()
            self._drop_frames()
            if not self.pending and all(f.rendered for f in self.buffer):
                self._show()
                return
            self._show()
            time.sleep(0.005)


def stream_id(source: str) -> str:
    """A video id for a stream: a path's file name without its suffix, a URL's host, ``stdin`` for ``-``."""
    if source == "-":
        return "stdin"
    parts = urlsplit(source)
    if parts.scheme.lower() in LIVE_SCHEMES:
        return parts.hostname or parts.scheme.lower()
    return Path(source).stem or "live"


def check_live_outputs(source: str, outputs: Sequence[Tuple[str, Optional[PathLike]]]) -> None:
    """Live outputs grow in place: refuse existing files (never overwrite results) and the usual mistakes."""
    paths = IOPaths()
    if os.path.exists(source):
        paths.input("the input stream", source)
    for label, path in outputs:
        paths.output(label, path)
    paths.check()
    for label, path in outputs:
        if path is not None and os.path.exists(path):
            raise AvaDetectError(f"{label} already exists; live outputs are written as they grow, so they never "
                                 f"replace a file: choose a new name or remove it", path)


def annotate_stream(
    source: str,
    *,
    out_video: PathLike,
    detector: PersonDetector,
    predictor: ActionPredictor,
    class_ids: Sequence[int],
    names: Dict[int, str],
    options: AnnotateOptions,
    live: LiveOptions = LiveOptions(),
    out_csv: Optional[PathLike] = None,
    out_jsonl: Optional[PathLike] = None,
    video_id: str = "live",
    renderer: Callable[..., FrameRenderer] = Renderer,
    view=None,
    stop: Optional[threading.Event] = None,
    progress: Optional[Callable[["LiveStats"], None]] = None,
    on_open: Optional[Callable[[LiveSource], None]] = None,
) -> LiveStats:
    """Annotate a live stream (see the module docstring) until it ends, stalls or ``stop`` is set.

    Args:
        source: a URL (rtsp, http(s), udp, tcp, ...), ``-`` (standard input), a FIFO, a V4L2 device, or a
            growing file (``live.follow``).
        out_video: the annotated video (fragmented MP4 for ``.mp4``); out_csv, out_jsonl: results, flushed per
            keyframe. None of them may exist yet.
        detector, predictor, class_ids, names, options, renderer: as :func:`~ava_detect.annotate.annotate_video`.
        live: latency budget, stall timeout, reconnection (:class:`LiveOptions`).
        video_id: first CSV column and box-CSV key.
        view: a started :class:`~ava_detect.annotate.live_view.LiveView` shown every written frame (optional).
        stop: set it (e.g. from a signal handler) to finish and return.
        progress: called with the :class:`LiveStats` so far after each written frame.
        on_open: called with the opened source (its size and rate known) before any frame is processed.

    Returns:
        :class:`LiveStats` (``end_reason`` says why it ended).

    Raises:
        AvaDetectError: a source that cannot be opened (before any output exists), outputs that exist, a
            budget shorter than half a clip. :class:`StreamStalled`: no frame for ``live.stall_timeout``
            seconds (without ``live.reconnect``), after the outputs were finalised.
    """
    if len(class_ids) != predictor.num_classes:
        raise AvaDetectError(f"the label map has {len(class_ids)} classes but the action model predicts "
                             f"{predictor.num_classes}; pass the label map the model was trained with")
    live.check(options)
    check_live_outputs(source, [("--out", out_video), ("--csv", out_csv), ("--jsonl", out_jsonl)])
    if not Path(out_video).suffix:
        raise AvaDetectError("output video needs a file suffix that names the container, e.g. .mp4", out_video)
    stop = stop if stop is not None else threading.Event()
    src = LiveSource(source, stall_timeout=live.stall_timeout, reconnect=live.reconnect, follow=live.follow,
                     cancel=stop, size=options.working_size)
    src.open()  # errors here leave nothing behind
    if on_open is not None:
        on_open(src)
    info = VideoInfo(path=source, num_frames=0, width=src.width, height=src.height, rate=src.rate, duration=0.0)
    stats = LiveStats(width=src.width, height=src.height, rate=src.rate)
    rate = Fraction(src.rate).limit_denominator(1001)
    header = {"video": src.name, "video_id": video_id, "width": src.width, "height": src.height, "fps": float(rate),
              "every": options.every, "second_offset": options.second_offset, "threshold": options.labels.threshold,
              "labels": {str(i): names.get(int(i), "") for i in class_ids}, "live": True,
              "max_latency": live.max_latency, "started": round(time.time(), 3)}
    start_all = time.perf_counter()
    with contextlib.ExitStack() as stack:
        stack.callback(src.join, 1.0)
        stack.callback(src.stop)
        writer, results = _open_live_outputs(stack, src, rate=rate, options=options, out_video=out_video,
                                             out_csv=out_csv, out_jsonl=out_jsonl, header=header,
                                             class_ids=class_ids, names=names, video_id=video_id)
        annotator = _LiveAnnotator(
            live=live, view=view, wall_offset=time.time() - time.monotonic(),
            options=options, detector=detector, predictor=predictor,
            renderer=renderer(width=src.width, height=src.height), writer=writer, results=results,
            video_id=video_id, info=info, column_names=[names.get(c, str(c)) for c in class_ids], stats=stats,
            progress=progress)
        src.start()
        try:
            annotator.run(src, stop)
        finally:
            stats.tracks = len(annotator.track_ids)
            stats.timings["total"] = time.perf_counter() - start_all
            results.close({**summary(stats), **stats.status(), "end": stats.end_reason or "error",
                           "reconnects": stats.reconnects})
            stats.rows = results.rows
    _raise_for_end(stats, src.name, live)
    return stats


def _open_live_outputs(stack: contextlib.ExitStack, src: LiveSource, *, rate: Fraction, options: AnnotateOptions,
                       out_video: PathLike, out_csv: Optional[PathLike], out_jsonl: Optional[PathLike],
                       header: Dict[str, object], class_ids: Sequence[int], names: Dict[int, str],
                       video_id: str) -> Tuple[VideoWriter, ResultWriter]:
    """The live video and result files, at their final names (new files only), finalised when ``stack``
    exits, whatever the way out: usable results are never lost."""
    try:
        writer = VideoWriter(out_video, width=src.width, height=src.height, rate=rate, crf=options.crf,
                             preset=options.preset, time_base=Fraction(1, 90000), live=True)
    except (OSError, ValueError) as e:
        raise AvaDetectError(f"cannot write a video here ({e}); use a .mp4 file name", out_video) from None
    stack.callback(writer.close)
    csv_file = stack.enter_context(open(out_csv, "x", encoding="utf-8", newline="")) if out_csv else None
    jsonl_file = stack.enter_context(open(out_jsonl, "x", encoding="utf-8")) if out_jsonl else None
    results = ResultWriter(csv_file=csv_file, json_file=None, jsonl_file=jsonl_file, video_id=video_id,
                           header=header, class_ids=class_ids, names=names, labels=options.labels, flush=True)
    return writer, results


def _raise_for_end(stats: LiveStats, name: str, live: LiveOptions) -> None:
    """A stream that stalled or failed is an error (raised after its outputs were finalised)."""
    if stats.end_reason == "stalled":
        stalled = StreamStalled(f"no frame for {live.stall_timeout:g} s: the stream stalled; the outputs are "
                                f"complete up to {stats.video_seconds:.1f} s of stream time (--reconnect waits for it "
                                f"to come back)", name)
        stalled.stats = stats
        raise stalled
    if stats.end_reason.startswith("error"):
        raise AvaDetectError(f"the stream failed ({stats.end_reason[7:]}); the outputs are complete up to "
                             f"{stats.video_seconds:.1f} s of stream time (--reconnect reopens it)", name)


__all__ = ["LiveOptions", "LiveStats", "StreamStalled", "annotate_stream", "check_live_outputs", "half_clip_seconds",
           "stream_id"]
