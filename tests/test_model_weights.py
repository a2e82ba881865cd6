"""Weight loading: layout detection, converters, reports, errors, safe unpickling, our own format."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ava_detect.config import config_to_dict, load_config
from ava_detect.errors import AvaDetectError
from ava_detect.model import build_model, load_weights, read_checkpoint, save_checkpoint
from ava_detect.model.weights import caffe2_to_pyslowfast_name
from ava_detect.model.nonlocal_names import caffe2_nonlocal_to_pyslowfast

from common import require_extra

ROOT = Path(__file__).resolve().parent.parent


def tiny(*overrides: str):
    return build_model(load_config(ROOT / "configs/tiny.yaml", list(overrides)))


def randomized(model: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g) + 0.5 if "var" in name else torch.randn(t.shape, generator=g))
    return model


def assert_same_weights(a: nn.Module, b: nn.Module, skip_prefix: str = "\0") -> None:
    sa, sb = a.state_dict(), b.state_dict()
    for k in sa:
        if not k.startswith(skip_prefix) and not k.endswith("num_batches_tracked"):
            assert torch.equal(sa[k], sb[k]), k


# ---- inverse name maps, written independently of the converters under test -------------------

def ours_to_pyslowfast(key: str) -> str:
    m = re.match(r"backbone\.stages\.(\d)\.(\d)\.nonlocal(\d+)\.(\w+)\.(\w+)$", key)
    if m:
        return f"s{int(m[1]) + 2}.pathway{m[2]}_nonlocal{m[3]}.{m[4]}.{m[5]}"
    m = re.match(r"backbone\.stem\.(\d)\.(conv|bn)\.(\w+)$", key)
    if m:
        return f"s1.pathway{m[1]}_stem.{m[2]}.{m[3]}"
    m = re.match(r"backbone\.fusions\.(\d)\.(conv|bn)\.(\w+)$", key)
    if m:
        return f"s{int(m[1]) + 1}_fuse.{'conv_f2s' if m[2] == 'conv' else 'bn'}.{m[3]}"
    m = re.match(r"backbone\.stages\.(\d)\.(\d)\.(\d+)\.(\w+)\.(\w+)$", key)
    if m:
        part = {"shortcut_conv": "branch1", "shortcut_bn": "branch1_bn", "conv_a": "branch2.a", "bn_a": "branch2.a_bn",
                "conv_b": "branch2.b", "bn_b": "branch2.b_bn", "conv_c": "branch2.c", "bn_c": "branch2.c_bn"}[m[4]]
        return f"s{int(m[1]) + 2}.pathway{m[2]}_res{m[3]}.{part}.{m[5]}"
    assert key.startswith("head.proj."), key
    return key.replace("head.proj.", "head.projection.")


def pyslowfast_to_caffe2(key: str, last_block: dict) -> str:
    """The Caffe2 blob names of PySlowFast's c2 model zoo files."""
    suffix = {"weight": "w", "bias": "b"}
    bn_suffix = {"weight": "s", "bias": "b", "running_mean": "rm", "running_var": "riv"}
    m = re.match(r"s1\.pathway(\d)_stem\.(conv|bn)\.(\w+)$", key)
    t = lambda p: "t_" if p == "1" else ""  # noqa: E731
    # non-local blocks: prefix "nonlocal_conv<stage>_<block>" of the Caffe2 non-local code, then
    # "_theta" / "_phi" / "_g" / "_out" (conv blobs _w, _b) or "_bn" (_s, _b, _rm, _riv)
    nl = re.match(r"s(\d)\.pathway0_nonlocal(\d+)\.(conv_theta|conv_phi|conv_g|conv_out|bn)\.(\w+)$", key)
    if nl:
        part = nl[3].replace("conv_", "")
        return f"nonlocal_conv{nl[1]}_{nl[2]}_{part}_" + (bn_suffix[nl[4]] if part == "bn" else suffix[nl[4]])
    if m:
        return (f"{t(m[1])}conv1_{suffix[m[3]]}" if m[2] == "conv" else f"{t(m[1])}res_conv1_bn_{bn_suffix[m[3]]}")
    m = re.match(r"s(\d)_fuse\.(conv_f2s|bn)\.(\w+)$", key)
    if m:
        base = "t_pool1_subsample" if m[1] == "1" else f"t_res{m[1]}_{last_block[m[1]]}_branch2c_bn_subsample"
        return f"{base}_{suffix[m[3]]}" if m[2] == "conv_f2s" else f"{base}_bn_{bn_suffix[m[3]]}"
    m = re.match(r"s(\d)\.pathway(\d)_res(\d+)\.branch1(_bn)?\.(\w+)$", key)
    if m:
        return (f"{t(m[2])}res{m[1]}_{m[3]}_branch1_" + (f"bn_{bn_suffix[m[5]]}" if m[4] else suffix[m[5]]))
    m = re.match(r"s(\d)\.pathway(\d)_res(\d+)\.branch2\.([abc])(_bn)?\.(\w+)$", key)
    if m:
        return (f"{t(m[2])}res{m[1]}_{m[3]}_branch2{m[4]}_" + (f"bn_{bn_suffix[m[6]]}" if m[5] else suffix[m[6]]))
    m = re.match(r"head\.projection\.(\w+)$", key)
    return f"pred_{suffix[m[1]]}"


