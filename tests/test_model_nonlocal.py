"""Non-local blocks: the block's arithmetic, groups and pooling, initialisation, folding, where the
builder puts them, the config section and the R101 non-local presets."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from ava_detect.config import load_config
from ava_detect.errors import AvaDetectError
from ava_detect.model import build_model
from ava_detect.model.backbone import Bottleneck, create_slowfast_resnet
from ava_detect.model.nonlocal_block import NonLocalBlock, NonLocalLayout
from ava_detect.model.optimize import fold_batch_norm

ROOT = Path(__file__).resolve().parent.parent
R101_NL = NonLocalLayout(locations=(((), ()), ((), ()), ((6, 13, 20), ()), ((), ())),
                         pool_sizes=(((2, 2, 2), (2, 2, 2)),) * 4, instantiation="dot_product")
NL_OVERRIDES = ["model.resnet.depth=101", "model.slowfast.fusion_kernel_size=5", "model.resnet.num_block_temp_kernel=[3,4,6,3]",
                "model.resnet.non_local.locations=[[[],[]],[[],[]],[[6,13,20],[]],[[],[]]]",
                "model.resnet.non_local.pool_size=[[[2,2,2],[2,2,2]],[[2,2,2],[2,2,2]],[[2,2,2],[2,2,2]],[[2,2,2],[2,2,2]]]",
                "model.resnet.non_local.instantiation=dot_product"]


def random_block(instantiation: str, pool=(1, 1, 1), group: int = 1, seed: int = 0) -> NonLocalBlock:
    g = torch.Generator().manual_seed(seed)
    block = NonLocalBlock(6, 3, pool_size=pool, instantiation=instantiation, group=group)
    with torch.no_grad():
        for t in block.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g) + 0.5 if t.dim() == 1 else torch.randn(t.shape, generator=g) * 0.4)
    return block.eval()


def reference_non_local(block: NonLocalBlock, x: torch.Tensor) -> torch.Tensor:
    """The paper's formula written position by position with einsum (float64)."""
    x = x.double()
    conv = lambda c, t: torch.einsum("oc,nc...->no...", c.weight.double()[:, :, 0, 0, 0], t) \
        + c.bias.double().view(1, -1, 1, 1, 1)  # noqa: E731
    kv = x if block.pool is None else nn.functional.max_pool3d(x, block.pool.kernel_size, block.pool.stride)
    theta, phi, g = conv(block.conv_theta, x), conv(block.conv_phi, kv), conv(block.conv_g, kv)
    n, ci = theta.shape[:2]
    f = torch.einsum("nci,ncj->nij", theta.reshape(n, ci, -1), phi.reshape(n, ci, -1))
    if block.instantiation == "softmax":
        f = torch.softmax(f / ci ** 0.5, dim=2)
    else:
        f = f / f.shape[2]
    y = torch.einsum("nij,ncj->nci", f, g.reshape(n, ci, -1)).reshape(theta.shape)
    z = conv(block.conv_out, y)
    bn = block.bn
    z = (z - bn.running_mean.double().view(1, -1, 1, 1, 1)) / torch.sqrt(bn.running_var.double().view(1, -1, 1, 1, 1) + bn.eps)
    z = z * bn.weight.double().view(1, -1, 1, 1, 1) + bn.bias.double().view(1, -1, 1, 1, 1)
    return (x + z).float()


