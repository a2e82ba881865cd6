"""Numerical equivalence with the reference implementations.

* PyTorchVideo 0.1.5 (test extra): its ``slowfast_r50_detection`` / ``slow_r50_detection`` with random
  weights and BN statistics, saved as ``.pyth`` and loaded into ours: eval outputs agree within 1e-5.
* The fixtures in ``../shared/fixtures/models`` (weights, inputs and outputs made by PySlowFast and by
  PyTorchVideo themselves): within the tolerances their READMEs state (probs 2e-5, logits and
  features 1e-4, ``rtol=0``).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.ops import roi_align

from ava_detect.config import load_config
from ava_detect.errors import AvaDetectError
from ava_detect.model import build_model, load_weights

from common import require_extra

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_TOL = dict(probs=2e-5, logits=1e-4, features=1e-4)


def fill_like_fixture_(model: nn.Module, seed: int = 0) -> None:
    """Random weights and BN statistics, as the fixtures were made (no zero-initialised BN)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv3d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.8 * math.sqrt(2 / fan_in))
            elif isinstance(m, nn.BatchNorm3d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            elif isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / math.sqrt(m.in_features))
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


BOXES_64 = torch.tensor([
    [0, 3.5, 5.25, 40.0, 60.0],
    [0, 0.0, 0.0, 63.0, 63.0],
    [1, 40.0, 0.0, 64.0, 20.0],
    [1, 30.3, 31.8, 31.9, 33.0],
    [1, 10.0, 12.0, 50.0, 40.0],
])


def test_matches_pytorchvideo_slowfast_r50_detection(tmp_path):
    hub = require_extra("pytorchvideo.models.hub")
    torch.manual_seed(0)
    reference = hub.slowfast_r50_detection(pretrained=False, stem_dim_outs=(8, 1))
    fill_like_fixture_(reference)
    reference.eval()
    path = tmp_path / "SLOWFAST_8x8_R50_DETECTION.pyth"
    torch.save({"model_state": reference.state_dict()}, path)

    ours = build_model(load_config(ROOT / "configs/ava/slowfast_r50_8x8.yaml", ["model.resnet.width_per_group=8"]))
    report = load_weights(ours, path)
    assert report.layout == "pytorchvideo_detection" and not report.missing and not report.skipped
    ours.eval()

    g = torch.Generator().manual_seed(1)
    fast = torch.randn(2, 3, 32, 64, 64, generator=g)
    slow = fast[:, :, torch.linspace(0, 31, 8).long()]
    with torch.no_grad():
        expected = reference([slow, fast], BOXES_64)  # it overwrites the list it is given
        got = ours([slow, fast], BOXES_64)
    assert got.shape == expected.shape == (5, 80)
    assert 0.05 < expected.std() < 0.5  # not saturated: the comparison means something
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    with torch.inference_mode():
        fast_model = ours.optimized_for_inference()
        torch.testing.assert_close(fast_model(list((slow, fast)), BOXES_64), expected, rtol=0, atol=1e-5)


