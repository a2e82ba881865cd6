"""Typed config: YAML + overrides, unknown keys and wrong types named with their file."""

from __future__ import annotations


import pytest
import yaml

from ava_detect.config import Config, config_from_dict, config_to_dict, load_config, save_config
from ava_detect.errors import AvaDetectError

from common import ROOT


def test_defaults():
    cfg = load_config()
    assert isinstance(cfg, Config)
    assert cfg.model.alpha == 4 and cfg.data.test_box_threshold == 0.8 and cfg.test.protocol == "activitynet"


def test_yaml_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model:\n  depth: 101\ntrain:\n  epochs: 7\n")
    cfg = load_config(p, ["train.epochs=3", "model.roi_aligned=false", "data.mean=[0.5,0.5,0.5]", "data.root=my data"])
    assert cfg.model.depth == 101 and cfg.train.epochs == 3
    assert cfg.model.roi_aligned is False and cfg.data.mean == [0.5, 0.5, 0.5] and cfg.data.root == "my data"


def test_base_chain(tmp_path):
    (tmp_path / "base.yaml").write_text("model:\n  depth: 101\n  alpha: 8\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.yaml").write_text("_base_: ../base.yaml\nmodel:\n  alpha: 2\n")
    cfg = load_config(tmp_path / "sub" / "c.yaml")
    assert (cfg.model.depth, cfg.model.alpha) == (101, 2)


@pytest.mark.parametrize("text,key", [
    ("model:\n  depht: 50\n", "model.depht"),
    ("modle:\n  depth: 50\n", "modle"),
])
def test_unknown_key_names_key_and_file(tmp_path, text, key):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(AvaDetectError) as e:
        load_config(p)
    assert key in str(e.value) and str(p) in str(e.value)


@pytest.mark.parametrize("text,key", [
    ("train:\n  epochs: many\n", "train.epochs"),
    ("model:\n  roi_aligned: maybe\n", "model.roi_aligned"),
    ("data:\n  mean: 3\n", "data.mean"),
])
def test_wrong_type_names_key_and_file(tmp_path, text, key):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(AvaDetectError) as e:
        load_config(p)
    assert key in str(e.value) and str(p) in str(e.value)


@pytest.mark.parametrize("override,fragment", [
    ("train.epochs=1.5", "train.epochs"),
    ("train.nope=1", "train.nope"),
    ("epochs=3", "section.key=value"),
    ("train.epochs", "section.key=value"),
])
def test_bad_overrides(override, fragment):
    with pytest.raises(AvaDetectError) as e:
        load_config(None, [override])
    assert fragment in str(e.value) and "command line" in str(e.value)


def test_bad_yaml_and_missing_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model: [unclosed\n")
    with pytest.raises(AvaDetectError, match="invalid YAML"):
        load_config(p)
    with pytest.raises(AvaDetectError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    p.write_text("- a\n- b\n")
    with pytest.raises(AvaDetectError, match="mapping"):
        load_config(p)


def test_save_and_reload(tmp_path):
    cfg = load_config(None, ["train.epochs=5", "model.arch=slow"])
    out = tmp_path / "run" / "config.yaml"
    save_config(cfg, out)
    again = load_config(out)
    assert again == cfg
    assert config_from_dict(config_to_dict(cfg)) == cfg
    assert yaml.safe_load(out.read_text())["train"]["epochs"] == 5


def test_shipped_configs_load():
    files = sorted((ROOT / "configs").rglob("*.yaml"))
    for f in files:
        load_config(f)
