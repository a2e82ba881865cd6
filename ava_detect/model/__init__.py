"""The action detector: SlowFast / Slow-only ResNet backbone + RoI action head, and its weights.

``build_model(cfg)`` reads the ``model`` section of the config once and calls the builders with
explicit arguments; :func:`load_weights` fills it from our checkpoints, PyTorchVideo or PySlowFast
files, or a published name (see :mod:`ava_detect.model.published`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from ava_detect.errors import AvaDetectError
from ava_detect.model.backbone import STAGE_DEPTHS, ResNetBackbone, create_slow_resnet, create_slowfast_resnet
from ava_detect.model.checkpoint import LoadReport, load_weights, read_checkpoint, save_checkpoint
from ava_detect.model.detector import ActionDetector
from ava_detect.model.head import RoIActionHead
from ava_detect.model.nonlocal_block import NonLocalBlock, NonLocalLayout
from ava_detect.model.optimize import fold_batch_norm, optimize_for_inference

if TYPE_CHECKING:
    from ava_detect.config import Config, ModelConfig

__all__ = [
    "ActionDetector", "LoadReport", "NonLocalBlock", "NonLocalLayout", "ResNetBackbone", "RoIActionHead", "build_model",
    "create_slow_resnet", "create_slowfast_resnet", "fold_batch_norm", "load_weights", "optimize_for_inference", "read_checkpoint",
    "save_checkpoint",
]


def _check_model_config(m: "ModelConfig") -> None:
    def bad(key: str, expected: str, found) -> AvaDetectError:
        return AvaDetectError(f"config key 'model.{key}': expected {expected}, found {found!r}")

    if m.arch not in ("slowfast", "slow"):
        raise bad("arch", "'slowfast' or 'slow'", m.arch)
    if m.depth not in STAGE_DEPTHS:
        raise bad("depth", " or ".join(map(str, sorted(STAGE_DEPTHS))), m.depth)
    for key in ("slow_temporal_kernels", "fast_temporal_kernels"):
        kernels = getattr(m, key)
        if len(kernels) != 5 or any(k < 1 or k % 2 == 0 for k in kernels):
            raise bad(key, "5 odd positive kernels (stem, res2, res3, res4, res5)", list(kernels))
    if m.num_block_temp_kernel and len(m.num_block_temp_kernel) != 4:
        raise bad("num_block_temp_kernel", "[] or 4 values (res2..res5)", list(m.num_block_temp_kernel))
    positive = ["num_classes", "width_per_group", "num_groups", "res5_spatial_stride", "res5_dilation", "roi_resolution"]
    if m.arch == "slowfast":
        positive += ["alpha", "beta_inv", "fusion_channel_ratio", "fusion_kernel_size"]
        if m.width_per_group // m.beta_inv < 1:
            raise bad("width_per_group", f"at least beta_inv ({m.beta_inv})", m.width_per_group)
        if m.fusion_kernel_size % 2 == 0:
            raise bad("fusion_kernel_size", "an odd kernel", m.fusion_kernel_size)
    for key in positive:
        if getattr(m, key) < 1:
            raise bad(key, "a positive integer", getattr(m, key))
    if not 0.0 <= m.dropout < 1.0:
        raise bad("dropout", "a rate in [0, 1)", m.dropout)
    if m.roi_sampling_ratio < 0:
        raise bad("roi_sampling_ratio", "0 (adaptive) or a positive integer", m.roi_sampling_ratio)


def _non_local_layout(m: "ModelConfig") -> Optional[NonLocalLayout]:
    """``model.non_local`` as a :class:`NonLocalLayout` (None without locations), checked against the backbone."""
    nl = m.non_local
    if not any(after for per_stage in nl.locations for after in per_stage):
        return None
    layout = NonLocalLayout(
        locations=tuple(tuple(tuple(a) for a in per_stage) for per_stage in nl.locations),
        groups=tuple(tuple(g) for g in nl.group),
        pool_sizes=tuple(tuple(tuple(size) for size in per_stage) for per_stage in nl.pool_size),
        instantiation=nl.instantiation)
    try:
        layout.check(2 if m.arch == "slowfast" else 1, STAGE_DEPTHS[m.depth])
    except ValueError as e:
        raise AvaDetectError(f"config section 'model.non_local': {e}") from None
    return layout


def build_model(cfg: "Config") -> ActionDetector:
    """The detector described by ``cfg.model`` (randomly initialised; see :func:`load_weights`).

    Raises:
        AvaDetectError: a model setting out of range (naming the key).
    """
    m = cfg.model
    _check_model_config(m)
    nbtk = list(m.num_block_temp_kernel) or None
    non_local = _non_local_layout(m)
    if m.arch == "slowfast":
        backbone = create_slowfast_resnet(
            depth=m.depth, alpha=m.alpha, beta_inv=m.beta_inv, fusion_channel_ratio=m.fusion_channel_ratio,
            fusion_kernel_size=m.fusion_kernel_size, width_per_group=m.width_per_group, num_groups=m.num_groups,
            slow_temporal_kernels=m.slow_temporal_kernels, fast_temporal_kernels=m.fast_temporal_kernels,
            num_block_temp_kernel=nbtk, res5_spatial_stride=m.res5_spatial_stride, res5_dilation=m.res5_dilation,
            non_local=non_local)
    else:
        backbone = create_slow_resnet(
            depth=m.depth, width_per_group=m.width_per_group, num_groups=m.num_groups,
            temporal_kernels=m.slow_temporal_kernels, num_block_temp_kernel=nbtk,
            res5_spatial_stride=m.res5_spatial_stride, res5_dilation=m.res5_dilation, non_local=non_local)
    head = RoIActionHead(sum(backbone.out_channels), m.num_classes, spatial_scale=1.0 / backbone.output_stride,
                         resolution=m.roi_resolution, sampling_ratio=m.roi_sampling_ratio, aligned=m.roi_aligned,
                         dropout=m.dropout)
    return ActionDetector(backbone, head)
