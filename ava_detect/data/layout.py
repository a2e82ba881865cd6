"""The folder layout of an AVA-format dataset: where ``ava-detect prep`` writes each file and where
the ``data`` config section's defaults read it.

::

    ROOT/
      videos/<video_id>.mp4                                    prepared videos (prep videos, prep synthetic)
      frames/<video_id>/<video_id>_000001.jpg ...              PySlowFast frame folders (prep frames, optional)
      annotations/<split>.csv                                  ground truth
      annotations/<split>_predicted_boxes.csv                  person-detector boxes with scores
      annotations/<split>_excluded_timestamps.csv              excluded keys
      annotations/<split>_boxes_and_labels_include_negative.csv  labelled detector boxes (prep annotations)
      annotations/labelmap.pbtxt                               the dataset's classes (absent: AVA v2.2's 80)
      frame_lists/<split>.csv                                  PySlowFast frame lists

Every path of the ``data`` section may also be set on its own; relative ones are resolved
against ``data.root`` (:func:`resolve_data_path`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: The splits of a dataset, in the order they are written.
SPLITS = ("train", "val")


@dataclass(frozen=True)
class DatasetLayout:
    """Paths of one dataset's files under ``root`` (the default root ``.`` gives the relative names,
    as the config's defaults write them: ``DatasetLayout().ground_truth("train").as_posix()``)."""

    root: Path = Path()

    @property
    def videos_dir(self) -> Path:
        return self.root / "videos"

    @property
    def frames_dir(self) -> Path:
        return self.root / "frames"

    @property
    def annotations_dir(self) -> Path:
        return self.root / "annotations"

    @property
    def frame_lists_dir(self) -> Path:
        return self.root / "frame_lists"

    def video(self, video_id: str, suffix: str = ".mp4") -> Path:
        return self.videos_dir / f"{video_id}{suffix}"

    def ground_truth(self, split: str) -> Path:
        return self.annotations_dir / f"{split}.csv"

    def predicted_boxes(self, split: str) -> Path:
        return self.annotations_dir / f"{split}_predicted_boxes.csv"

    def exclusions(self, split: str) -> Path:
        return self.annotations_dir / f"{split}_excluded_timestamps.csv"

    def labelled_boxes(self, split: str) -> Path:
        """PySlowFast's training file (``ava_detection_train_boxes_and_labels_include_negative_v2.2.csv``)."""
        return self.annotations_dir / f"{split}_boxes_and_labels_include_negative.csv"

    @property
    def labelmap(self) -> Path:
        return self.annotations_dir / "labelmap.pbtxt"

    def frame_list(self, split: str) -> Path:
        return self.frame_lists_dir / f"{split}.csv"


def resolve_data_path(data_cfg, path: str) -> Path:
    """A path of the ``data`` config section: absolute as given, else relative to ``data.root``."""
    root = Path(data_cfg.root) if data_cfg.root else Path(".")
    return Path(path) if os.path.isabs(path) else root / path


#: The ``data`` config keys that name input files or folders (for :func:`data_inputs`).
DATA_INPUT_KEYS = ("video_dir", "frame_dir", "train_gt", "val_gt", "train_boxes", "val_boxes", "train_exclusions",
                   "exclusions", "labelmap")


def data_inputs(data_cfg) -> list:
    """``[("data.val_gt", Path), ...]``: every file and folder the ``data`` section reads (those set),
    resolved as the readers resolve them; for declaring a command's inputs
    (:class:`~ava_detect.io_paths.IOPaths`)."""
    return [(f"data.{key}", resolve_data_path(data_cfg, getattr(data_cfg, key)))
            for key in DATA_INPUT_KEYS if getattr(data_cfg, key)]