def pyslowfast_state(model: nn.Module) -> dict:
    return {ours_to_pyslowfast(k): v.clone() for k, v in model.state_dict().items()}


# ---- layouts ------------------------------------------------------------------------------------

def test_own_checkpoint_round_trip(tmp_path):
    source = randomized(tiny())
    cfg = load_config(ROOT / "configs/tiny.yaml")
    opt = torch.optim.SGD(source.parameters(), lr=0.1, momentum=0.9)
    path = tmp_path / "run" / "checkpoint_epoch1.pt"
    save_checkpoint(path, model=source, optimizer=opt, epoch=1, iteration=10, rng=torch.get_rng_state(),
                    config=config_to_dict(cfg))
    assert not [p for p in path.parent.iterdir() if p.name != path.name]  # no temp file left
    data = read_checkpoint(path)
    assert set(data) == {"model", "optimizer", "epoch", "iteration", "rng", "config"}
    target = tiny()
    report = load_weights(target, path)
    assert report.layout == "ava_detect" and not report.missing and not report.skipped
    assert len(report.loaded) == len(source.state_dict())
    assert_same_weights(source, target)
    assert "loaded: " in report.summary()


def test_save_checkpoint_refuses_unreadable_parts(tmp_path):
    with pytest.raises(TypeError, match="numpy"):
        save_checkpoint(tmp_path / "c.pt", model=tiny(), rng={"numpy": np.random.get_state()})
    with pytest.raises(TypeError, match="unknown checkpoint part"):
        save_checkpoint(tmp_path / "c.pt", model=tiny(), weights=1)
    assert not (tmp_path / "c.pt").exists()


def test_pyslowfast_layout_loads_every_tensor(tmp_path):
    source = randomized(tiny())
    path = tmp_path / "pyslowfast.pyth"
    torch.save({"model_state": pyslowfast_state(source), "epoch": 3, "cfg": "DETECTION:\n  ENABLE: true\n"}, path)
    target = tiny()
    report = load_weights(target, path)
    assert report.layout == "pyslowfast" and not report.skipped and not report.missing
    assert_same_weights(source, target)


def test_pyslowfast_caffe2_pickle_is_converted(tmp_path):
    source = randomized(tiny())
    last_block = {"2": 2, "3": 3, "4": 5}
    state = {k: v for k, v in pyslowfast_state(source).items() if not k.endswith("num_batches_tracked")}
    blobs = {pyslowfast_to_caffe2(k, last_block): v.numpy().copy() for k, v in state.items()}
    # PySlowFast's renaming rules turn every Caffe2 name back into the PySlowFast name
    for k in state:
        assert caffe2_to_pyslowfast_name(pyslowfast_to_caffe2(k, last_block)) == k
    assert "t_res3_3_branch2c_bn_subsample_bn_riv" in blobs and "res4_0_branch1_bn_s" in blobs
    blobs["conv1_w_momentum"] = np.zeros(3, dtype=np.float32)
    blobs["model_iter"] = np.array([100])
    path = tmp_path / "SLOWFAST_8x8_R50.pkl"
    with open(path, "wb") as f:
        pickle.dump({"blobs": blobs}, f, protocol=2)
    target = tiny()
    report = load_weights(target, path)
    assert report.layout == "pyslowfast_caffe2"
    assert {k for k, _ in report.skipped} == {"conv1_w_momentum", "model_iter"}
    assert not report.missing
    assert_same_weights(source, target)


