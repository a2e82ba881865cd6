"""Annotating a user's video: streaming decode -> person detection at keyframes -> clips -> action
model -> person tracks -> rendered h264 video (+ audio) and AVA-format CSV / JSON.

:func:`annotate_video` runs the whole pass; the parts (:class:`ActionPredictor`, :class:`IoUTracker`,
:class:`Renderer`, :class:`VideoWriter`, :class:`ResultWriter`) are usable on their own.
"""

from ava_detect.annotate.action import ActionPredictor
from ava_detect.annotate.pipeline import AnnotateStats, annotate_video, check_output_paths
from ava_detect.annotate.render import DrawnPerson, Renderer, short_name
from ava_detect.annotate.results import ResultWriter
from ava_detect.annotate.tracking import IoUTracker
from ava_detect.annotate.video_writer import VideoWriter

__all__ = ["ActionPredictor", "AnnotateStats", "DrawnPerson", "IoUTracker", "Renderer", "ResultWriter",
           "VideoWriter", "annotate_video", "check_output_paths", "short_name"]
