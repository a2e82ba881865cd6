"""The action detector: a backbone (SlowFast / Slow-only ResNet, see :mod:`ava_detect.model.architectures`)
+ RoI action head, and its weights.

``build_model(cfg)`` reads the ``model`` section of the config once and calls the builders with
explicit arguments (the backbone contract is :mod:`ava_detect.model.base`); :func:`load_weights`
fills it from our checkpoints, PyTorchVideo or PySlowFast files, or a published name (see
:mod:`ava_detect.model.published`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ava_detect.errors import AvaDetectError
from ava_detect.model.architectures import ARCHITECTURES, build_backbone, input_spec_from_config
from ava_detect.model.backbone import ResNetBackbone, create_slow_resnet, create_slowfast_resnet
from ava_detect.model.base import Backbone, InputSpec
from ava_detect.model.weights import LoadReport, load_weights, read_checkpoint, save_checkpoint
from ava_detect.model.detector import ActionDetector
from ava_detect.model.head import RoIActionHead
from ava_detect.model.nonlocal_block import NonLocalBlock, NonLocalLayout
from ava_detect.model.optimize import fold_batch_norm, optimize_for_inference

if TYPE_CHECKING:
    from ava_detect.config import Config, ModelConfig

__all__ = [
    "ARCHITECTURES", "ActionDetector", "Backbone", "InputSpec", "LoadReport", "NonLocalBlock", "NonLocalLayout",
    "ResNetBackbone", "RoIActionHead",
    "build_backbone", "build_model", "check_model_config", "create_slow_resnet", "create_slowfast_resnet",
    "fold_batch_norm", "input_spec_from_config", "load_weights", "optimize_for_inference", "read_checkpoint",
    "save_checkpoint",
]


def check_model_config(m: "ModelConfig") -> None:
    """Validate the settings of ``model`` that every architecture shares (the head's); the
    architecture's own sections are validated by its row of :data:`ARCHITECTURES`."""
    def bad(key: str, expected: str, found) -> AvaDetectError:
        return AvaDetectError(f"config key 'model.{key}': expected {expected}, found {found!r}")

    for key in ("num_classes", "roi_resolution"):
        if getattr(m, key) < 1:
            raise bad(key, "a positive integer", getattr(m, key))
    if not 0.0 <= m.dropout < 1.0:
        raise bad("dropout", "a rate in [0, 1)", m.dropout)
    if m.roi_sampling_ratio < 0:
        raise bad("roi_sampling_ratio", "0 (adaptive) or a positive integer", m.roi_sampling_ratio)


def build_model(cfg: "Config") -> ActionDetector:
    """The detector described by ``cfg.model`` (randomly initialised; see :func:`load_weights`).

    Raises:
        AvaDetectError: a model setting out of range (naming the key).
    """
    m = cfg.model
    check_model_config(m)
    backbone = build_backbone(m)  # validates model.arch and its sections
    head = RoIActionHead(sum(backbone.out_channels), m.num_classes, spatial_scale=1.0 / backbone.output_stride,
                         resolution=m.roi_resolution, sampling_ratio=m.roi_sampling_ratio, aligned=m.roi_aligned,
                         dropout=m.dropout)
    return ActionDetector(backbone, head)
