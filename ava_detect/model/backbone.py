"""SlowFast and Slow-only 3D ResNet backbones (R50, R101), as in Feichtenhofer et al. 2019.

Both builders return a :class:`ResNetBackbone`: a list of pathways (slow first, then fast) that
run in parallel through a stem and four residual stages (res2..res5). In SlowFast, after the stem
and after res2, res3 and res4, a lateral connection (:class:`FastToSlowFusion`) squeezes the fast
pathway in time and concatenates it to the slow pathway's channels.

Module names (state-dict keys) are ours; :mod:`ava_detect.model.weights` maps the PySlowFast
and PyTorchVideo names onto them:

* ``stem.<p>.conv`` / ``stem.<p>.bn``                      pathway ``p`` (0 = slow, 1 = fast)
* ``fusions.<i>.conv`` / ``fusions.<i>.bn``                 fast -> slow after stem (i=0), res2..res4
* ``stages.<s>.<p>.<b>.{conv_a,bn_a,conv_b,bn_b,conv_c,bn_c}`` block ``b`` of res``s+2``
* ``stages.<s>.<p>.<b>.{shortcut_conv,shortcut_bn}``        projection shortcut (first block)
* ``stages.<s>.<p>.nonlocal<b>.{conv_theta,conv_phi,conv_g,conv_out,bn}`` non-local block after block ``b``
  (:mod:`ava_detect.model.nonlocal_block`; only where a :class:`NonLocalLayout` puts one)
"""

from __future__ import annotations

from collections import OrderedDict
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ava_detect.model.base import Backbone, InputSpec
from ava_detect.model.nonlocal_block import NonLocalBlock, NonLocalLayout

#: Bottleneck blocks per stage (res2, res3, res4, res5).
STAGE_DEPTHS = {18: (2, 2, 2, 2), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}

#: BatchNorm settings of the reference implementations.
BN_EPS = 1e-5
BN_MOMENTUM = 0.1


