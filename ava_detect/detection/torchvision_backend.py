"""Person detection with torchvision's Faster R-CNN (``fasterrcnn_resnet50_fpn_v2``, COCO).

Weights: torchvision's COCO weights (``FasterRCNN_ResNet50_FPN_V2_Weights.DEFAULT``, 46.7 box AP
on COCO val2017), downloaded on first use into the torch hub cache; or a local file (a state
dict saved with ``torch.save(model.state_dict(), path)``, or a torchvision reference-training
checkpoint ``{"model": state_dict, ...}``) read with ``torch.load(weights_only=True)``, so no
code from the file runs. People are COCO class 1.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Sequence, Union

import torch

from ava_detect.detection.base import Detections, FrameKey, Frames, PersonDetector, as_frame_list, check_input_size
from ava_detect.errors import AvaDetectError
from ava_detect.serialization import UnreadableTorchFile, load_torch_file
from ava_detect.io import PathLike

if TYPE_CHECKING:
    from ava_detect.config import DetectorConfig

logger = logging.getLogger(__name__)

#: COCO category id of "person" in torchvision's detection models.
COCO_PERSON_LABEL = 1
#: Classes of torchvision's COCO detection heads (background + 90 COCO ids).
COCO_NUM_CLASSES = 91
_CLS_KEY = "roi_heads.box_predictor.cls_score.weight"


def default_weights_url() -> str:
    """URL of torchvision's default COCO weights for ``fasterrcnn_resnet50_fpn_v2`` (its weights enum)."""
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_V2_Weights

    return FasterRCNN_ResNet50_FPN_V2_Weights.DEFAULT.url


def download_default_weights(*, progress: bool = True) -> Dict[str, torch.Tensor]:
    """torchvision's COCO weights, downloaded into ``<torch hub dir>/checkpoints`` on first use.

    Raises:
        AvaDetectError: the download failed (offline, URL gone), naming the URL and how to pass a
            local file instead.
    """
    url = default_weights_url()
    try:
        return torch.hub.load_state_dict_from_url(url, progress=progress, check_hash=True, map_location="cpu")
    except Exception as e:  # URLError, HTTPError, timeouts, DNS failures, hash mismatch, disk errors
        reason = getattr(e, "reason", None) or e
        raise AvaDetectError(
            f"could not download the person detector's COCO weights from {url} ({type(e).__name__}: {reason}); "
            f"without network access, fetch that URL on another machine and pass the file with "
            f"--detector-weights /path/to/{url.rsplit('/', 1)[-1]} (config: detector.weights=FILE)") from None


def read_weights_file(path: PathLike) -> Dict[str, torch.Tensor]:
    """A local weights file -> its state dict (``torch.load(weights_only=True)``, no code runs).

    Raises:
        AvaDetectError: missing file, not a PyTorch file, or no state dict inside.
    """
    path = Path(path)
    try:
        obj = load_torch_file(path, what="person detector weights file")
    except UnreadableTorchFile as e:
        if e.truncated:
            raise AvaDetectError(f"cannot read the person detector weights file: {e.reason}", path) from None
        raise AvaDetectError(f"not a PyTorch weights file readable without running code ({e.reason})", path) from None
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        obj = obj["model"]  # torchvision reference-training checkpoint
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise AvaDetectError("expected a Faster R-CNN state dict (name -> tensor), found "
                             f"{type(obj).__name__}", path)
    return dict(obj)


