"""Writing the synthetic AVA-format dataset: plans -> rendered, encoded videos, ground truth,
simulated detector boxes, exclusions, label map, frame lists and ``dataset.json``."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
import pandas as pd

from ava_detect.data.ava_files import (
    write_exclusions,
    write_frame_list,
    write_ground_truth,
    write_labelmap,
    write_predicted_boxes,
)
from ava_detect.data.constants import FIRST_KEYFRAME_SECOND, FPS, SEGMENT_START_SECOND
from ava_detect.data.layout import SPLITS, DatasetLayout
from ava_detect.errors import AvaDetectError
from ava_detect.io import atomic_open, atomic_path
from ava_detect.prep.frames import frame_list_rows
from ava_detect.structures import image_key, pixels_to_normalized
from ava_detect.synthetic.classes import CLASS_IDS, POSE_IDS, synthetic_labelmap
from ava_detect.synthetic.detector import predict_boxes
from ava_detect.synthetic.encode import PathLike, encode_video
from ava_detect.synthetic.render import render_frame
from ava_detect.synthetic.scene import VideoPlan, draw_video_ids, plan_video

logger = logging.getLogger(__name__)

#: Marks the folders that this generator made (``dataset.json`` ``"generator"``; the name of the
#: module that first wrote them, kept so that the same arguments still give the same bytes and
#: earlier sets are still recognised and replaced).
GENERATOR = "ava_detect.data.synthetic"
FORMAT_VERSION = 1
#: Present while a set is being written; removed once ``dataset.json`` is in place.
IN_PROGRESS_MARKER = ".synthetic-in-progress"

_FILES = DatasetLayout()
#: The annotation files and frame lists of a set, relative to its folder.
ANNOTATION_FILES = tuple(
    path(split).as_posix() for split in SPLITS for path in (_FILES.ground_truth, _FILES.predicted_boxes, _FILES.exclusions)
) + (_FILES.labelmap.as_posix(),)
FRAME_LIST_FILES = tuple(_FILES.frame_list(split).as_posix() for split in SPLITS)
#: Columns of the ground-truth rows the writer collects.
_GT_COLUMNS = ["video_id", "second", "x1", "y1", "x2", "y2", "action_id", "person_id"]


@dataclass
class SyntheticSummary:
    """What :func:`make_synthetic_dataset` wrote.

    Attributes:
        out_dir: the dataset folder.
        seed, seconds, fps: as made; ``size`` is ``(width, height)`` in pixels.
        videos: split -> video ids.
        keyframes: split -> number of keyframes (image keys).
        boxes: split -> ground-truth person boxes (one per person per keyframe).
        predicted_boxes: split -> rows of the predicted-box file.
        excluded: split -> excluded keys.
        class_counts: split -> {class id: ground-truth boxes with that label}.
        class_names: class id -> AVA name.
        files: written files except ``dataset.json``, relative to ``out_dir``, sorted.
        bytes_on_disk: total size of ``files``, bytes.
    """

    out_dir: Path
    seed: int
    size: Tuple[int, int]
    seconds: int
    fps: int
    videos: Dict[str, List[str]]
    keyframes: Dict[str, int]
    boxes: Dict[str, int]
    predicted_boxes: Dict[str, int]
    excluded: Dict[str, int]
    class_counts: Dict[str, Dict[int, int]]
    class_names: Dict[int, str]
    files: List[str] = field(default_factory=list)
    bytes_on_disk: int = 0

    def to_json(self) -> Dict:
        """The contents of ``dataset.json`` (no timestamps, so it is the same for the same seed)."""
        return {
            "generator": GENERATOR,
            "format_version": FORMAT_VERSION,
            "seed": self.seed,
            "size": {"width": self.size[0], "height": self.size[1]},
            "fps": self.fps,
            "seconds": self.seconds,
            "time_convention": {
                "file_start_second": SEGMENT_START_SECOND,
                "first_keyframe_second": FIRST_KEYFRAME_SECOND,
                "last_keyframe_second": SEGMENT_START_SECOND + self.seconds - 2,
            },
            "videos": self.videos,
            "keyframes": self.keyframes,
            "boxes": self.boxes,
            "predicted_boxes": self.predicted_boxes,
            "excluded_keys": self.excluded,
            "classes": [
                {"id": c, "name": self.class_names[c], "kind": "pose" if c in POSE_IDS else "motion"}
                for c in CLASS_IDS
            ],
            "class_box_counts": {
                split: {str(c): self.class_counts[split].get(c, 0) for c in CLASS_IDS} for split in SPLITS
            },
            "files": self.files,
            "bytes": self.bytes_on_disk,
        }


def _seed_sequences(seed: int) -> List[np.random.SeedSequence]:
    """Independent streams: [video ids and splits, one per video (spawned), predicted boxes]."""
    return np.random.SeedSequence([int(seed), 0x5A7A]).spawn(3)


def iter_video_plans(
    seed: int, num_videos: int, *, seconds: int, size: Tuple[int, int]
) -> Iterator[VideoPlan]:
    """The plans of the videos that :func:`make_synthetic_dataset` renders for these arguments,
    in the order of their ids (lets checks re-render any frame of a written set)."""
    ss_meta, ss_videos, _ = _seed_sequences(seed)
    video_ids = draw_video_ids(np.random.default_rng(ss_meta), num_videos)
    for vid, video_ss in zip(video_ids, ss_videos.spawn(num_videos)):
        yield plan_video(np.random.default_rng(video_ss), vid, seconds=seconds, width=int(size[0]), height=int(size[1]))


def _is_synthetic_set(out_dir: Path) -> bool:
    """A folder that this module wrote: finished (``dataset.json`` names the generator) or
    interrupted (the in-progress marker is there)."""
    if (out_dir / IN_PROGRESS_MARKER).is_file():
        return True
    meta = out_dir / "dataset.json"
    if not meta.is_file():
        return False
    try:
        return json.loads(meta.read_text(encoding="utf-8")).get("generator") == GENERATOR
    except (OSError, ValueError, AttributeError):
        return False


def _clear_previous_set(out_dir: Path) -> None:
    """Remove the files of an earlier synthetic set in ``out_dir`` (its videos, annotation
    files, frame lists, leftovers of interrupted writes and ``dataset.json``); other files stay."""
    (out_dir / "dataset.json").unlink(missing_ok=True)
    for p in out_dir.glob(".dataset.*.tmp.json"):
        p.unlink()
    layout = DatasetLayout(out_dir)
    if layout.videos_dir.is_dir():
        for p in layout.videos_dir.iterdir():
            if p.is_file() and p.suffix == ".mp4":
                p.unlink()
    for rel in ANNOTATION_FILES + FRAME_LIST_FILES:
        (out_dir / rel).unlink(missing_ok=True)
    for folder in (layout.annotations_dir, layout.frame_lists_dir):
        if folder.is_dir():
            for p in folder.iterdir():
                if p.is_file() and p.name.startswith(".") and ".tmp" in p.name:
                    p.unlink()


def _check_arguments(seed: int, num_videos: int, seconds: int, size: Tuple[int, int], val_fraction: float) -> None:
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise AvaDetectError(f"seed must be a non-negative integer, got {seed!r}")
    if num_videos < 2:
        raise AvaDetectError(f"need at least 2 videos (one for train, one for val), got {num_videos}")
    last = SEGMENT_START_SECOND + seconds - 2
    if seconds < 4 or last > 1798:
        raise AvaDetectError(
            f"seconds must be 4..900 (keyframes 902 .. 900 + seconds - 2 within AVA's 902..1798), got {seconds}"
        )
    width, height = size
    if width < 64 or height < 64 or width % 2 or height % 2:
        raise AvaDetectError(f"size must be even and at least 64x64 (h264 yuv420p), got {width}x{height}")
    if not 0.0 < val_fraction < 1.0:
        raise AvaDetectError(f"val_fraction must be between 0 and 1, got {val_fraction}")


def make_synthetic_dataset(
    out_dir: PathLike,
    *,
    seed: int = 0,
    num_videos: int = 12,
    seconds: int = 30,
    size: Tuple[int, int] = (320, 240),
    val_fraction: float = 1 / 3,
    overwrite: bool = False,
    progress: Optional[Callable[[int], None]] = None,
) -> SyntheticSummary:
    """Write a synthetic AVA-format dataset (layout in :mod:`ava_detect.synthetic`).

    Args:
        out_dir: dataset folder. It may be missing, empty, or hold an earlier synthetic set
            (finished or interrupted), whose files are replaced.
        seed: everything is drawn from it; the same arguments give the same bytes.
        num_videos: videos in all, >= 2; ``round(num_videos * val_fraction)`` (at least 1,
            at most ``num_videos - 1``) go to val.
        seconds: length of each video (file t=0 is movie second 900); keyframes are seconds
            902 .. 900 + seconds - 2, one per second. 4..900.
        size: ``(width, height)`` in pixels, both even, at least 64.
        val_fraction: share of the videos in val, in (0, 1).
        overwrite: also write into a non-empty folder that is not a synthetic set (files with
            the names above are replaced; other files are left alone).
        progress: called with the number of frames rendered since the last call; frames in
            all: ``num_videos * seconds * 30``.

    Returns:
        A :class:`SyntheticSummary`, also written as ``dataset.json``.

    Raises:
        AvaDetectError: bad arguments, or ``out_dir`` is a file or a non-empty folder that is
            not a synthetic set (without ``overwrite``).
    """
    _check_arguments(seed, num_videos, seconds, size, val_fraction)
    width, height = int(size[0]), int(size[1])
    out = Path(out_dir)
    _prepare_folder(out, overwrite)
    layout = DatasetLayout(out)
    ss_meta, _, ss_boxes = _seed_sequences(seed)
    video_ids, split_of = _assign_splits(np.random.default_rng(ss_meta), num_videos, val_fraction)
    labelmap = synthetic_labelmap()

    gt_rows: Dict[str, List[Tuple]] = {s: [] for s in SPLITS}
    for plan in iter_video_plans(seed, num_videos, seconds=seconds, size=(width, height)):
        gt_rows[split_of[plan.video_id]].extend(_write_video(layout, plan, progress))
        logger.debug("video %s (%s): %d figures", plan.video_id, split_of[plan.video_id], len(plan.figures))

    summary = SyntheticSummary(
        out_dir=out, seed=int(seed), size=(width, height), seconds=seconds, fps=FPS,
        videos={s: [v for v in video_ids if split_of[v] == s] for s in SPLITS},
        keyframes={}, boxes={}, predicted_boxes={}, excluded={}, class_counts={},
        class_names=dict(labelmap.names),
    )
    box_rngs = dict(zip(SPLITS, (np.random.default_rng(s) for s in ss_boxes.spawn(len(SPLITS)))))
    for split in SPLITS:
        _write_split(layout, split, gt_rows[split], summary, box_rngs[split])
    write_labelmap(layout.labelmap, labelmap)

    summary.files = sorted([layout.video(v).relative_to(out).as_posix() for v in video_ids]
                           + list(ANNOTATION_FILES) + list(FRAME_LIST_FILES))
    summary.bytes_on_disk = sum((out / f).stat().st_size for f in summary.files)
    with atomic_open(out / "dataset.json", "w", encoding="utf-8") as f:
        f.write(json.dumps(summary.to_json(), indent=2) + "\n")
    (out / IN_PROGRESS_MARKER).unlink()
    logger.info(
        "%s: %d train + %d val videos, %d + %d keyframes, %d MB",
        out, len(summary.videos["train"]), len(summary.videos["val"]),
        summary.keyframes["train"], summary.keyframes["val"], summary.bytes_on_disk >> 20,
    )
    return summary


def _prepare_folder(out: Path, overwrite: bool) -> None:
    """Make ``out`` ready for a new set (replacing an earlier synthetic set there) and mark it as in
    progress; refuse a file, or a foreign non-empty folder without ``overwrite``."""
    if out.exists() and not out.is_dir():
        raise AvaDetectError("output exists and is not a folder", out)
    if out.is_dir() and any(out.iterdir()):
        if _is_synthetic_set(out):
            logger.info("%s: replacing the synthetic set there", out)
            _clear_previous_set(out)
        elif not overwrite:
            raise AvaDetectError(
                "output folder is not empty and holds no synthetic set; choose an empty folder or "
                "pass --overwrite to write into it anyway", out,
            )
    out.mkdir(parents=True, exist_ok=True)
    (out / IN_PROGRESS_MARKER).write_text("a synthetic set is being written here\n", encoding="utf-8")


def _assign_splits(rng: np.random.Generator, num_videos: int, val_fraction: float) -> Tuple[List[str], Dict[str, str]]:
    """``(video ids, {video id: split})``: the ids, then ``round(num_videos * val_fraction)`` of them
    (at least 1, at most ``num_videos - 1``) drawn for val."""
    video_ids = draw_video_ids(rng, num_videos)
    num_val = min(num_videos - 1, max(1, int(round(num_videos * val_fraction))))
    val_index = set(int(i) for i in rng.choice(num_videos, num_val, replace=False))
    return video_ids, {vid: ("val" if i in val_index else "train") for i, vid in enumerate(video_ids)}


def _write_video(layout: DatasetLayout, plan: VideoPlan, progress: Optional[Callable[[int], None]]) -> List[Tuple]:
    """Render and encode one planned video; returns its ground-truth rows
    ``(video_id, second, x1, y1, x2, y2, action_id, person_id)`` (normalised), one per label of
    each figure visible at each keyframe."""
    vid, width, height = plan.video_id, plan.width, plan.height
    keyframes = {(s - SEGMENT_START_SECOND) * FPS: s for s in plan.keyframe_seconds}
    key_boxes: Dict[int, List[Optional[Tuple[int, int, int, int]]]] = {}

    def frames() -> Iterator[np.ndarray]:
        for i in range(plan.num_frames):
            rgb, boxes = render_frame(plan, i)
            if i in keyframes:
                key_boxes[i] = boxes
            if progress is not None and (i + 1) % FPS == 0:
                progress(FPS)
            yield rgb
        if progress is not None and plan.num_frames % FPS:
            progress(plan.num_frames % FPS)

    with atomic_path(layout.video(vid)) as tmp:
        encode_video(tmp, frames(), width, height)
    rows = []
    for frame, second in keyframes.items():
        for fig, box in zip(plan.figures, key_boxes[frame]):
            if box is None:
                continue
            nb = pixels_to_normalized(np.asarray(box, dtype=np.float64)[None, :], width, height)[0]
            for label in fig.labels_at(frame):
                rows.append((vid, second, *nb, label, fig.person_id))
    return rows


def _write_split(layout: DatasetLayout, split: str, gt_rows: List[Tuple], summary: SyntheticSummary,
                 rng: np.random.Generator) -> None:
    """Write one split's ground truth, predicted boxes (drawn with ``rng``), exclusions (``rng``
    again) and frame list; count them into ``summary``."""
    width, height = summary.size
    # Rows are in video order, then keyframe; order each key's rows by person id.
    gt = pd.DataFrame(gt_rows, columns=_GT_COLUMNS)
    rank = gt["video_id"].map({v: i for i, v in enumerate(summary.videos[split])})
    gt = gt.assign(_rank=rank).sort_values(["_rank", "second", "person_id"], kind="stable")
    gt = gt.drop(columns="_rank").reset_index(drop=True)
    write_ground_truth(layout.ground_truth(split), gt)

    persons = gt.drop_duplicates(["video_id", "second", "person_id"])
    pred = predict_boxes(rng, persons, width, height)
    write_predicted_boxes(layout.predicted_boxes(split), pred)

    keys = sorted({image_key(v, s) for v, s in zip(persons["video_id"], persons["second"])})
    num_excluded = min(len(keys), max(1, int(round(0.03 * len(keys)))))
    excluded = [keys[i] for i in sorted(rng.choice(len(keys), num_excluded, replace=False))]
    write_exclusions(layout.exclusions(split), excluded)

    videos = summary.videos[split]
    write_frame_list(layout.frame_list(split), frame_list_rows(videos, {v: summary.seconds * FPS for v in videos}))

    summary.keyframes[split] = len(keys)
    summary.boxes[split] = len(persons)
    summary.predicted_boxes[split] = len(pred)
    summary.excluded[split] = num_excluded
    counts = gt["action_id"].value_counts()
    summary.class_counts[split] = {c: int(counts.get(c, 0)) for c in CLASS_IDS}
