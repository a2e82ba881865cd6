"""Builders, detector shapes and modes, presets, parameter counts, inference optimisation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from ava_detect.config import load_config
from ava_detect.errors import AvaDetectError
from ava_detect.model import (ActionDetector, build_model, create_slow_resnet, create_slowfast_resnet,
                              fold_batch_norm)
from ava_detect.model.backbone import Bottleneck

ROOT = Path(__file__).resolve().parent.parent


def tiny_cfg(*overrides: str):
    return load_config(ROOT / "configs/tiny.yaml", list(overrides))


def clip(batch: int, frames: int, h: int, w: int, alpha: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    fast = torch.randn(batch, 3, frames, h, w, generator=g)
    return [fast[:, :, torch.linspace(0, frames - 1, frames // alpha).long()], fast]


def random_bn_(model: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


def test_full_slowfast_r50_8x8_has_published_parameter_count():
    model = build_model(load_config(ROOT / "configs/ava/slowfast_r50_8x8.yaml"))
    assert sum(p.numel() for p in model.parameters()) == 33_828_888
    assert len(model.state_dict()) == 662
    assert model.head.aligned is False
    assert model.head.proj.in_features == 2304


@pytest.mark.parametrize("preset, aligned, pathways, depth", [
    ("slowfast_r50_8x8", False, 2, 50),
    ("slowfast_r50_32x2", True, 2, 50),
    ("slowfast_r101_32x2", False, 2, 101),
    ("slow_r50_4x16", False, 1, 50),
])
def test_presets_build_the_described_architectures(preset, aligned, pathways, depth):
    cfg = load_config(ROOT / f"configs/ava/{preset}.yaml", ["model.resnet.width_per_group=8"])
    model = build_model(cfg)
    assert model.head.aligned is aligned
    assert model.num_pathways == pathways
    assert len(model.backbone.stages[2][0]) == {50: 6, 101: 23}[depth]
    assert model.backbone.output_stride == 16
    assert model.head.spatial_scale == pytest.approx(1 / 16)


def test_depth_18_has_two_bottleneck_blocks_per_stage():
    model = build_model(tiny_cfg("model.resnet.depth=18"))
    assert [len(stage[0]) for stage in model.backbone.stages[:4]] == [2, 2, 2, 2]
    assert [len(stage[1]) for stage in model.backbone.stages[:4]] == [2, 2, 2, 2]
    x = [torch.randn(1, 3, 4, 64, 64), torch.randn(1, 3, 16, 64, 64)]
    probs = model.eval()(x, torch.tensor([[0.0, 8.0, 8.0, 40.0, 56.0]]))
    assert probs.shape == (1, 80)


def test_r101_temporal_kernels_follow_num_block_temp_kernel():
    backbone = create_slowfast_resnet(depth=101, width_per_group=8, fusion_kernel_size=5,
                                      num_block_temp_kernel=[3, 4, 6, 3])
    res4_slow = [b.conv_a.kernel_size[0] for b in backbone.stages[2][0]]
    res4_fast = [b.conv_a.kernel_size[0] for b in backbone.stages[2][1]]
    assert res4_slow == [3] * 6 + [1] * 17
    assert res4_fast == [3] * 6 + [1] * 17
    assert [b.conv_a.kernel_size[0] for b in backbone.stages[0][0]] == [1, 1, 1]
    assert backbone.fusions[0].conv.kernel_size == (5, 1, 1)
    assert backbone.fusions[0].conv.stride == (4, 1, 1)


def test_res5_is_dilated_with_stride_one():
    backbone = create_slowfast_resnet(width_per_group=8)
    first = backbone.stages[3][0][0]
    assert first.conv_b.stride == (1, 1, 1) and first.conv_b.dilation == (1, 2, 2) and first.conv_b.padding == (0, 2, 2)
    assert first.shortcut_conv is not None and first.shortcut_conv.stride == (1, 1, 1)
    res3 = backbone.stages[1][0][0]
    assert res3.conv_b.stride == (1, 2, 2) and res3.shortcut_conv.stride == (1, 2, 2)


@pytest.mark.parametrize("h, w", [(32, 32), (48, 80)])
def test_slowfast_backbone_output_shapes(h, w):
    backbone = create_slowfast_resnet(width_per_group=8).eval()
    with torch.no_grad():
        slow, fast = backbone(clip(2, 8, h, w))
    assert slow.shape == (2, 8 * 32, 2, h // 16, w // 16)
    assert fast.shape == (2, 8 * 32 // 8, 8, h // 16, w // 16)


def test_slow_only_backbone_output_shape():
    backbone = create_slow_resnet(width_per_group=8).eval()
    with torch.no_grad():
        (out,) = backbone([torch.randn(1, 3, 4, 32, 48)])
    assert out.shape == (1, 256, 4, 2, 3)


def test_detector_train_logits_eval_probabilities_and_zero_boxes():
    torch.manual_seed(0)
    model = build_model(tiny_cfg("model.dropout=0.0"))
    random_bn_(model)
    nn.init.normal_(model.head.proj.weight, std=0.5)
    inputs = clip(2, 16, 32, 48)
    rois = torch.tensor([[0, 1.0, 2.0, 30.0, 31.0], [1, 0.0, 0.0, 47.0, 31.0], [1, 10.0, 5.0, 12.0, 6.0]])
    model.eval()
    with torch.no_grad():
        probs = model(inputs, rois)
        assert probs.shape == (3, 80)
        assert float(probs.min()) >= 0.0 and float(probs.max()) <= 1.0
        empty = model(inputs, torch.zeros(0, 5))
        assert empty.shape == (0, 80)
        # train mode: logits; with BN in eval (frozen) and no dropout, sigmoid(logits) == probs
        model.train()
        for m in model.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.eval()
        logits = model(inputs, rois)
    torch.testing.assert_close(torch.sigmoid(logits), probs, rtol=0, atol=1e-6)
    assert float(logits.min()) < 0.0 or float(logits.max()) > 1.0  # not probabilities


def test_boxes_of_each_clip_only_see_that_clip():
    model = build_model(tiny_cfg()).eval()
    random_bn_(model)
    inputs = clip(2, 16, 32, 32)
    box = [2.0, 3.0, 25.0, 30.0]
    with torch.no_grad():
        both = model(inputs, torch.tensor([[0.0, *box], [1.0, *box]]))
        alone = model([x[1:] for x in inputs], torch.tensor([[0.0, *box]]))
    torch.testing.assert_close(both[1:], alone, rtol=0, atol=1e-5)
    assert (both[0] - both[1]).abs().max() > 1e-4


def test_wrong_number_of_pathways_is_a_clear_error():
    model = build_model(tiny_cfg()).eval()
    with pytest.raises(ValueError, match="2 pathway"):
        model([torch.randn(1, 3, 16, 32, 32)], torch.zeros(0, 5))
    with pytest.raises(ValueError, match=r"\[K,5\]"):
        model(clip(1, 16, 32, 32), torch.zeros(3, 4))


def test_bad_model_config_names_the_key():
    with pytest.raises(AvaDetectError, match="model.arch"):
        build_model(tiny_cfg("model.arch=x3d"))
    with pytest.raises(AvaDetectError, match="model.resnet.depth"):
        build_model(tiny_cfg("model.resnet.depth=34"))
    with pytest.raises(AvaDetectError, match="model.slowfast.fast_temporal_kernels"):
        build_model(tiny_cfg("model.slowfast.fast_temporal_kernels=[5,3,3]"))


def test_fold_batch_norm_keeps_outputs_and_removes_bn():
    torch.manual_seed(0)
    model = build_model(tiny_cfg())
    random_bn_(model, seed=3)
    for m in model.modules():  # undo zero-init so every branch contributes
        if isinstance(m, Bottleneck):
            nn.init.uniform_(m.bn_c.weight, 0.5, 1.5)
    model.eval()
    inputs = clip(1, 16, 32, 32)
    rois = torch.tensor([[0, 2.0, 2.0, 30.0, 28.0], [0, 0.0, 0.0, 31.0, 31.0]])
    with torch.no_grad():
        expected = model(inputs, rois)
    for channels_last in (False, True):
        fast = model.optimized_for_inference(channels_last=channels_last)
        assert not any(isinstance(m, nn.BatchNorm3d) for m in fast.modules())
        assert any(isinstance(m, nn.BatchNorm3d) for m in model.modules())  # original untouched
        with torch.inference_mode():
            got = fast(inputs, rois)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
        torch.testing.assert_close(fast.predict(inputs, rois), expected, rtol=0, atol=1e-5)
    with pytest.raises(RuntimeError, match="inference only"):
        fast.train()(inputs, rois)


def test_fold_batch_norm_counts_pairs():
    model = build_model(tiny_cfg())
    n_bn = sum(isinstance(m, nn.BatchNorm3d) for m in model.modules())
    assert fold_batch_norm(model.eval()) == n_bn == 110


def test_predict_bf16_is_close_to_fp32_and_restores_mode():
    torch.manual_seed(0)
    model = build_model(tiny_cfg())  # reference initialisation: activations of moderate size
    nn.init.normal_(model.head.proj.weight, std=0.3)
    model.train()
    inputs = clip(1, 16, 32, 32)
    rois = torch.tensor([[0, 2.0, 2.0, 30.0, 28.0], [0, 10.0, 0.0, 20.0, 31.0]])
    p32 = model.predict(inputs, rois)
    p16 = model.predict(inputs, rois, bf16=True)
    assert model.training
    assert p16.dtype == torch.float32 and p16.shape == (2, 80)
    assert p32.std() > 0.05  # not saturated, so the comparison means something
    assert (p16 - p32).abs().max() < 0.05


def test_build_model_returns_action_detector():
    assert isinstance(build_model(tiny_cfg()), ActionDetector)
