"""Published weights by name: download into the torch hub cache, offline failure, same loading code."""

from __future__ import annotations

from pathlib import Path

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