@pytest.mark.parametrize("instantiation", ["dot_product", "softmax"])
@pytest.mark.parametrize("pool", [(1, 1, 1), (2, 2, 2), (1, 2, 2)])
def test_block_computes_the_non_local_operation(instantiation, pool):
    block = random_block(instantiation, pool)
    x = torch.randn(2, 6, 4, 6, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = block(x)
    assert out.shape == x.shape
    torch.testing.assert_close(out, reference_non_local(block, x), rtol=0, atol=2e-5)
    assert (out - x).abs().max() > 0.1  # the block does something


def test_group_attends_within_runs_of_consecutive_frames():
    grouped = random_block("softmax", (1, 2, 2), group=2)
    x = torch.randn(2, 6, 4, 6, 6, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = grouped(x)
        grouped.group = 1
        halves = torch.cat([grouped(x[:, :, :2]), grouped(x[:, :, 2:])], dim=2)
        whole = grouped(x)
    torch.testing.assert_close(out, halves, rtol=0, atol=1e-6)
    assert (out - whole).abs().max() > 1e-3
    grouped.group = 3
    with pytest.raises(ValueError, match="group 3 does not divide the 4 frames"):
        grouped(x)


def test_bn_folding_keeps_the_output():
    block = random_block("dot_product", (2, 2, 2))
    x = torch.randn(1, 6, 4, 6, 6)
    with torch.no_grad():
        before = block(x)
        assert fold_batch_norm(block) == 1 and isinstance(block.bn, nn.Identity)
        torch.testing.assert_close(block(x), before, rtol=0, atol=1e-5)


def test_builder_inserts_blocks_after_the_named_residual_blocks():
    backbone = create_slowfast_resnet(depth=101, width_per_group=8, fusion_kernel_size=5,
                                      num_block_temp_kernel=[3, 4, 6, 3], non_local=R101_NL)
    slow_res4 = backbone.stages[2][0]
    names = [name for name, _ in slow_res4.named_children()]
    assert names[:9] == ["0", "1", "2", "3", "4", "5", "6", "nonlocal6", "7"]
    assert [n for n in names if n.startswith("nonlocal")] == ["nonlocal6", "nonlocal13", "nonlocal20"]
    assert sum(isinstance(m, Bottleneck) for m in slow_res4) == 23
    assert not any(isinstance(m, NonLocalBlock) for m in backbone.stages[2][1])
    nl = slow_res4.nonlocal13
    assert (nl.conv_theta.in_channels, nl.conv_theta.out_channels) == (128, 64)  # dim 4 * 32, dim_inner = dim / 2
    assert nl.pool.kernel_size == (2, 2, 2) and nl.instantiation == "dot_product"
    state = backbone.state_dict()
    assert "stages.2.0.nonlocal6.conv_theta.bias" in state and "stages.2.0.7.conv_a.weight" in state
    # Initialisation as PySlowFast's init_weights: He-normal convs with zero biases, and the block's BN
    # scale zero so that the block starts as the identity (ZERO_INIT_FINAL_BN).
    assert torch.all(nl.bn.weight == 0) and torch.all(nl.conv_g.bias == 0) and nl.conv_g.weight.std() > 0
    x = torch.randn(1, 128, 4, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(nl.eval()(x), x)
    fast = torch.randn(1, 3, 16, 64, 64)
    with torch.no_grad():
        out = backbone.eval()([fast[:, :, ::4], fast])
    assert [tuple(o.shape) for o in out] == [(1, 256, 4, 4, 4), (1, 32, 16, 4, 4)]
    with pytest.raises(ValueError, match=r"location \[23\] of res4 pathway 0: that stage has blocks 0..22"):
        create_slowfast_resnet(depth=101, width_per_group=8, non_local=NonLocalLayout((((), ()), ((), ()), ((23,), ()), ((), ()))))


def test_config_section_builds_the_same_layout():
    model = build_model(load_config(ROOT / "configs/tiny.yaml", NL_OVERRIDES))
    names = [n for n, m in model.backbone.named_modules() if isinstance(m, NonLocalBlock)]
    assert names == ["stages.2.0.nonlocal6", "stages.2.0.nonlocal13", "stages.2.0.nonlocal20"]
    assert model.backbone.stages[2][0].nonlocal6.pool.kernel_size == (2, 2, 2)
    assert not any(isinstance(m, NonLocalBlock) for m in build_model(load_config(ROOT / "configs/tiny.yaml")).modules())


@pytest.mark.parametrize("override, match", [
    ("model.resnet.non_local.locations=[[[],[]],[[],[]],[[6,23],[]],[[],[]]]", r"location \[23\] of res4.*blocks 0..22"),
    ("model.resnet.non_local.locations=[[[]],[[]],[[6]],[[]]]", "4 stages .* x 2 pathway"),
    ("model.resnet.non_local.instantiation=gaussian", "instantiation must be one of"),
    ("model.resnet.non_local.group=[[1,1],[1,1],[0,1],[1,1]]", "groups must be positive"),
])
def test_bad_non_local_settings_are_config_errors(override, match):
    cfg = load_config(ROOT / "configs/tiny.yaml", NL_OVERRIDES + [override])
    with pytest.raises(AvaDetectError, match=f"model.resnet.non_local.*{match}"):
        build_model(cfg)


def test_non_local_presets_carry_pyslowfast_values():
    cfg8 = load_config(ROOT / "configs/ava/slowfast_r101_8x8_nonlocal.yaml")
    cfg16 = load_config(ROOT / "configs/ava/slowfast_r101_16x8_nonlocal.yaml")
    for cfg in (cfg8, cfg16):
        m, r, sf = cfg.model, cfg.model.resnet, cfg.model.slowfast
        assert (r.depth, sf.fusion_kernel_size, sf.alpha, sf.beta_inv, sf.fusion_channel_ratio) == (101, 5, 4, 8, 2)
        assert r.num_block_temp_kernel == [3, 4, 6, 3] and r.res5_dilation == 2 and r.res5_spatial_stride == 1
        assert m.roi_aligned is False and m.sampling_rate == 2
        assert r.non_local.locations == [[[], []], [[], []], [[6, 13, 20], []], [[], []]]
        assert r.non_local.pool_size == [[[2, 2, 2]] * 2] * 4 and r.non_local.group == [[1, 1]] * 4
        assert r.non_local.instantiation == "dot_product"
        assert cfg.data.test_short_side == 256 and cfg.data.test_box_threshold == 0.8
    assert cfg8.model.num_frames == 32 and cfg16.model.num_frames == 64


def test_full_size_non_local_models_have_pyslowfast_parameter_count():
    """59,342,488 parameters as PySlowFast builds SLOWFAST_32x2_R101_50_50 / 64x2 (a few seconds each on CPU)."""
    for preset in ("slowfast_r101_8x8_nonlocal", "slowfast_r101_16x8_nonlocal"):
        model = build_model(load_config(ROOT / f"configs/ava/{preset}.yaml"))
        assert sum(p.numel() for p in model.parameters()) == 59_342_488, preset
        assert len(model.state_dict()) == 1313
        assert sum(isinstance(m, NonLocalBlock) for m in model.modules()) == 3