def _bn(channels: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class Stem(nn.Module):
    """Conv ``(kt,7,7)`` stride ``(1,2,2)`` -> BN -> ReLU -> MaxPool ``(1,3,3)`` stride ``(1,2,2)``.

    ``[B, C_in, T, H, W]`` -> ``[B, C_out, T, H/4, W/4]``.
    """

    #: (conv, bn) attribute pairs that :func:`ava_detect.model.optimize.fold_batch_norm` folds.
    conv_bn_pairs = (("conv", "bn"),)

    def __init__(self, in_channels: int, out_channels: int, temporal_kernel: int):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, (temporal_kernel, 7, 7), stride=(1, 2, 2),
                              padding=(temporal_kernel // 2, 3, 3), bias=False)
        self.bn = _bn(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.relu(self.bn(self.conv(x))))


class Bottleneck(nn.Module):
    """Residual bottleneck: ``(kt,1,1)`` -> ``(1,3,3)`` (spatial stride, dilation, groups) -> ``(1,1,1)``.

    The spatial stride sits on the 3x3 convolution and on the projection shortcut (PySlowFast's
    ``STRIDE_1X1=False``). ``[B, C_in, T, H, W]`` -> ``[B, C_out, T, H/stride, W/stride]``.
    """

    conv_bn_pairs = (("conv_a", "bn_a"), ("conv_b", "bn_b"), ("conv_c", "bn_c"),
                     ("shortcut_conv", "shortcut_bn"))

    def __init__(self, in_channels: int, inner_channels: int, out_channels: int, *,
                 temporal_kernel: int, spatial_stride: int = 1, dilation: int = 1, groups: int = 1):
        super().__init__()
        self.conv_a = nn.Conv3d(in_channels, inner_channels, (temporal_kernel, 1, 1),
                                padding=(temporal_kernel // 2, 0, 0), bias=False)
        self.bn_a = _bn(inner_channels)
        self.conv_b = nn.Conv3d(inner_channels, inner_channels, (1, 3, 3), stride=(1, spatial_stride, spatial_stride),
                                padding=(0, dilation, dilation), dilation=(1, dilation, dilation),
                                groups=groups, bias=False)
        self.bn_b = _bn(inner_channels)
        self.conv_c = nn.Conv3d(inner_channels, out_channels, 1, bias=False)
        self.bn_c = _bn(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut_conv: Optional[nn.Conv3d] = None
        self.shortcut_bn: Optional[nn.Module] = None
        if in_channels != out_channels or spatial_stride != 1:
            self.shortcut_conv = nn.Conv3d(in_channels, out_channels, 1, stride=(1, spatial_stride, spatial_stride),
                                           bias=False)
            self.shortcut_bn = _bn(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        if self.shortcut_conv is not None:
            identity = self.shortcut_bn(self.shortcut_conv(x))
        else:
            identity = x
        out = self.relu(self.bn_a(self.conv_a(x)))
        out = self.relu(self.bn_b(self.conv_b(out)))
        out = self.bn_c(self.conv_c(out))
        out += identity
        return self.relu(out)


class FastToSlowFusion(nn.Module):
    """Lateral connection: Conv ``(k,1,1)`` stride ``(alpha,1,1)`` on the fast pathway -> BN -> ReLU,
    concatenated after the slow channels.

    ``slow [B, Cs, T/alpha, H, W]``, ``fast [B, Cf, T, H, W]`` ->
    ``(slow' [B, Cs + ratio*Cf, T/alpha, H, W], fast)``.
    """

    conv_bn_pairs = (("conv", "bn"),)

    def __init__(self, fast_channels: int, *, channel_ratio: int, kernel_size: int, alpha: int):
        super().__init__()
        self.conv = nn.Conv3d(fast_channels, fast_channels * channel_ratio, (kernel_size, 1, 1),
                              stride=(alpha, 1, 1), padding=(kernel_size // 2, 0, 0), bias=False)
        self.bn = _bn(fast_channels * channel_ratio)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, slow: Tensor, fast: Tensor) -> Tuple[Tensor, Tensor]:
        lateral = self.relu(self.bn(self.conv(fast)))
        if lateral.shape[2] != slow.shape[2]:
            raise ValueError(f"fast pathway has {fast.shape[2]} frames, which the fusion turns into "
                             f"{lateral.shape[2]}, but the slow pathway has {slow.shape[2]}: "
                             "expected slow frames = ceil(fast frames / alpha)")
        return torch.cat([slow, lateral], dim=1), fast


class ResNetBackbone(Backbone):
    """Multi-pathway 3D ResNet: ``pathways`` parallel stems and stages with optional fusions; a
    :class:`~ava_detect.model.base.Backbone`.

    Args:
        stems: one :class:`Stem` per pathway.
        stages: four stages (res2..res5), each a list with one ``nn.Sequential`` of blocks per pathway.
        fusions: :class:`FastToSlowFusion` after stem, res2, res3, res4 (SlowFast), or empty (Slow-only).
        out_channels: channels of each pathway's res5 output.
        output_stride: spatial downsampling of res5 relative to the input (16 for AVA's recipe).
        input_spec: how a clip is packed into the pathways (SlowFast: ``InputSpec((alpha, 1))``).

    ``forward(inputs: List[Tensor[B,3,T_p,H,W]])`` -> ``List[Tensor[B, C_p, T_p, H/stride, W/stride]]``
    (slow first). Temporal size is kept everywhere.
    """

    def __init__(self, stems: Sequence[Stem], stages: Sequence[Sequence[nn.Sequential]],
                 fusions: Sequence[FastToSlowFusion], out_channels: Sequence[int], output_stride: int,
                 input_spec: InputSpec):
        if len(stems) != input_spec.num_pathways:
            raise ValueError(f"{len(stems)} stem(s) for an input spec of {input_spec.num_pathways} pathway(s)")
        super().__init__(input_spec=input_spec, out_channels=out_channels, output_stride=output_stride)
        self.stem = nn.ModuleList(stems)
        self.stages = nn.ModuleList(nn.ModuleList(s) for s in stages)
        self.fusions = nn.ModuleList(fusions)

    def forward(self, inputs: List[Tensor]) -> List[Tensor]:
        if len(inputs) != self.num_pathways:
            raise ValueError(f"expected {self.num_pathways} pathway tensor(s) (slow first), got {len(inputs)}")
        xs = [stem(x) for stem, x in zip(self.stem, inputs)]
        for i, stage in enumerate(self.stages):
            if i < len(self.fusions):  # fusion i follows the stem (i = 0) or res(i+1)
                xs[0], xs[1] = self.fusions[i](xs[0], xs[1])
            xs = [blocks(x) for blocks, x in zip(stage, xs)]
        return xs


def _stage_temporal_kernels(kernel: int, num_blocks: int, num_with_kernel: Optional[int]) -> List[int]:
    """PySlowFast's ``NUM_BLOCK_TEMP_KERNEL``: the first ``num_with_kernel`` blocks use ``kernel``, the rest 1."""
    n = num_blocks if num_with_kernel is None else min(num_with_kernel, num_blocks)
    return [kernel] * n + [1] * (num_blocks - n)


def _build_pathway_stage(in_channels: int, inner: int, out: int, *, num_blocks: int, temporal_kernels: List[int],
                         spatial_stride: int, dilation: int, groups: int,
                         non_local: Optional[Tuple[NonLocalLayout, int, int]] = None) -> nn.Sequential:
    """Blocks ``"0"``, ``"1"``, ...; with ``non_local = (layout, stage, pathway)``, a ``"nonlocal<b>"``
    module follows each block ``b`` that the layout names."""
    after = non_local[0].after(*non_local[1:]) if non_local else ()
    blocks = OrderedDict()
    for b in range(num_blocks):
        blocks[str(b)] = Bottleneck(in_channels if b == 0 else out, inner, out, temporal_kernel=temporal_kernels[b],
                                    spatial_stride=spatial_stride if b == 0 else 1, dilation=dilation, groups=groups)
        if b in after:
            blocks[f"nonlocal{b}"] = non_local[0].build(non_local[1], non_local[2], out)
    return nn.Sequential(blocks)


def _build(*, depth: int, width_per_group: int, num_groups: int, temporal_kernels: Sequence[Sequence[int]],
           beta_inv: Sequence[int], fusion: Optional[Tuple[int, int, int]], num_block_temp_kernel: Optional[Sequence[int]],
           res5_spatial_stride: int, res5_dilation: int, in_channels: int,
           non_local: Optional[NonLocalLayout] = None) -> ResNetBackbone:
    if depth not in STAGE_DEPTHS:
        raise ValueError(f"depth must be one of {sorted(STAGE_DEPTHS)}, got {depth}")
    for kernels in temporal_kernels:
        if len(kernels) != 5:
            raise ValueError(f"temporal kernels are given for stem, res2, res3, res4, res5 (5 values), got {list(kernels)}")
        if any(k < 1 or k % 2 == 0 for k in kernels):
            raise ValueError(f"temporal kernels must be odd and positive, got {list(kernels)}")
    if num_block_temp_kernel is not None and len(num_block_temp_kernel) != 4:
        raise ValueError(f"num_block_temp_kernel has one value per stage res2..res5, got {list(num_block_temp_kernel)}")
    depths = STAGE_DEPTHS[depth]
    num_paths = len(temporal_kernels)
    if non_local is not None:
        non_local.check(num_paths, depths)
    stem_out = [width_per_group // r for r in beta_inv]
    if min(stem_out) < 1:
        raise ValueError(f"width_per_group {width_per_group} is too small for channel ratio 1/{max(beta_inv)}")
    stems = [Stem(in_channels, stem_out[p], temporal_kernels[p][0]) for p in range(num_paths)]
    fusions: List[FastToSlowFusion] = []
    lateral = 0
    if fusion is not None:
        ratio, kernel, alpha = fusion
        fusions.append(FastToSlowFusion(stem_out[1], channel_ratio=ratio, kernel_size=kernel, alpha=alpha))
        lateral = stem_out[1] * ratio
    dims_in = [stem_out[0] + lateral] + stem_out[1:]
    strides = (1, 2, 2, res5_spatial_stride)
    dilations = (1, 1, 1, res5_dilation)
    stages = []
    for s in range(4):
        inner = [num_groups * width_per_group * 2 ** s // r for r in beta_inv]
        out = [width_per_group * 4 * 2 ** s // r for r in beta_inv]
        pathways = []
        for p in range(num_paths):
            kernels = _stage_temporal_kernels(temporal_kernels[p][s + 1], depths[s],
                                              None if num_block_temp_kernel is None else num_block_temp_kernel[s])
            pathways.append(_build_pathway_stage(dims_in[p], inner[p], out[p], num_blocks=depths[s],
                                                 temporal_kernels=kernels, spatial_stride=strides[s],
                                                 dilation=dilations[s], groups=num_groups,
                                                 non_local=(non_local, s, p) if non_local else None))
        stages.append(pathways)
        lateral = 0
        if fusion is not None and s < 3:
            fusions.append(FastToSlowFusion(out[1], channel_ratio=fusion[0], kernel_size=fusion[1], alpha=fusion[2]))
            lateral = out[1] * fusion[0]
        dims_in = [out[0] + lateral] + out[1:]
    input_spec = InputSpec((fusion[2], 1) if fusion is not None else (1,))  # fusion = (ratio, kernel, alpha)
    backbone = ResNetBackbone(stems, stages, fusions, out_channels=dims_in, output_stride=16 * res5_spatial_stride,
                              input_spec=input_spec)
    init_backbone_weights(backbone)
    return backbone


def init_backbone_weights(backbone: nn.Module, zero_init_final_bn: bool = True) -> None:
    """The reference initialisation: He-normal (fan_out) convolutions with zero biases, BN weight 1 /
    bias 0, and BN weight 0 at the end of each residual branch and of each non-local block
    (``zero_init_final_bn``, PySlowFast's ``transform_final_bn``) so blocks start as identities."""
    for m in backbone.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if zero_init_final_bn:
        for m in backbone.modules():
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn_c.weight)
            elif isinstance(m, NonLocalBlock):
                nn.init.zeros_(m.bn.weight)


def create_slowfast_resnet(
    *,
    depth: int = 50,
    alpha: int = 4,
    beta_inv: int = 8,
    fusion_channel_ratio: int = 2,
    fusion_kernel_size: int = 7,
    width_per_group: int = 64,
    num_groups: int = 1,
    slow_temporal_kernels: Sequence[int] = (1, 1, 1, 3, 3),
    fast_temporal_kernels: Sequence[int] = (5, 3, 3, 3, 3),
    num_block_temp_kernel: Optional[Sequence[int]] = None,
    res5_spatial_stride: int = 1,
    res5_dilation: int = 2,
    in_channels: int = 3,
    non_local: Optional[NonLocalLayout] = None,
) -> ResNetBackbone:
    """SlowFast ResNet backbone; the defaults are the paper's R50 recipe for AVA.

    Args:
        depth: 18, 50 or 101: bottleneck blocks per stage (2,2,2,2), (3,4,6,3) or (3,4,23,3) (18 is
            PySlowFast's shallow layout, with its bottleneck blocks; for small CPU runs).
        alpha: frame-rate ratio fast/slow; stride of the fusion convolutions in time.
        beta_inv: fast-pathway channels = slow channels / ``beta_inv`` (beta = 1/8).
        fusion_channel_ratio: the fusion conv outputs ``ratio x`` the fast channels.
        fusion_kernel_size: temporal kernel of the fusion conv (7 for R50, 5 for PySlowFast's R101).
        width_per_group: stem width of the slow pathway (64 = published models); all widths scale with it.
        num_groups: groups of the 3x3 convs (1 = ResNet).
        slow_temporal_kernels, fast_temporal_kernels: temporal kernel of the stem conv and of conv_a in
            res2, res3, res4, res5 (5 values per pathway).
        num_block_temp_kernel: per stage, how many leading blocks use the stage's temporal kernel (the
            rest use 1; PySlowFast's ``NUM_BLOCK_TEMP_KERNEL``); None = every block.
        res5_spatial_stride, res5_dilation: AVA uses 1 and 2 (output stride 16).
        in_channels: input channels (3, RGB).
        non_local: where to insert non-local blocks (:class:`NonLocalLayout`); None = nowhere.

    Returns:
        A backbone whose ``forward([slow [B,3,T/alpha,H,W], fast [B,3,T,H,W]])`` returns
        ``[slow [B, 32*w, T/alpha, H/16, W/16], fast [B, 32*w/beta_inv, T, H/16, W/16]]`` (``w = width_per_group``).
    """
    return _build(depth=depth, width_per_group=width_per_group, num_groups=num_groups,
                  temporal_kernels=[list(slow_temporal_kernels), list(fast_temporal_kernels)],
                  beta_inv=[1, beta_inv], fusion=(fusion_channel_ratio, fusion_kernel_size, alpha),
                  num_block_temp_kernel=num_block_temp_kernel, res5_spatial_stride=res5_spatial_stride,
                  res5_dilation=res5_dilation, in_channels=in_channels, non_local=non_local)


def create_slow_resnet(
    *,
    depth: int = 50,
    width_per_group: int = 64,
    num_groups: int = 1,
    temporal_kernels: Sequence[int] = (1, 1, 1, 3, 3),
    num_block_temp_kernel: Optional[Sequence[int]] = None,
    res5_spatial_stride: int = 1,
    res5_dilation: int = 2,
    in_channels: int = 3,
    non_local: Optional[NonLocalLayout] = None,
) -> ResNetBackbone:
    """Slow-only ResNet backbone (the slow pathway of SlowFast on its own); defaults = Slow R50 for AVA.

    Args: as :func:`create_slowfast_resnet`, with ``temporal_kernels`` for the stem and res2..res5.

    Returns:
        A backbone whose ``forward([x [B,3,T,H,W]])`` returns ``[[B, 32*w, T, H/16, W/16]]``.
    """
    return _build(depth=depth, width_per_group=width_per_group, num_groups=num_groups,
                  temporal_kernels=[list(temporal_kernels)], beta_inv=[1], fusion=None,
                  num_block_temp_kernel=num_block_temp_kernel, res5_spatial_stride=res5_spatial_stride,
                  res5_dilation=res5_dilation, in_channels=in_channels, non_local=non_local)
