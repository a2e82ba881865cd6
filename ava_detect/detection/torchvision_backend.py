"""Person detection with torchvision's COCO Faster R-CNN models (``detector.model``).

Models (:data:`~ava_detect.detection.coco_models.COCO_DETECTORS`): ``fasterrcnn_resnet50_fpn_v2``
(the default, 46.7 box AP on COCO val2017), ``fasterrcnn_resnet50_fpn`` (37.0),
``fasterrcnn_mobilenet_v3_large_fpn`` (32.8) and ``fasterrcnn_mobilenet_v3_large_320_fpn`` (22.8).
Weights: the model's torchvision COCO weights (its weights enum's ``DEFAULT``), downloaded on first
use into the torch hub cache; or a local file (a state dict saved with
``torch.save(model.state_dict(), path)``, or a torchvision reference-training checkpoint
``{"model": state_dict, ...}``) read with ``torch.load(weights_only=True)``, so no code from the
file runs. People are COCO class 1. On CPUs with bfloat16 matrix units the model runs under bf16
autocast (``detector.precision``, see :mod:`ava_detect.precision`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Sequence, Union

import contextlib

import torch

from ava_detect.detection.base import Detections, FrameKey, Frames, PersonDetector, as_frame_list, check_input_size
from ava_detect.detection.coco_models import COCO_DETECTORS, DEFAULT_COCO_DETECTOR
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


def _coco_detector(model: str):
    entry = COCO_DETECTORS.get(model)
    if entry is None:
        raise AvaDetectError(f"unknown torchvision person detector {model!r}; expected one of "
                             f"{', '.join(COCO_DETECTORS)}", "config")
    return entry


def default_weights_url(model: str = DEFAULT_COCO_DETECTOR) -> str:
    """URL of torchvision's default COCO weights for ``model`` (its weights enum's ``DEFAULT``)."""
    import torchvision.models.detection as detection

    return getattr(detection, _coco_detector(model).weights_enum).DEFAULT.url


def download_default_weights(model: str = DEFAULT_COCO_DETECTOR, *, progress: bool = True) -> Dict[str, torch.Tensor]:
    """torchvision's COCO weights of ``model``, downloaded into ``<torch hub dir>/checkpoints`` on first use.

    Raises:
        AvaDetectError: the download failed (offline, URL gone), naming the URL and how to pass a
            local file instead.
    """
    url = default_weights_url(model)
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
    *, model: str = DEFAULT_COCO_DETECTOR, weights: str = "", min_size: int = 800, max_size: int = 1333,
    score_threshold: float = 0.05, proposals: int = 1000, progress: bool = True,
) -> torch.nn.Module:
    """The torchvision COCO Faster R-CNN ``model`` with weights loaded, in eval mode, on the CPU.

    Args:
        model: a name of :data:`~ava_detect.detection.coco_models.COCO_DETECTORS`.
        weights: a local file, or ``""`` for torchvision's COCO weights of ``model`` (downloaded on first use).
        min_size, max_size: the model resizes each frame so that its short side is ``min_size``
            pixels and its long side at most ``max_size`` (torchvision's ``GeneralizedRCNNTransform``).
        score_threshold: the model's ``box_score_thresh`` (boxes below it are dropped before NMS).
        proposals: region proposals kept per image before and after the RPN's NMS (torchvision: 1000);
            the box head's cost grows with it, fewer is faster and finds slightly fewer people.

    Raises:
        AvaDetectError: an unknown model, download failure, unreadable file, or a file whose tensors do
            not fit the model.
    """
    import torchvision.models.detection as detection

    entry = _coco_detector(model)
    source = weights or default_weights_url(model)
    state = read_weights_file(weights) if weights else download_default_weights(model, progress=progress)
    num_classes = int(state[_CLS_KEY].shape[0]) if _CLS_KEY in state else COCO_NUM_CLASSES
    net = getattr(detection, entry.builder)(
        weights=None, weights_backbone=None, num_classes=num_classes, min_size=min_size, max_size=max_size,
        box_score_thresh=score_threshold, rpn_pre_nms_top_n_test=proposals, rpn_post_nms_top_n_test=proposals)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError:
        raise AvaDetectError(
            f"wrong person detector weights: expected a torchvision {model} state dict "
            f"(detector.model={model}); {_describe_mismatch(net, state)}", source) from None
    logger.info("person detector: %s from %s (%d classes)", model, source, num_classes)
    return net.eval()


def fold_backbone_batch_norm(net: torch.nn.Module) -> torch.nn.Module:
    """``net`` with the batch norms of its backbone (body and FPN) folded into the convolutions before them,
    for inference (torch.fx's ``fuse``: the outputs change only by float rounding, and a frame takes
    fewer passes over memory). A backbone that torch.fx cannot trace is kept as it is (logged)."""
    from torch.fx.experimental.optimization import fuse

    try:
        net.backbone = fuse(net.backbone.eval())
    except Exception as e:  # tracing failures come as many exception types; the unfused model still works
        logger.debug("person detector backbone kept unfolded (%s: %s)", type(e).__name__, e)
    return net


class TorchvisionPersonDetector(PersonDetector):
    """A torchvision COCO Faster R-CNN (``model``): the COCO "person" boxes of each frame.

    Args:
        model: a name of :data:`~ava_detect.detection.coco_models.COCO_DETECTORS` (default: R50-FPN v2).
        weights: local weights file, or ``""`` for torchvision's COCO weights (downloaded on first use).
        score_threshold: boxes with a lower person score are dropped (AVA recipes: 0.8 for the
            action model's boxes; lower it to trade precision for recall).
        min_size, max_size: short-side size the frames are resized to, and the long-side cap (pixels).
        proposals: region proposals per image (see :func:`build_faster_rcnn`).
        batch_size: frames per forward pass.
        device: where the model runs.
        bf16: run the model under bfloat16 autocast (boxes and scores are returned in float32).
        person_label: class index of "person" in the weights (COCO: 1).
        net: an already built torchvision detection model to use as it is instead of building one
            (``model``, ``weights``, ``min_size``, ``max_size``, ``proposals`` are then ignored). A built
            one has its backbone's batch norms folded (:func:`fold_backbone_batch_norm`).
    """

    name = "torchvision"

    def __init__(
        self, *, model: str = DEFAULT_COCO_DETECTOR, weights: str = "", score_threshold: float = 0.8,
        min_size: int = 800, max_size: int = 1333, proposals: int = 1000, batch_size: int = 4,
        device: Union[str, torch.device] = "cpu", bf16: bool = False, person_label: int = COCO_PERSON_LABEL,
        net: Optional[torch.nn.Module] = None, progress: bool = True,
    ):
        if batch_size < 1:
            raise AvaDetectError(f"detector batch size must be >= 1, got {batch_size}")
        if not 0.0 <= score_threshold <= 1.0:
            raise AvaDetectError(f"detector score threshold must be in [0, 1], got {score_threshold}")
        self.score_threshold = float(score_threshold)
        self.batch_size = int(batch_size)
        self.device = torch.device(device)
        self.bf16 = bool(bf16)
        self.person_label = int(person_label)
        self.model_name = model
        self.min_size = int(min_size)
        self.weights = weights or default_weights_url(model)
        if net is None:
            net = fold_backbone_batch_norm(build_faster_rcnn(
                model=model, weights=weights, min_size=min_size, max_size=max_size,
                score_threshold=max(self.score_threshold - 1e-6, 0.0), proposals=proposals, progress=progress))
        self.model = net.eval().to(self.device)

    def _autocast(self):
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def detect(self, frames: Frames, *, keys: Optional[Sequence[FrameKey]] = None) -> List[Detections]:
        """See :meth:`PersonDetector.detect`; ``keys`` are ignored."""
        images = as_frame_list(frames)
        out: List[Detections] = []
        with torch.inference_mode(), self._autocast():
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
        return (f"torchvision {self.model_name} at {self.min_size} px{', bf16' if self.bf16 else ''} "
                f"({self.weights}; person score >= {self.score_threshold:g})")


def build(d: "DetectorConfig", *, device: Union[str, torch.device] = "cpu",
          progress: bool = True) -> TorchvisionPersonDetector:
    """The ``torchvision`` backend of :func:`~ava_detect.detection.build_detector` (``d``: the ``DetectorConfig``)."""
    from ava_detect.precision import use_bf16

    check_input_size(d)
    return TorchvisionPersonDetector(model=d.model, weights=d.weights, score_threshold=d.score_threshold,
                                     min_size=d.min_size, max_size=d.max_size, proposals=d.proposals,
                                     batch_size=d.batch_size, device=device, bf16=use_bf16(d.precision, device),
                                     progress=progress)
