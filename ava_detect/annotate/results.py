"""The CSV and JSON results of ``annotate``, written keyframe by keyframe (nothing accumulates).

CSV, one row per person and action kept by the label policy (``score >= threshold``,
:class:`~ava_detect.annotate.labels.LabelPolicy`), no header (as AVA files)::

    video_id,second,x1,y1,x2,y2,action_id,score,person_id

the AVA detection layout (coordinates normalised to [0, 1], 3 decimals; second zero-padded to 4
digits; scores with 9 significant digits) plus the person's track id. ``second`` is the keyframe's
whole second of file time plus the second offset (0 by default; 900 for prepared AVA videos).
Without the last column the rows are ``ava-detect eval --pred`` input. A video with nobody in it
gives an empty file.

JSON: ``{"video", "video_id", "width", "height", "fps", "frames", "every", "second_offset",
"threshold", "labels": {id: name}, "keyframes": [{"time", "second", "frame", "people": [{"person_id",
"box" (normalised), "box_pixels", "detection_score", "actions": [{"id", "name", "score"}, ...]}]}]}``
with every keyframe (also those without people), actions sorted by score.

JSON Lines (one JSON object per line, each line flushed as soon as it is written, so the file can
be read while it grows and is complete up to its last line after a crash): a first line
``{"event": "start", ...}`` with the JSON fields before ``keyframes``, then one line per keyframe
``{"event": "keyframe", "time", "second", "frame", "people": [...]}`` as in the JSON (live streams
add ``"arrival"``, the wall-clock time its picture arrived, and ``"latency"``, seconds from then to
its result; a keyframe that was not scored has ``"skipped": REASON`` and no ``"people"``), and a
last line ``{"event": "end", ...}`` with what the pass did.
"""

from __future__ import annotations

import json
from typing import IO, Dict, Optional, Sequence

import numpy as np

from ava_detect.annotate.labels import LabelPolicy
from ava_detect.data.ava_files import video_id_problem
from ava_detect.errors import AvaDetectError


class ResultWriter:
    """Streams keyframe results to an open CSV and / or JSON file.

    Args:
        csv_file, json_file, jsonl_file: text files open for writing (any may be None).
        video_id: first CSV column.
        header: the JSON fields before ``keyframes`` (see the module docstring).
        class_ids, names: the model's output columns -> AVA action ids, and id -> name.
        labels: which actions are written (:meth:`LabelPolicy.kept`: ``score >= threshold``, best first).
        flush: flush the CSV and JSON Lines after each keyframe (live streams).

    Raises:
        AvaDetectError: a CSV is asked for and ``video_id`` cannot be written in one (a comma, quote,
            path separator or control character), before anything is written.
    """

    def __init__(self, *, csv_file: Optional[IO[str]], json_file: Optional[IO[str]], video_id: str,
                 header: Dict[str, object], class_ids: Sequence[int], names: Dict[int, str], labels: LabelPolicy,
                 jsonl_file: Optional[IO[str]] = None, flush: bool = False):
        if csv_file is not None and video_id_problem(video_id) is not None:
            raise AvaDetectError(f"cannot write CSV rows: {video_id_problem(video_id)}; the CSV's video id is the "
                                 f"video's file name without its suffix, so rename the video")
        self.csv = csv_file
        self.json = json_file
        self.jsonl = jsonl_file
        self.flush = bool(flush)
        self.video_id = video_id
        self.class_ids = np.asarray(class_ids, dtype=np.int64)
        self.names = names
        self.labels = labels
        self.rows = 0
        self.people = 0
        self._first = True
        if self.json is not None:
            head = json.dumps(header, indent=1)
            self.json.write(head[:-2].rstrip() + ',\n "keyframes": [')
        if self.jsonl is not None:
            self._line({"event": "start", **header})

    def _line(self, item: Dict[str, object]) -> None:
        assert self.jsonl is not None
        self.jsonl.write(json.dumps(item) + "\n")
        if self.flush:
            self.jsonl.flush()

    def write_keyframe(self, *, time: float, second: int, frame: int, boxes_norm: np.ndarray, boxes_px: np.ndarray,
                       det_scores: np.ndarray, person_ids: np.ndarray, probs: np.ndarray,
                       extra: Optional[Dict[str, object]] = None) -> None:
        """One keyframe.

        Args:
            time: file time of the keyframe (s); second: its CSV second; frame: index of its picture.
            boxes_norm, boxes_px: ``[K,4]`` boxes normalised / in pixels of the input frame.
            det_scores: ``[K]`` person scores; person_ids: ``[K]``; probs: ``[K,C]`` action probabilities.
        """
        people = []
        for k in range(len(boxes_norm)):
            order = self.labels.kept(probs[k])
            if self.csv is not None:
                c = boxes_norm[k]
                for j in order:
                    self.csv.write(f"{self.video_id},{int(second):04d},{c[0]:.3f},{c[1]:.3f},{c[2]:.3f},{c[3]:.3f},"
                                   f"{int(self.class_ids[j])},{float(probs[k, j]):.9g},{int(person_ids[k])}\n")
                    self.rows += 1
            people.append({
                "person_id": int(person_ids[k]),
                "box": [round(float(v), 4) for v in boxes_norm[k]],
                "box_pixels": [round(float(v), 1) for v in boxes_px[k]],
                "detection_score": round(float(det_scores[k]), 4),
                "actions": [{"id": int(self.class_ids[j]), "name": self.names.get(int(self.class_ids[j]), ""),
                             "score": round(float(probs[k, j]), 4)} for j in order],
            })
        self.people += len(people)
        if self.json is not None:
            item = {"time": round(float(time), 6), "second": int(second), "frame": int(frame), "people": people}
            self.json.write(("\n  " if self._first else ",\n  ") + json.dumps(item))
            self._first = False
        if self.jsonl is not None:
            self._line({"event": "keyframe", "time": round(float(time), 6), "second": int(second),
                        "frame": int(frame), "people": people, **(extra or {})})
        if self.flush and self.csv is not None:
            self.csv.flush()

    def write_skipped(self, *, time: float, second: int, frame: int, reason: str,
                      extra: Optional[Dict[str, object]] = None) -> None:
        """A keyframe that was not scored (JSON Lines only): ``reason`` says why (e.g. ``"behind"``)."""
        if self.jsonl is not None:
            self._line({"event": "keyframe", "time": round(float(time), 6), "second": int(second),
                        "frame": int(frame), "skipped": reason, **(extra or {})})

    def close(self, summary: Optional[Dict[str, object]] = None) -> None:
        """Finish the JSON document and write the JSON Lines' last line (with ``summary``); the files
        themselves are closed by their owner."""
        if self.json is not None:
            self.json.write("\n ]\n}\n")
        if self.jsonl is not None:
            self._line({"event": "end", **(summary or {})})
