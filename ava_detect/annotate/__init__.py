"""Annotating a user's video: streaming decode -> person detection at keyframes -> clips -> action
model -> person tracks -> rendered h264 video (+ audio) and AVA-format CSV / JSON.

:class:`Annotator` (``Annotator.from_config(cfg)``) assembles the models once and annotates videos;
:func:`annotate_video` runs one pass with given parts. The parts (:class:`ActionPredictor`,
:class:`IoUTracker`, :class:`Renderer`, :class:`VideoWriter`, :class:`ResultWriter`) are usable on their
own; :class:`AnnotateOptions` holds a pass's settings and :class:`LabelPolicy` decides which actions
are written and drawn. :func:`annotate_stream` (``Annotator.annotate_stream``) annotates a live
stream within a latency budget (:class:`LiveOptions`).
"""

from ava_detect.annotate.action import ActionPredictor
from ava_detect.annotate.annotator import Annotator, build_predictor, load_annotate_config, preset_config
from ava_detect.annotate.labels import LabelPolicy
from ava_detect.annotate.live import LiveOptions, LiveStats, StreamStalled, annotate_stream
from ava_detect.annotate.options import AnnotateOptions
from ava_detect.annotate.pipeline import AnnotateStats, annotate_video, check_output_paths
from ava_detect.annotate.render import DrawnPerson, FrameRenderer, Renderer, short_name
from ava_detect.annotate.results import ResultWriter
from ava_detect.annotate.tracking import IoUTracker
from ava_detect.annotate.video_writer import VideoWriter

__all__ = ["ActionPredictor", "AnnotateOptions", "AnnotateStats", "Annotator", "DrawnPerson", "FrameRenderer",
           "IoUTracker", "LabelPolicy", "LiveOptions", "LiveStats", "Renderer", "StreamStalled", "annotate_stream", "ResultWriter", "VideoWriter", "annotate_video", "build_predictor",
           "check_output_paths", "load_annotate_config", "preset_config", "short_name"]