def test_matches_pytorchvideo_slow_r50_detection(tmp_path):
    hub = require_extra("pytorchvideo.models.hub")
    torch.manual_seed(0)
    reference = hub.slow_r50_detection(pretrained=False, stem_dim_out=8)
    fill_like_fixture_(reference)
    reference.eval()
    path = tmp_path / "SLOW_4x16_R50_DETECTION.pyth"
    torch.save({"model_state": reference.state_dict()}, path)
    ours = build_model(load_config(ROOT / "configs/ava/slow_r50_4x16.yaml", ["model.resnet.width_per_group=8"]))
    load_weights(ours, path)
    ours.eval()
    x = torch.randn(2, 3, 4, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = reference(x, BOXES_64)
        got = ours([x], BOXES_64)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


FIXTURES = [
    # folder, width_per_group, aligned, state-dict name of the head's linear layer
    ("pyslowfast_slowfast_r50_w8", 8, True, "head.projection"),
    ("pytorchvideo_slowfast_r50_detection_w16", 16, False, "detection_head.proj"),
]


@pytest.mark.parametrize("folder, width, aligned, proj", FIXTURES)
def test_matches_reference_fixture(shared, folder, width, aligned, proj):
    d = shared(f"fixtures/models/{folder}")
    inp = torch.load(d / "inputs.pt", weights_only=True)
    exp = torch.load(d / "expected.pt", weights_only=True)
    preset = "slowfast_r50_32x2" if aligned else "slowfast_r50_8x8"
    model = build_model(load_config(ROOT / f"configs/ava/{preset}.yaml", [f"model.resnet.width_per_group={width}"]))
    report = load_weights(model, d / "checkpoint.pyth")
    assert len(report.loaded) == 662 and not report.missing and not report.skipped
    model.eval()
    inputs, boxes = [inp["slow"], inp["fast"]], inp["boxes"]
    with torch.no_grad():
        feats = model.backbone(inputs)
        head_features = model.head.box_features(feats, boxes)
        logits = model.head.proj(head_features)
        probs = model(inputs, boxes)
    assert list(feats[0].shape) == list(exp["slow_res5_shape"])
    assert list(feats[1].shape) == list(exp["fast_res5_shape"])
    for i, p in enumerate(("slow", "fast")):
        torch.testing.assert_close(feats[i].mean(2), exp[f"{p}_res5_tpool"], rtol=0, atol=FIXTURE_TOL["features"])
    torch.testing.assert_close(head_features, exp["head_features"], rtol=0, atol=FIXTURE_TOL["features"])
    torch.testing.assert_close(logits, exp["logits"], rtol=0, atol=FIXTURE_TOL["logits"])
    torch.testing.assert_close(probs, exp["probs"], rtol=0, atol=FIXTURE_TOL["probs"])

    # The inference-optimised copy (BN folded, channels-last) reproduces the reference too.
    fast_model = model.optimized_for_inference()
    fast_probs = fast_model.predict(inputs, boxes)
    torch.testing.assert_close(fast_probs, exp["probs"], rtol=0, atol=FIXTURE_TOL["probs"])
    # bf16 autocast: close, not exact.
    bf16_probs = fast_model.predict(inputs, boxes, bf16=True)
    assert (bf16_probs - exp["probs"]).abs().max() < 0.05


@pytest.mark.parametrize("folder, width, aligned, proj", FIXTURES)
def test_fixture_head_alone_and_aligned_flag_matters(shared, folder, width, aligned, proj):
    """Our head on the fixture's res5 maps gives its logits, and only with the right ``aligned`` flag."""
    d = shared(f"fixtures/models/{folder}")
    inp = torch.load(d / "inputs.pt", weights_only=True)
    exp = torch.load(d / "expected.pt", weights_only=True)
    state = torch.load(d / "checkpoint.pyth", weights_only=True)["model_state"]
    from ava_detect.model.head import RoIActionHead

    for flag in (aligned, not aligned):
        head = RoIActionHead(state[f"{proj}.weight"].shape[1], 80, aligned=flag).eval()
        head.proj.load_state_dict({"weight": state[f"{proj}.weight"], "bias": state[f"{proj}.bias"]})
        maps = [exp["slow_res5_tpool"].unsqueeze(2), exp["fast_res5_tpool"].unsqueeze(2)]
        with torch.no_grad():
            logits = head(maps, inp["boxes"])
        if flag == aligned:
            torch.testing.assert_close(logits, exp["logits"], rtol=0, atol=FIXTURE_TOL["logits"])
        else:
            assert (logits - exp["logits"]).abs().max() > 1e-2
    # and torchvision's roi_align is what the fixture's README describes
    ref = roi_align(exp["slow_res5_tpool"], inp["boxes"], (7, 7), 1 / 16, 0, aligned=aligned).amax(dim=(2, 3))
    c = exp["slow_res5_tpool"].shape[1]
    torch.testing.assert_close(ref, exp["head_features"][:, :c], rtol=0, atol=FIXTURE_TOL["features"])


NL_FIXTURE = "fixtures/models/pyslowfast_slowfast_r101_nonlocal_w8"
#: bf16 autocast against the fp32 reference (measured 6e-3 on this fixture).
NL_BF16_TOL = 0.02


def _nl_outputs(model, inp):
    inputs, boxes = [inp["slow"], inp["fast"]], inp["boxes"]
    with torch.no_grad():
        feats = model.backbone(inputs)
        head_features = model.head.box_features(feats, boxes)
        return feats, head_features, model.head.proj(head_features), model(inputs, boxes)


def test_matches_pyslowfast_r101_non_local_fixture(shared):
    """PySlowFast's SLOWFAST_32x2_R101_50_50 (non-local blocks after res4 blocks 6, 13, 20) at width 8."""
    d = shared(NL_FIXTURE)
    inp = torch.load(d / "inputs.pt", weights_only=True)
    exp = torch.load(d / "expected.pt", weights_only=True)
    model = build_model(load_config(ROOT / "configs/ava/slowfast_r101_8x8_nonlocal.yaml", ["model.resnet.width_per_group=8"]))
    report = load_weights(model, d / "checkpoint.pyth")
    assert len(model.state_dict()) == 1313
    assert len(report.loaded) == 1313 and not report.missing and not report.skipped and not report.notes
    model.eval()
    feats, head_features, logits, probs = _nl_outputs(model, inp)
    assert list(feats[0].shape) == list(exp["slow_res5_shape"]) and list(feats[1].shape) == list(exp["fast_res5_shape"])
    for i, p in enumerate(("slow", "fast")):
        torch.testing.assert_close(feats[i].mean(2), exp[f"{p}_res5_tpool"], rtol=0, atol=FIXTURE_TOL["features"])
    torch.testing.assert_close(head_features, exp["head_features"], rtol=0, atol=FIXTURE_TOL["features"])
    torch.testing.assert_close(logits, exp["logits"], rtol=0, atol=FIXTURE_TOL["logits"])
    torch.testing.assert_close(probs, exp["probs"], rtol=0, atol=FIXTURE_TOL["probs"])

    inputs, boxes = [inp["slow"], inp["fast"]], inp["boxes"]
    fast_model = model.optimized_for_inference()  # BN folded (also the non-local blocks' conv_out + bn), channels-last
    assert sum(isinstance(m, nn.Identity) for m in fast_model.backbone.modules()) >= 3
    torch.testing.assert_close(fast_model.predict(inputs, boxes), exp["probs"], rtol=0, atol=FIXTURE_TOL["probs"])
    assert (fast_model.predict(inputs, boxes, bf16=True) - exp["probs"]).abs().max() < NL_BF16_TOL


def test_r101_fixture_fails_without_its_non_local_blocks(shared):
    """The same weights in the R101 preset without non-local blocks: the blocks' 39 entries are left out
    (only with strict=False) and the probabilities move far outside the tolerance."""
    d = shared(NL_FIXTURE)
    inp = torch.load(d / "inputs.pt", weights_only=True)
    exp = torch.load(d / "expected.pt", weights_only=True)
    model = build_model(load_config(ROOT / "configs/ava/slowfast_r101_32x2.yaml", ["model.resnet.width_per_group=8"]))
    with pytest.raises(AvaDetectError, match="no place in the model: 's4.pathway0_nonlocal6.conv_theta.weight'"):
        load_weights(model, d / "checkpoint.pyth")
    report = load_weights(model, d / "checkpoint.pyth", strict=False)
    assert len(report.skipped) == 39 and all("_nonlocal" in k for k, _ in report.skipped)
    assert len(report.loaded) == 1313 - 39 and not report.missing
    probs = _nl_outputs(model.eval(), inp)[3]
    assert (probs - exp["probs"]).abs().max() > 0.1  # the fixture's README: up to 0.38
