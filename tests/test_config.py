"""Typed config: YAML + overrides, unknown keys and wrong types named with their file."""

from __future__ import annotations


import pytest
import yaml

from ava_detect.config import (
    Config,
    config_from_dict,
    config_to_dict,
    configs_dir,
    load_config,
    packaged_config,
    packaged_configs,
    save_config,
)
from ava_detect.errors import AvaDetectError

from common import ROOT


def test_defaults():
    cfg = load_config()
    assert isinstance(cfg, Config)
    assert cfg.model.slowfast.alpha == 4 and cfg.data.test_box_threshold == 0.8 and cfg.test.protocol == "activitynet"


def test_yaml_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model:\n  resnet:\n    depth: 101\ntrain:\n  epochs: 7\n")
    cfg = load_config(p, ["train.epochs=3", "model.roi_aligned=false", "data.mean=[0.5,0.5,0.5]", "data.root=my data"])
    assert cfg.model.resnet.depth == 101 and cfg.train.epochs == 3
    assert cfg.model.roi_aligned is False and cfg.data.mean == [0.5, 0.5, 0.5] and cfg.data.root == "my data"


def test_base_chain(tmp_path):
    (tmp_path / "base.yaml").write_text("model:\n  resnet:\n    depth: 101\n  slowfast:\n    alpha: 8\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.yaml").write_text("_base_: ../base.yaml\nmodel:\n  slowfast:\n    alpha: 2\n")
    cfg = load_config(tmp_path / "sub" / "c.yaml")
    assert (cfg.model.resnet.depth, cfg.model.slowfast.alpha) == (101, 2)


@pytest.mark.parametrize("text,key", [
    ("model:\n  depht: 50\n", "model.depht"),
    ("modle:\n  depth: 50\n", "modle"),
    ("model:\n  resnet:\n    depht: 50\n", "model.resnet.depht"),
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


def test_old_flat_model_keys_move_to_their_sections_with_a_warning(tmp_path, caplog):
    """Configs written before the architecture sections (and the config in older checkpoints) still load."""
    (tmp_path / "base.yaml").write_text("model:\n  depth: 101\n  alpha: 8\n  fusion_kernel_size: 5\n")
    (tmp_path / "c.yaml").write_text("_base_: base.yaml\nmodel:\n  slowfast:\n    alpha: 2\n")
    with caplog.at_level("WARNING", logger="ava_detect.config"):
        cfg = load_config(tmp_path / "c.yaml", ["model.width_per_group=16", "model.slowfast.beta_inv=4"])
    assert (cfg.model.resnet.depth, cfg.model.resnet.width_per_group) == (101, 16)
    assert (cfg.model.slowfast.alpha, cfg.model.slowfast.fusion_kernel_size, cfg.model.slowfast.beta_inv) == (2, 5, 4)
    warned = " ".join(r.getMessage() for r in caplog.records)
    for new in ("'model.resnet.depth'", "'model.slowfast.alpha'", "'model.resnet.width_per_group'"):
        assert new in warned
    assert "base.yaml" in warned and "command line" in warned
    old = config_to_dict(cfg)
    flat = {**old, "model": {k: v for k, v in old["model"].items() if k not in ("resnet", "slowfast")}}
    flat["model"].update(old["model"]["resnet"], **old["model"]["slowfast"])
    assert config_from_dict(flat) == cfg


def test_old_and_new_name_of_one_key_together_is_an_error(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model:\n  alpha: 2\n  slowfast:\n    alpha: 4\n")
    with pytest.raises(AvaDetectError) as e:
        load_config(p)
    assert "model.slowfast.alpha" in str(e.value) and str(p) in str(e.value)


def test_shipped_configs_load():
    files = sorted((ROOT / "configs").rglob("*.yaml"))
    for f in files:
        load_config(f)


def test_packaged_configs_are_the_top_level_folder():
    assert configs_dir().resolve() == (ROOT / "configs").resolve()
    shipped = packaged_configs()
    assert shipped == sorted(p.relative_to(ROOT / "configs").as_posix() for p in (ROOT / "configs").rglob("*.yaml"))
    assert "synthetic/slowfast_tiny.yaml" in shipped and "ava/slowfast_r50_8x8.yaml" in shipped


def test_packaged_config_resolves_its_base_chain():
    # synthetic/slowfast_tiny.yaml starts from ../tiny.yaml; slow_tiny.yaml from slowfast_tiny.yaml
    path = packaged_config("synthetic/slow_tiny.yaml")
    assert path.is_file() and path.parent.name == "synthetic"
    cfg = load_config(path)
    assert cfg.model.arch == "slow" and cfg.model.num_classes == 7 and cfg.data.labelmap == "annotations/labelmap.pbtxt"


def test_missing_packaged_config_lists_the_presets():
    with pytest.raises(AvaDetectError) as e:
        packaged_config("synthetic/nope.yaml")
    msg = str(e.value)
    assert "synthetic/nope.yaml" in msg and "synthetic/slowfast_tiny.yaml" in msg and "tiny.yaml" in msg
    assert "\n" not in msg


def test_renamed_keys_still_load_with_a_warning(tmp_path, caplog):
    """``test.autocast`` and ``annotate.bf16`` are now ``test.bf16``: old files, overrides and the
    configs stored in checkpoints still load, and the warning names the new key."""
    p = tmp_path / "old.yaml"
    p.write_text("test:\n  autocast: true\n")
    with caplog.at_level("WARNING", logger="ava_detect.config"):
        assert load_config(p).test.bf16 is True
    assert "'test.autocast' is now 'test.bf16'" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="ava_detect.config"):
        assert load_config(None, ["annotate.bf16=true"]).test.bf16 is True
    assert "'annotate.bf16' is now 'test.bf16'" in caplog.text
    old = config_to_dict(load_config())
    del old["test"]["bf16"]
    old["test"]["autocast"], old["annotate"]["bf16"] = False, True
    assert config_from_dict(old).test.bf16 is True
    old["test"]["bf16"] = False  # the new key wins over old ones
    assert config_from_dict(old).test.bf16 is False
    assert load_config(None, ["test.bf16=true"]).test.bf16 is True
