"""Person detection with a detectron2 model-zoo Faster R-CNN, for users who have built detectron2.

detectron2 is not on the package index and is never required: this module imports it only when
the ``detectron2`` backend is chosen, and says how to get it when it is missing. The default
config is ``COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml`` (40.2 box AP); PySlowFast's demo uses
the same family of models. Weights: the model zoo's checkpoint for that config (detectron2
downloads it on first use) or a local file.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, List, Optional, Sequence, Union

import torch

from ava_detect.detection.base import Detections, FrameKey, Frames, PersonDetector, as_frame_list, check_input_size
from ava_detect.errors import AvaDetectError

if TYPE_CHECKING:
    from ava_detect.config import DetectorConfig

logger = logging.getLogger(__name__)

#: Index of "person" among detectron2's contiguous COCO classes.
DETECTRON2_PERSON_CLASS = 0
INSTALL_HINT = ("detectron2 is not installed (it is not on the package index); build it following "
                "https://detectron2.readthedocs.io/en/latest/tutorials/install.html, or choose another "
                "person detector: --detector torchvision or --detector csv")


def _import_detectron2():
    try:
        import detectron2  # noqa: F401
        from detectron2 import model_zoo
        from detectron2.checkpoint import DetectionCheckpointer
        from detectron2.config import get_cfg
        from detectron2.data import transforms as T
        from detectron2.modeling import build_model
    except ImportError as e:
        raise AvaDetectError(f"{INSTALL_HINT} ({e})") from None
    return model_zoo, DetectionCheckpointer, get_cfg, T, build_model


class Detectron2PersonDetector(PersonDetector):
    """A detectron2 model-zoo detector: the COCO "person" boxes of each frame.

    Args:
        config: model-zoo config name (``COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml``).
        weights: local checkpoint file, or ``""`` for the model zoo's weights of ``config``.
        score_threshold: boxes with a lower person score are dropped.
        min_size, max_size: test-time short-side size and long-side cap (pixels).
        batch_size: frames per forward pass.
        device: where the model runs.

    Raises:
        AvaDetectError: detectron2 is missing, the config name is unknown, or the weights cannot be read.
    """

    name = "detectron2"

    def __init__(
        self, *, config: str = "COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml", weights: str = "",
        score_threshold: float = 0.8, min_size: int = 800, max_size: int = 1333, batch_size: int = 4,
        device: Union[str, torch.device] = "cpu",
    ):
        model_zoo, DetectionCheckpointer, get_cfg, T, build_model = _import_detectron2()
        if batch_size < 1:
            raise AvaDetectError(f"detector batch size must be >= 1, got {batch_size}")
        self.score_threshold = float(score_threshold)
        self.batch_size = int(batch_size)
        self.device = torch.device(device)
        cfg = get_cfg()
        try:
            cfg.merge_from_file(model_zoo.get_config_file(config))
            default_weights = model_zoo.get_checkpoint_url(config)
        except RuntimeError as e:
            raise AvaDetectError(f"unknown detectron2 model-zoo config {config!r}: {e}") from None
        cfg.MODEL.WEIGHTS = weights or default_weights
        cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = self.score_threshold
        cfg.MODEL.DEVICE = str(self.device)
        cfg.INPUT.MIN_SIZE_TEST = int(min_size)
        cfg.INPUT.MAX_SIZE_TEST = int(max_size)
        cfg.freeze()
        self.weights = cfg.MODEL.WEIGHTS
        self.input_format = cfg.INPUT.FORMAT
        self.model = build_model(cfg).eval()
        try:
            DetectionCheckpointer(self.model).load(cfg.MODEL.WEIGHTS)
        except Exception as e:  # download failures, unreadable or foreign files
            hint = "" if weights else "; without network access, fetch it elsewhere and pass --detector-weights FILE"
            raise AvaDetectError(f"cannot load detectron2 weights ({type(e).__name__}: {e}){hint}",
                                 cfg.MODEL.WEIGHTS) from None
        self.resize = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
        logger.info("person detector: detectron2 %s from %s", config, self.weights)

    def detect(self, frames: Frames, *, keys: Optional[Sequence[FrameKey]] = None) -> List[Detections]:
        """See :meth:`PersonDetector.detect`; ``keys`` are ignored."""
        images = as_frame_list(frames)
        out: List[Detections] = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                inputs = []
                for im in images[start:start + self.batch_size]:
                    array = im.numpy()
                    if self.input_format == "BGR":
                        array = array[:, :, ::-1]
                    h, w = array.shape[:2]
                    resized = self.resize.get_transform(array).apply_image(array)
                    tensor = torch.as_tensor(resized.astype("float32").transpose(2, 0, 1))
                    inputs.append({"image": tensor, "height": h, "width": w})
                for result in self.model(inputs):
                    inst = result["instances"].to("cpu")
                    keep = (inst.pred_classes == DETECTRON2_PERSON_CLASS) & (inst.scores >= self.score_threshold)
                    boxes = inst.pred_boxes.tensor[keep].float()
                    scores = inst.scores[keep].float()
                    order = torch.argsort(scores, descending=True, stable=True)
                    out.append((boxes[order], scores[order]))
        return out

    def describe(self) -> str:
        return f"detectron2 ({self.weights}; person score >= {self.score_threshold:g})"


def build(d: "DetectorConfig", *, device: Union[str, torch.device] = "cpu", progress: bool = True) -> Detectron2PersonDetector:
    """The ``detectron2`` backend of :func:`~ava_detect.detection.build_detector` (``d``: the
    ``DetectorConfig``; detectron2 shows its own download progress)."""
    check_input_size(d)
    return Detectron2PersonDetector(config=d.detectron2_config, weights=d.weights,
                                    score_threshold=d.score_threshold, min_size=d.min_size, max_size=d.max_size,
                                    batch_size=d.batch_size, device=device)