def _describe_mismatch(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> str:
    target = model.state_dict()
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    shapes = [f"{k}: file {tuple(state[k].shape)}, model {tuple(target[k].shape)}"
              for k in target if k in state and state[k].shape != target[k].shape]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
    if shapes:
        parts.append(f"{len(shapes)} of another shape (e.g. {'; '.join(shapes[:2])})")
    return ", ".join(parts)


def build_faster_rcnn(
    *, weights: str = "", min_size: int = 800, max_size: int = 1333, score_threshold: float = 0.05,
    proposals: int = 1000, progress: bool = True,
) -> torch.nn.Module:
    """``fasterrcnn_resnet50_fpn_v2`` with weights loaded, in eval mode, on the CPU.

    Args:
        weights: a local file, or ``""`` for torchvision's COCO weights (downloaded on first use).
        min_size, max_size: the model resizes each frame so that its short side is ``min_size``
            pixels and its long side at most ``max_size`` (torchvision's ``GeneralizedRCNNTransform``).
        score_threshold: the model's ``box_score_thresh`` (boxes below it are dropped before NMS).
        proposals: region proposals kept per image before and after the RPN's NMS (torchvision: 1000);
            the box head's cost grows with it, fewer is faster and finds slightly fewer people.

    Raises:
        AvaDetectError: download failure, unreadable file, or a file whose tensors do not fit the model.
    """
    from torchvision.models.detection import fasterrcnn_resnet50_fpn_v2

    source = weights or default_weights_url()
    state = read_weights_file(weights) if weights else download_default_weights(progress=progress)
    num_classes = int(state[_CLS_KEY].shape[0]) if _CLS_KEY in state else COCO_NUM_CLASSES
    model = fasterrcnn_resnet50_fpn_v2(
        weights=None, weights_backbone=None, num_classes=num_classes, min_size=min_size, max_size=max_size,
        box_score_thresh=score_threshold, rpn_pre_nms_top_n_test=proposals, rpn_post_nms_top_n_test=proposals)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError:
        raise AvaDetectError(
            "wrong person detector weights: expected a torchvision fasterrcnn_resnet50_fpn_v2 state dict; "
            f"{_describe_mismatch(model, state)}", source) from None
    logger.info("person detector: fasterrcnn_resnet50_fpn_v2 from %s (%d classes)", source, num_classes)
    return model.eval()


class TorchvisionPersonDetector(PersonDetector):
    """Faster R-CNN R50-FPN v2 (torchvision): the COCO "person" boxes of each frame.

    Args:
        weights: local weights file, or ``""`` for torchvision's COCO weights (downloaded on first use).
        score_threshold: boxes with a lower person score are dropped (AVA recipes: 0.8 for the
            action model's boxes; lower it to trade precision for recall).
        min_size, max_size: short-side size the frames are resized to, and the long-side cap (pixels).
        proposals: region proposals per image (see :func:`build_faster_rcnn`).
        batch_size: frames per forward pass.
        device: where the model runs.
        person_label: class index of "person" in the weights (COCO: 1).
        model: an already built torchvision detection model to use instead of building one
            (``weights``, ``min_size``, ``max_size`` are then ignored).
    """

    name = "torchvision"

    def __init__(
        self, *, weights: str = "", score_threshold: float = 0.8, min_size: int = 800, max_size: int = 1333,
        proposals: int = 1000, batch_size: int = 4, device: Union[str, torch.device] = "cpu",
        person_label: int = COCO_PERSON_LABEL,
        model: Optional[torch.nn.Module] = None, progress: bool = True,
    ):
        if batch_size < 1:
            raise AvaDetectError(f"detector batch size must be >= 1, got {batch_size}")
        if not 0.0 <= score_threshold <= 1.0:
            raise AvaDetectError(f"detector score threshold must be in [0, 1], got {score_threshold}")
        self.score_threshold = float(score_threshold)
        self.batch_size = int(batch_size)
        self.device = torch.device(device)
        self.person_label = int(person_label)
        self.weights = weights or default_weights_url()
        if model is None:
            model = build_faster_rcnn(weights=weights, min_size=min_size, max_size=max_size,
                                      score_threshold=max(self.score_threshold - 1e-6, 0.0), proposals=proposals,
                                      progress=progress)
        self.model = model.eval().to(self.device)

    def detect(self, frames: Frames, *, keys: Optional[Sequence[FrameKey]] = None) -> List[Detections]:
        """See :meth:`PersonDetector.detect`; ``keys`` are ignored."""
        images = as_frame_list(frames)
        out: List[Detections] = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                batch = [im.to(self.device).permute(2, 0, 1).float().div_(255.0)
                         for im in images[start:start + self.batch_size]]
                for result in self.model(batch):
                    keep = (result["labels"] == self.person_label) & (result["scores"] >= self.score_threshold)
                    boxes = result["boxes"][keep].float().cpu()
                    scores = result["scores"][keep].float().cpu()
                    order = torch.argsort(scores, descending=True, stable=True)
                    out.append((boxes[order], scores[order]))
        return out

    def describe(self) -> str:
        return f"torchvision fasterrcnn_resnet50_fpn_v2 ({self.weights}; person score >= {self.score_threshold:g})"


def build(d: "DetectorConfig", *, device: Union[str, torch.device] = "cpu",
          progress: bool = True) -> TorchvisionPersonDetector:
    """The ``torchvision`` backend of :func:`~ava_detect.detection.build_detector` (``d``: the ``DetectorConfig``)."""
    check_input_size(d)
    return TorchvisionPersonDetector(weights=d.weights, score_threshold=d.score_threshold, min_size=d.min_size,
                                     max_size=d.max_size, proposals=d.proposals, batch_size=d.batch_size,
                                     device=device, progress=progress)
