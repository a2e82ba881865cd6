"""The table of backbone architectures: the one place that maps ``model.arch`` to code.

Each row says which ``model`` sub-sections of the config the architecture reads, how they are
validated (one function per section, each naming the bad key), the input packing (from the config
alone, so the data transforms need no model), and the builder. Adding an architecture (X3D,
MViT, ...) is: a module with a :class:`~ava_detect.model.base.Backbone` subclass and its builder,
a config section (a dataclass in :mod:`ava_detect.config` and a field of ``ModelConfig``), and one
row here. Nothing else in the package tests ``arch``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, Optional, Sequence, Tuple

from ava_detect.errors import AvaDetectError
from ava_detect.model.backbone import STAGE_DEPTHS, create_slow_resnet, create_slowfast_resnet
from ava_detect.model.base import Backbone, InputSpec
from ava_detect.model.nonlocal_block import NonLocalLayout

if TYPE_CHECKING:
    from ava_detect.config import ModelConfig, ResNetConfig, SlowFastConfig


@dataclass(frozen=True)
class Architecture:
    """One row of :data:`ARCHITECTURES`."""

    #: the ``model.<section>`` config sections this architecture reads
    sections: Tuple[str, ...]
    #: validates those sections; raises :class:`~ava_detect.errors.AvaDetectError` naming the key
    check: Callable[["ModelConfig"], None]
    #: how a clip is packed into the backbone's inputs (equals the built backbone's ``input_spec``)
    input_spec: Callable[["ModelConfig"], InputSpec]
    #: the backbone, randomly initialised
    build: Callable[["ModelConfig"], Backbone]


def _bad(key: str, expected: str, found) -> AvaDetectError:
    return AvaDetectError(f"config key 'model.{key}': expected {expected}, found {found!r}")


def _check_positive(section: str, values: Dict[str, int]) -> None:
    for key, value in values.items():
        if value < 1:
            raise _bad(f"{section}{key}", "a positive integer", value)


def _check_temporal_kernels(key: str, kernels: Sequence[int]) -> None:
    if len(kernels) != 5 or any(k < 1 or k % 2 == 0 for k in kernels):
        raise _bad(key, "5 odd positive kernels (stem, res2, res3, res4, res5)", list(kernels))


def check_resnet_config(r: "ResNetConfig") -> None:
    """Validate ``model.resnet``."""
    if r.depth not in STAGE_DEPTHS:
        raise _bad("resnet.depth", " or ".join(map(str, sorted(STAGE_DEPTHS))), r.depth)
    _check_temporal_kernels("resnet.slow_temporal_kernels", r.slow_temporal_kernels)
    if r.num_block_temp_kernel and len(r.num_block_temp_kernel) != 4:
        raise _bad("resnet.num_block_temp_kernel", "[] or 4 values (res2..res5)", list(r.num_block_temp_kernel))
    _check_positive("resnet.", {"width_per_group": r.width_per_group, "num_groups": r.num_groups,
                                "res5_spatial_stride": r.res5_spatial_stride, "res5_dilation": r.res5_dilation})


def check_slowfast_config(s: "SlowFastConfig", r: "ResNetConfig") -> None:
    """Validate ``model.slowfast`` (with the trunk's width, which the fast pathway divides)."""
    _check_temporal_kernels("slowfast.fast_temporal_kernels", s.fast_temporal_kernels)
    if s.beta_inv >= 1 and r.width_per_group // s.beta_inv < 1:
        raise _bad("resnet.width_per_group", f"at least model.slowfast.beta_inv ({s.beta_inv})", r.width_per_group)
    if s.fusion_kernel_size % 2 == 0:
        raise _bad("slowfast.fusion_kernel_size", "an odd kernel", s.fusion_kernel_size)
    _check_positive("slowfast.", {"alpha": s.alpha, "beta_inv": s.beta_inv,
                                  "fusion_channel_ratio": s.fusion_channel_ratio,
                                  "fusion_kernel_size": s.fusion_kernel_size})


def non_local_layout(r: "ResNetConfig", num_pathways: int) -> Optional[NonLocalLayout]:
    """``model.resnet.non_local`` as a :class:`~ava_detect.model.nonlocal_block.NonLocalLayout` (None without
    locations), checked against the trunk's stages and pathways.

    Raises:
        AvaDetectError: locations, groups or pool sizes that do not fit the trunk (naming the section).
    """
    nl = r.non_local
    if not any(after for per_stage in nl.locations for after in per_stage):
        return None
    layout = NonLocalLayout(
        locations=tuple(tuple(tuple(a) for a in per_stage) for per_stage in nl.locations),
        groups=tuple(tuple(g) for g in nl.group),
        pool_sizes=tuple(tuple(tuple(size) for size in per_stage) for per_stage in nl.pool_size),
        instantiation=nl.instantiation)
    try:
        layout.check(num_pathways, STAGE_DEPTHS[r.depth])
    except ValueError as e:
        raise AvaDetectError(f"config section 'model.resnet.non_local': {e}") from None
    return layout


def _check_slowfast(m: "ModelConfig") -> None:
    check_resnet_config(m.resnet)
    check_slowfast_config(m.slowfast, m.resnet)


def _build_slowfast(m: "ModelConfig") -> Backbone:
    r, s = m.resnet, m.slowfast
    return create_slowfast_resnet(
        depth=r.depth, alpha=s.alpha, beta_inv=s.beta_inv, fusion_channel_ratio=s.fusion_channel_ratio,
        fusion_kernel_size=s.fusion_kernel_size, width_per_group=r.width_per_group, num_groups=r.num_groups,
        slow_temporal_kernels=r.slow_temporal_kernels, fast_temporal_kernels=s.fast_temporal_kernels,
        num_block_temp_kernel=list(r.num_block_temp_kernel) or None, res5_spatial_stride=r.res5_spatial_stride,
        res5_dilation=r.res5_dilation, non_local=non_local_layout(r, 2))


def _build_slow(m: "ModelConfig") -> Backbone:
    r = m.resnet
    return create_slow_resnet(
        depth=r.depth, width_per_group=r.width_per_group, num_groups=r.num_groups,
        temporal_kernels=r.slow_temporal_kernels, num_block_temp_kernel=list(r.num_block_temp_kernel) or None,
        res5_spatial_stride=r.res5_spatial_stride, res5_dilation=r.res5_dilation, non_local=non_local_layout(r, 1))


#: ``model.arch`` -> its row.
ARCHITECTURES: Dict[str, Architecture] = {
    "slowfast": Architecture(sections=("resnet", "slowfast"), check=_check_slowfast,
                             input_spec=lambda m: InputSpec((m.slowfast.alpha, 1)), build=_build_slowfast),
    "slow": Architecture(sections=("resnet",), check=lambda m: check_resnet_config(m.resnet),
                         input_spec=lambda m: InputSpec((1,)), build=_build_slow),
}


def architecture(m: "ModelConfig") -> Architecture:
    """The row of ``m.arch``, after validating the sections it reads.

    Raises:
        AvaDetectError: unknown ``model.arch``, or a setting of its sections out of range (naming the key).
    """
    row = ARCHITECTURES.get(m.arch)
    if row is None:
        raise _bad("arch", " or ".join(repr(name) for name in ARCHITECTURES), m.arch)
    row.check(m)
    return row


def input_spec_from_config(m: "ModelConfig") -> InputSpec:
    """How the backbone that ``m`` describes packs a clip (for the data transforms; no model is built)."""
    return architecture(m).input_spec(m)


def build_backbone(m: "ModelConfig") -> Backbone:
    """The backbone that ``m`` describes, randomly initialised."""
    row = architecture(m)
    backbone = row.build(m)
    assert backbone.input_spec == row.input_spec(m), (backbone.input_spec, row.input_spec(m))
    return backbone
