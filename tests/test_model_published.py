"""Published weights by name: download into the torch hub cache, offline failure, same loading code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ava_detect.config import load_config, packaged_config
from ava_detect.errors import AvaDetectError
from ava_detect.model import build_model, load_weights, save_checkpoint
from ava_detect.model import published
from ava_detect.model.published import PUBLISHED, PublishedWeights, cache_path, resolve_weights

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def hub_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return tmp_path / "hub"


def tiny():
    return build_model(load_config(ROOT / "configs/tiny.yaml"))


def test_published_entries_point_at_the_model_zoos_and_existing_presets():
    assert PUBLISHED["slowfast_r50_8x8_ava"].url == (
        "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/ava/SLOWFAST_8x8_R50_DETECTION.pyth")
    for name, entry in PUBLISHED.items():
        assert entry.url.startswith("https://dl.fbaipublicfiles.com/"), name
        assert packaged_config(entry.config).is_file(), (name, entry.config)


def test_offline_download_is_one_clear_error(hub_dir, monkeypatch):
    url = "http://127.0.0.1:9/pytorchvideo/model_zoo/ava/SLOWFAST_8x8_R50_DETECTION.pyth"  # nothing listens
    monkeypatch.setitem(PUBLISHED, "slowfast_r50_8x8_ava",
                        PublishedWeights(url, "ava/slowfast_r50_8x8.yaml", "test"))
    with pytest.raises(AvaDetectError) as e:
        load_weights(tiny(), "slowfast_r50_8x8_ava", progress=False)
    msg = str(e.value)
    assert url in msg and "--weights /path/to/SLOWFAST_8x8_R50_DETECTION.pyth" in msg
    assert "\n" not in msg
    assert not cache_path("slowfast_r50_8x8_ava").exists()
    assert not any(p.is_file() for p in hub_dir.rglob("*"))  # no partial download left behind


def test_simulated_network_failure_names_the_real_url(hub_dir, monkeypatch):
    def offline(url, dst, progress=True):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(AvaDetectError, match="ava/SLOW_4x16_R50_DETECTION.pyth.*name resolution"):
        resolve_weights("slow_r50_4x16_ava", progress=False)


def test_download_then_cached_file_is_loaded(hub_dir, monkeypatch, tmp_path):
    source = tiny()
    with torch.no_grad():
        source.head.proj.bias.fill_(0.25)
    served = tmp_path / "served.pt"
    save_checkpoint(served, model=source)
    calls = []

    def fake_download(url, dst, progress=True):
        calls.append((url, progress))
        Path(dst).write_bytes(served.read_bytes())

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    target = tiny()
    report = load_weights(target, "slowfast_r50_8x8_ava")
    assert calls == [(PUBLISHED["slowfast_r50_8x8_ava"].url, True)]
    assert cache_path("slowfast_r50_8x8_ava") == hub_dir / "checkpoints" / "slowfast_r50_8x8_ava.pyth"
    assert torch.all(target.head.proj.bias == 0.25)
    assert "slowfast_r50_8x8_ava" in report.source
    load_weights(tiny(), "slowfast_r50_8x8_ava")  # second time from the cache
    assert len(calls) == 1


def test_unknown_name_lists_the_published_ones(hub_dir):
    with pytest.raises(AvaDetectError, match="neither a file nor a published name.*slowfast_r50_8x8_ava"):
        resolve_weights("slowfast_r50_ava_typo")
    with pytest.raises(AvaDetectError, match="unknown published weights"):
        published.download_published("nope")


def test_r101_non_local_entries_are_pyslowfast_model_zoo_files():
    zoo = "https://dl.fbaipublicfiles.com/pyslowfast/model_zoo/ava"
    expected = {
        "slowfast_r101_8x8_nonlocal_ava": (f"{zoo}/SLOWFAST_32x2_R101_50_50.pkl", "slowfast_r101_8x8_nonlocal", "29.1"),
        "slowfast_r101_16x8_nonlocal_ava": (f"{zoo}/SLOWFAST_64x2_R101_50_50.pkl", "slowfast_r101_16x8_nonlocal", "29.4"),
        "slowfast_r101_8x8_nonlocal_ava_v2.1": (f"{zoo}/SLOWFAST_32x2_R101_50_50_v2.1.pkl", "slowfast_r101_8x8_nonlocal",
                                                "28.2"),
        "slowfast_r101_8x8_nonlocal_kinetics600": (f"{zoo}/pretrain/SLOWFAST_32x2_R101_50_50.pkl",
                                                   "slowfast_r101_8x8_nonlocal", "Kinetics-600"),
        "slowfast_r101_16x8_nonlocal_kinetics600": (f"{zoo}/pretrain/SLOWFAST_64x2_R101_50_50.pkl",
                                                    "slowfast_r101_16x8_nonlocal", "Kinetics-600"),
        "slowfast_r101_8x8_nonlocal_kinetics600_v2.1": (f"{zoo}/pretrain/SLOWFAST_32x2_R101_50_50_v2.1.pkl",
                                                        "slowfast_r101_8x8_nonlocal", "Kinetics-600"),
    }
    for name, (url, preset, words) in expected.items():
        entry = PUBLISHED[name]
        assert entry.url == url and entry.config == f"ava/{preset}.yaml" and words in entry.description, name
    assert load_config(ROOT / "configs/ava/slowfast_r101_8x8_nonlocal.yaml").train.weights == \
        "slowfast_r101_8x8_nonlocal_kinetics600"


def test_published_r101_non_local_files_load_completely(hub_dir, monkeypatch, tmp_path):
    """Files in the published layouts (a Caffe2 .pkl AVA model, a Kinetics-600 backbone with its 600-class
    head), made here at width 8, go through the same download-and-load code as the real ones."""
    import pickle

    from test_model_weights import pyslowfast_state, pyslowfast_to_caffe2, randomized  # the tests' inverse name maps

    cfg = load_config(ROOT / "configs/ava/slowfast_r101_8x8_nonlocal.yaml", ["model.resnet.width_per_group=8"])
    source = randomized(build_model(cfg))
    state = {k: v for k, v in pyslowfast_state(source).items() if not k.endswith("num_batches_tracked")}
    blobs = {pyslowfast_to_caffe2(k, {"2": 2, "3": 3, "4": 22}): v.numpy().copy() for k, v in state.items()}
    assert "nonlocal_conv4_20_bn_riv" in blobs and "t_res4_22_branch2c_bn_subsample_w" in blobs
    ava = tmp_path / "ava.pkl"
    with open(ava, "wb") as f:
        pickle.dump({"blobs": blobs}, f, protocol=2)
    blobs = dict(blobs, pred_w=np.random.rand(600, blobs["pred_w"].shape[1]).astype(np.float32),
                 pred_b=np.zeros(600, dtype=np.float32))
    kinetics = tmp_path / "kinetics.pkl"
    with open(kinetics, "wb") as f:
        pickle.dump({"blobs": blobs}, f, protocol=2)
    served = {PUBLISHED["slowfast_r101_8x8_nonlocal_ava"].url: ava,
              PUBLISHED["slowfast_r101_8x8_nonlocal_kinetics600"].url: kinetics}
    monkeypatch.setattr(torch.hub, "download_url_to_file",
                        lambda url, dst, progress=True: Path(dst).write_bytes(served[url].read_bytes()))

    target = build_model(cfg)
    report = load_weights(target, "slowfast_r101_8x8_nonlocal_ava", progress=False)
    assert report.layout == "pyslowfast_caffe2" and not report.skipped and not report.missing
    assert len(report.loaded) == len(source.state_dict()) - 215  # all but the batch counters
    for k, v in source.state_dict().items():
        assert k.endswith("num_batches_tracked") or torch.equal(target.state_dict()[k], v), k

    backbone = build_model(cfg)
    report = load_weights(backbone, "slowfast_r101_8x8_nonlocal_kinetics600", progress=False)
    assert report.head_initialised and sorted(report.missing) == ["head.proj.bias", "head.proj.weight"]
    assert {k for k, _ in report.skipped} == {"head.projection.weight", "head.projection.bias"}  # pred_w, pred_b
    assert torch.equal(backbone.backbone.stages[2][0].nonlocal13.conv_phi.weight,
                       source.backbone.stages[2][0].nonlocal13.conv_phi.weight)