def test_kinetics_pyslowfast_backbone_drops_classification_head(tmp_path):
    source = randomized(tiny())
    state = pyslowfast_state(source)
    state["head.projection.weight"] = torch.randn(400, state["head.projection.weight"].shape[1])
    state["head.projection.bias"] = torch.randn(400)
    path = tmp_path / "kinetics.pyth"
    torch.save({"model_state": state}, path)
    target = tiny()
    report = load_weights(target, path)
    assert report.head_initialised
    assert {k for k, _ in report.skipped} == {"head.projection.weight", "head.projection.bias"}
    assert all("classification head (400 classes" in r for _, r in report.skipped)
    assert_same_weights(source, target, skip_prefix="head.")
    assert float(target.head.proj.weight.detach().std()) < 0.02 and float(target.head.proj.bias.detach().abs().max()) == 0.0
    assert "freshly initialised" in report.summary()
    # a file that says it is a detection model with another class count is an error, not a skip
    torch.save({"model_state": state, "cfg": "DETECTION:\n  ENABLE: True\n  ALIGNED: True\n"}, path)
    with pytest.raises(AvaDetectError, match="head shape mismatch"):
        load_weights(tiny(), path)


def test_kinetics_pytorchvideo_backbone(tmp_path):
    models = require_extra("pytorchvideo.models.slowfast")
    torch.manual_seed(0)
    kinetics = models.create_slowfast(stem_dim_outs=(8, 1), model_num_class=400)
    randomized(kinetics)
    path = tmp_path / "SLOWFAST_8x8_R50.pyth"
    torch.save({"model_state": kinetics.state_dict()}, path)
    target = tiny()
    report = load_weights(target, path)
    assert report.layout == "pytorchvideo_classification" and report.head_initialised
    assert sorted(k for k, _ in report.skipped) == ["blocks.6.proj.bias", "blocks.6.proj.weight"]
    assert sorted(report.missing) == ["head.proj.bias", "head.proj.weight"]
    w = kinetics.state_dict()["blocks.1.multipathway_blocks.1.res_blocks.0.branch2.conv_a.weight"]
    assert torch.equal(target.backbone.stages[0][1][0].conv_a.weight, w)
    w = kinetics.state_dict()["blocks.3.multipathway_fusion.conv_fast_to_slow.weight"]
    assert torch.equal(target.backbone.fusions[3].conv.weight, w)


def test_head_skip_and_load_options(tmp_path):
    source = randomized(tiny())
    path = tmp_path / "ours.pt"
    save_checkpoint(path, model=source)
    target = tiny("model.num_classes=10")
    with pytest.raises(AvaDetectError, match="head shape mismatch"):
        load_weights(target, path)
    report = load_weights(target, path, head="skip")
    assert report.head_initialised and target.head.proj.out_features == 10
    assert_same_weights(source, target, skip_prefix="head.")
    backbone_only = tmp_path / "backbone.pt"
    torch.save({k: v for k, v in source.state_dict().items() if k.startswith("backbone.")}, backbone_only)
    with pytest.raises(AvaDetectError, match="expected a detection head"):
        load_weights(tiny(), backbone_only, head="load")


def test_aligned_mismatch_is_reported(tmp_path, caplog):
    source = randomized(tiny())
    path = tmp_path / "pyslowfast.pyth"
    torch.save({"model_state": pyslowfast_state(source), "cfg": "DETECTION:\n  ENABLE: True\n  ALIGNED: False\n"}, path)
    report = load_weights(tiny("model.roi_aligned=true"), path)
    assert any("aligned=False" in n for n in report.notes)
    assert "aligned=False" in caplog.text


# ---- errors -------------------------------------------------------------------------------------

def test_shape_mismatch_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "wide.pyth"
    torch.save({"model_state": pyslowfast_state(tiny("model.resnet.width_per_group=16"))}, path)
    with pytest.raises(AvaDetectError) as e:
        load_weights(tiny(), path)
    msg = str(e.value)
    assert msg.startswith(str(path)) and "shape mismatch" in msg and "s1.pathway0_stem.conv.weight" in msg


