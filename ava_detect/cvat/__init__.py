"""The "CVAT for video 1.1" format: read exports as a stream, interpolate tracks, write pre-labels.

- ``model.py``: ``CvatBox``, ``CvatTrack``, ``CvatTask`` (plain data).
- ``reader.py``: ``iter_cvat_export`` (``.xml`` or ``.zip``, streamed, hardened; what is mapped,
  ignored and refused is listed there).
- ``interpolate.py``: ``boxes_at_frames`` (CVAT's own interpolation and ``outside`` rules).
- ``tracks.py``: ``keyframe_tracks`` (observations at keyframes -> tracks with ``outside`` at gaps),
  ``checkbox_attributes``.
- ``writer.py``: ``write_cvat_xml``, ``write_cvat_zip`` (one task, atomic, streamed),
  ``label_constructor`` (the label JSON for CVAT's "Raw" label constructor).
"""

from ava_detect.cvat.interpolate import boxes_at_frames
from ava_detect.cvat.model import CvatBox, CvatTask, CvatTrack
from ava_detect.cvat.reader import iter_cvat_export
from ava_detect.cvat.tracks import checkbox_attributes, keyframe_tracks
from ava_detect.cvat.writer import label_constructor, write_cvat_xml, write_cvat_zip

__all__ = [
    "CvatBox", "CvatTask", "CvatTrack", "iter_cvat_export", "boxes_at_frames", "keyframe_tracks",
    "checkbox_attributes", "label_constructor", "write_cvat_xml", "write_cvat_zip",
]