def test_wrong_architecture_is_an_error(tmp_path):
    path = tmp_path / "slowfast.pt"
    save_checkpoint(path, model=tiny())
    slow_only = build_model(load_config(ROOT / "configs/ava/slow_r50_4x16.yaml", ["model.resnet.width_per_group=8"]))
    with pytest.raises(AvaDetectError, match="no place in the model"):
        load_weights(slow_only, path)


def test_missing_backbone_tensors_are_an_error(tmp_path):
    state = pyslowfast_state(tiny())
    del state["s2.pathway0_res0.branch2.a.weight"]
    path = tmp_path / "partial.pyth"
    torch.save({"model_state": state}, path)
    with pytest.raises(AvaDetectError, match="lacks 1 tensors.*backbone.stages.0.0.0.conv_a.weight"):
        load_weights(tiny(), path)


def test_non_local_blocks_the_model_lacks_are_named(tmp_path):
    state = pyslowfast_state(tiny())
    state["s4.pathway0_nonlocal3.conv_theta.weight"] = torch.zeros(64, 128, 1, 1, 1)
    path = tmp_path / "nl.pyth"
    torch.save({"model_state": state}, path)
    with pytest.raises(AvaDetectError, match="no place in the model: 's4.pathway0_nonlocal3.conv_theta.weight'.*"
                                             "non-local blocks after res4 block.s. 3 of pathway 0; model: .*no non-local"):
        load_weights(tiny(), path)
    report = load_weights(tiny(), path, strict=False)
    assert ("s4.pathway0_nonlocal3.conv_theta.weight", "not in this model") in report.skipped
    assert not report.missing


# ---- non-local blocks -----------------------------------------------------------------------------

# Tiny R50 with non-local blocks in both pathways (PySlowFast names allow any pathway; Caffe2 files
# have them in the slow pathway only).
NL_TINY = ["model.resnet.non_local.locations=[[[],[]],[[1],[]],[[3],[2]],[[],[]]]", "model.resnet.non_local.group=[[1,1],[1,1],[2,1],[1,1]]",
           "model.resnet.non_local.pool_size=[[[1,1,1],[1,1,1]],[[1,2,2],[1,2,2]],[[2,2,2],[2,2,2]],[[1,1,1],[1,1,1]]]"]
NL_TINY_SLOW = ["model.resnet.non_local.locations=[[[],[]],[[1],[]],[[3],[]],[[],[]]]", "model.resnet.non_local.instantiation=dot_product"]


def test_pyslowfast_layout_with_non_local_blocks_loads_every_tensor(tmp_path):
    source = randomized(tiny(*NL_TINY))
    state = pyslowfast_state(source)
    assert "s4.pathway1_nonlocal2.conv_g.bias" in state and "s3.pathway0_nonlocal1.bn.running_var" in state
    path = tmp_path / "nl.pyth"
    torch.save({"model_state": state}, path)
    target = tiny(*NL_TINY)
    report = load_weights(target, path)
    assert report.layout == "pyslowfast" and not report.skipped and not report.missing
    assert len(report.loaded) == len(source.state_dict())
    assert_same_weights(source, target)
    # PySlowFast versions that call the block's batch norm "norm" load the same way
    torch.save({"model_state": {k.replace("_nonlocal1.bn.", "_nonlocal1.norm."): v for k, v in state.items()}}, path)
    target = tiny(*NL_TINY)
    assert not load_weights(target, path).missing
    assert_same_weights(source, target)


def test_caffe2_non_local_blob_names(tmp_path):
    source = randomized(tiny(*NL_TINY_SLOW))
    last_block = {"2": 2, "3": 3, "4": 5}
    state = {k: v for k, v in pyslowfast_state(source).items() if not k.endswith("num_batches_tracked")}
    blobs = {pyslowfast_to_caffe2(k, last_block): v.numpy().copy() for k, v in state.items()}
    nl_names = sorted(k for k in blobs if k.startswith("nonlocal_"))
    assert len(nl_names) == 2 * 12 and "nonlocal_conv4_3_theta_w" in nl_names and "nonlocal_conv3_1_bn_riv" in nl_names
    for k in state:  # PySlowFast's own renaming chain and ours agree on every name
        c2 = pyslowfast_to_caffe2(k, last_block)
        assert caffe2_to_pyslowfast_name(c2) == k
        if c2.startswith("nonlocal_"):
            assert caffe2_nonlocal_to_pyslowfast(c2) == k
    blobs["nonlocal_conv4_3_theta_w_momentum"] = np.zeros(3, dtype=np.float32)
    path = tmp_path / "SLOWFAST_32x2_R101_50_50.pkl"
    with open(path, "wb") as f:
        pickle.dump({"blobs": blobs}, f, protocol=2)
    target = tiny(*NL_TINY_SLOW)
    report = load_weights(target, path)
    assert report.layout == "pyslowfast_caffe2"
    assert report.skipped == [("nonlocal_conv4_3_theta_w_momentum", "training state, not a weight")]
    assert not report.missing
    assert_same_weights(source, target)


def _assert_one_clear_line(message: str) -> None:
    assert "\n" not in message and message.count("file (") <= 1 and len(message) < 900, message


def test_r50_file_for_a_non_local_preset_and_the_reverse_are_one_clear_error(tmp_path):
    preset = lambda name: build_model(load_config(ROOT / f"configs/ava/{name}.yaml", ["model.resnet.width_per_group=8"]))  # noqa: E731
    r50, r101_nl = tmp_path / "r50.pyth", tmp_path / "r101_nl.pyth"
    torch.save({"model_state": pyslowfast_state(preset("slowfast_r50_32x2"))}, r50)
    torch.save({"model_state": pyslowfast_state(preset("slowfast_r101_8x8_nonlocal"))}, r101_nl)

    with pytest.raises(AvaDetectError) as e:
        load_weights(preset("slowfast_r101_8x8_nonlocal"), r50)
    msg = str(e.value)
    _assert_one_clear_line(msg)
    assert msg.startswith(str(r50))
    assert "first tensor of the model missing from the file: 'backbone.stages.0.0.0.conv_a.weight'" not in msg
    assert "first tensor of the model missing from the file: 'backbone.stages.2.0.6.conv_a.weight'" in msg
    assert "File: 2 pathway(s), residual blocks res2..res5 3/4/6/3 and 3/4/6/3, no non-local blocks" in msg
    assert "model: 2 pathway(s), residual blocks res2..res5 3/4/23/3 and 3/4/23/3, non-local blocks after res4 block(s) 6, 13, 20 of pathway 0" in msg

    with pytest.raises(AvaDetectError) as e:
        load_weights(preset("slowfast_r50_32x2"), r101_nl)
    msg = str(e.value)
    _assert_one_clear_line(msg)
    assert "first tensor of the file with no place in the model: 's4.pathway0_res6.branch2.a.weight'" in msg
    assert "non-local blocks after res4 block(s) 6, 13, 20 of pathway 0; model: " in msg

    with pytest.raises(AvaDetectError, match="no place in the model: 's4.pathway0_nonlocal6.conv_theta.weight'"):
        load_weights(preset("slowfast_r101_32x2"), r101_nl)


@pytest.mark.parametrize("content, match", [
    ({"optimizer_state": {}}, "unknown checkpoint layout.*optimizer_state"),
    ({"model_state": {"features.0.weight": torch.zeros(1)}}, "unknown checkpoint layout.*features.0.weight"),
    ([1, 2, 3], "expected a dict, found list"),
])
def test_unknown_layouts_are_errors(tmp_path, content, match):
    path = tmp_path / "foreign.pth"
    torch.save(content, path)
    with pytest.raises(AvaDetectError, match=match):
        load_weights(tiny(), path)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(AvaDetectError, match="not a PyTorch checkpoint"):
        read_checkpoint(path)
    with pytest.raises(AvaDetectError, match="neither a file nor a published name"):
        load_weights(tiny(), tmp_path / "absent.pyth")


class _CreatesFile:
    """Unpickling this calls ``open(path, "w")``: a file appears if the loader runs pickled code."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("writer", ["torch_zip", "plain_pickle"])
def test_code_in_a_pickle_is_never_run(tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pyth"
    payload = {"model_state": {"s1.pathway0_stem.conv.weight": torch.zeros(1)}, "hook": _CreatesFile(str(marker))}
    if writer == "torch_zip":
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f, protocol=2)
    with pytest.raises(AvaDetectError, match="refused") as e:
        load_weights(tiny(), path)
    assert str(path) in str(e.value)
    assert not marker.exists()
    # the payload is real: a full unpickle would have created the file
    with open(path, "rb") as f:
        if writer == "plain_pickle":
            pickle.load(f)
            assert marker.exists()
