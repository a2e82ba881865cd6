"""Nonsense settings are refused once, by the config schema, for every command: each field of
every section (but ``model``, checked by the model builders) declares its range or choices; the
loader checks them after the overrides and names the key and where the value came from. Number
flags that are not config keys get the same bounds from one shared argparse type."""

from __future__ import annotations

import dataclasses

import pytest

from ava_detect.cli import main
from ava_detect.config import Config, config_from_dict, config_to_dict, load_config
from ava_detect.errors import AvaDetectError



BAD_OVERRIDES = [
    ("train.batch_size=0", "train.batch_size", ">= 1"),
    ("train.epochs=-2", "train.epochs", ">= 1"),
    ("train.epochs=99999999999999999999", "train.epochs", "2147483647"),
    ("data.train_crop_size=-5", "data.train_crop_size", "[1, 16384]"),
    ("annotate.threshold=2", "annotate.threshold", "[0, 1]"),
    ("annotate.threshold=nan", "annotate.threshold", "found nan"),
    ("annotate.every=0", "annotate.every", "> 0"),
    ("annotate.every=inf", "annotate.every", "found inf"),
    ("train.base_lr=nan", "train.base_lr", "> 0"),
    ("train.base_lr=-0.1", "train.base_lr", "> 0"),
    ("train.warmup_start_lr=-1e-3", "train.warmup_start_lr", ">= 0"),
    ("train.weight_decay=.inf", "train.weight_decay", "finite"),
    ("train.momentum=1.5", "train.momentum", "[0, 1)"),
    ("train.lr_decay=0", "train.lr_decay", "(0, 1]"),
    ("train.lr_steps=[10,-1]", "train.lr_steps", "found -1"),
    ("train.lr_policy=linear", "train.lr_policy", "steps, cosine"),
    ("train.seed=-1", "train.seed", "4294967295"),
    ("train.checkpoint_iters=-3", "train.checkpoint_iters", ">= 0"),
    ("data.num_workers=-1", "data.num_workers", "[0, 1024]"),
    ("data.fps=0", "data.fps", "[1, 1000]"),
    ("data.std=[0.2,0,0.2]", "data.std", "> 0"),
    ("data.mean=[0.5,0.5]", "data.mean", "3 values"),
    ("data.source=images", "data.source", "video, frames"),
    ("data.train_color_jitter=-0.2", "data.train_color_jitter", "[0, 1]"),
    ("data.test_box_threshold=1.01", "data.test_box_threshold", "[0, 1]"),
    ("data.label_iou_threshold=-0.5", "data.label_iou_threshold", "[0, 1]"),
    ("data.train_jitter_max=200", "data.train_jitter_max", "train_jitter_min"),
    ("data.train_crop_size=300", "data.train_crop_size", "train_jitter_min"),
    ("test.batch_size=0", "test.batch_size", ">= 1"),
    ("test.protocol=coco", "test.protocol", "activitynet, pyslowfast"),
    ("detector.min_size=0", "detector.min_size", "[1, 16384]"),
    ("detector.max_size=100", "detector.max_size", "min_size"),
    ("detector.score_threshold=-1", "detector.score_threshold", "[0, 1]"),
    ("detector.boxes_format=xml", "detector.boxes_format", "auto, boxes, ground_truth"),
    ("detector.proposals=0", "detector.proposals", ">= 1"),
    ("annotate.top_k=-1", "annotate.top_k", ">= 0"),
    ("annotate.second_offset=-900", "annotate.second_offset", ">= 0"),
    ("annotate.crf=60", "annotate.crf", "[0, 51]"),
    ("annotate.preset=quick", "annotate.preset", "veryfast"),
    ("annotate.track_iou=1.5", "annotate.track_iou", "[0, 1]"),
    ("annotate.track_max_age=-1", "annotate.track_max_age", ">= 0"),
    ("data.root=a\x00b", "data.root", "control characters"),
]


@pytest.mark.parametrize("override,key,expected", BAD_OVERRIDES, ids=[b[0] for b in BAD_OVERRIDES])
def test_bad_value_names_key_and_command_line(override, key, expected):
    with pytest.raises(AvaDetectError) as e:
        load_config(None, [override])
    message = str(e.value)
    assert message.startswith("command line: ") and f"'{key}'" in message and expected in message, message
    assert "\n" not in message


def test_bad_value_in_a_file_names_the_file_and_a_base_file_its_own(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("train:\n  epochs: -2\n")
    top = tmp_path / "top.yaml"
    top.write_text("_base_: base.yaml\ndata:\n  num_workers: -1\n")
    with pytest.raises(AvaDetectError) as e:
        load_config(top)
    assert str(e.value).startswith(f"{top}: ") and "data.num_workers" in str(e.value)
    with pytest.raises(AvaDetectError) as e:
        load_config(top, ["data.num_workers=0"])
    assert str(e.value).startswith(f"{base}: ") and "train.epochs" in str(e.value)
    # an override may repair a bad value of a file: the check runs once, after the overrides
    assert load_config(top, ["data.num_workers=0", "train.epochs=2"]).train.epochs == 2


def test_cross_check_names_the_source_of_the_other_key():
    with pytest.raises(AvaDetectError) as e:
        load_config(None, ["train.momentum=0"])
    assert str(e.value).startswith("command line: ") and "train.nesterov" in str(e.value)
    assert load_config(None, ["train.momentum=0", "train.nesterov=false"]).train.momentum == 0


def test_checkpoint_config_is_checked_too():
    data = config_to_dict(load_config())
    data["train"]["batch_size"] = 0
    with pytest.raises(AvaDetectError, match="train.batch_size") as e:
        config_from_dict(data, source="ckpt.pth")
    assert e.value.path == "ckpt.pth"


def test_every_number_field_declares_its_range():
    """Every number or list field of every section but ``model`` carries a declared check."""
    for section in dataclasses.fields(Config):
        if section.name == "model":
            continue
        for f in dataclasses.fields(section.default_factory()):
            if f.type in ("int", "float") or str(f.type).startswith("List"):
                assert "range" in f.metadata, f"{section.name}.{f.name} has no declared range"


def test_defaults_and_boundaries_are_accepted():
    cfg = load_config(None, ["annotate.threshold=0", "annotate.threshold=1", "train.momentum=0.0",
                             "train.nesterov=false", "data.num_workers=0", "annotate.crf=51", "train.lr_decay=1"])
    assert cfg.annotate.threshold == 1 and cfg.annotate.crf == 51


# ---- through the commands: exit 2, one line, no work done ----------------------------------------


def _cli(args, capsys):
    rc = main(args)
    return rc, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("args,key", [
    (["train", "train.batch_size=0"], "train.batch_size"),
    (["train", "train.epochs=-2"], "train.epochs"),
    (["test", "--weights", "none.pth", "test.batch_size=0"], "test.batch_size"),
    (["annotate", "clip.mp4", "--out", "o.mp4", "--threshold", "2"], "annotate.threshold"),
    (["annotate", "clip.mp4", "--out", "o.mp4", "--threshold", "nan"], "annotate.threshold"),
    (["annotate", "clip.mp4", "--out", "o.mp4", "--every", "0"], "annotate.every"),
    (["annotate", "clip.mp4", "--out", "o.mp4", "--top-k", "-1"], "annotate.top_k"),
    (["detect", "--videos", "v.mp4", "--out", "b.csv", "--box-threshold", "7"], "detector.score_threshold"),
    (["detect", "--videos", "v.mp4", "--out", "b.csv", "--batch-size", "0"], "detector.batch_size"),
])
def test_commands_refuse_bad_settings_in_one_line(tmp_path, monkeypatch, capsys, args, key):
    monkeypatch.chdir(tmp_path)
    out_dir = tmp_path / "run"
    if args[0] in ("train", "test"):
        args = args + [f"{args[0]}.output_dir={out_dir}"]
    rc, err = _cli(args, capsys)
    assert rc == 2 and len(err) == 1 and f"'{key}'" in err[0] and "command line" in err[0], err
    assert not out_dir.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args,flag", [
    (["detect", "--videos", "v.mp4", "--out", "b.csv", "--every", "0"], "--every"),
    (["detect", "--videos", "v.mp4", "--out", "b.csv", "--second-offset", "-1"], "--second-offset"),
    (["prep", "videos", "--src", "a", "--out", "b", "--crf", "52"], "--crf"),
    (["prep", "videos", "--src", "a", "--out", "b", "--end-second", "nan"], "--end-second"),
    (["prep", "videos", "--src", "a", "--out", "b", "--workers", "0"], "--workers"),
    (["prep", "frames", "--root", "r", "--workers", "-2"], "--workers"),
    (["prep", "annotations", "--split", "val", "--min-score", "inf"], "--min-score"),
    (["prep", "synthetic", "--out", "s", "--size", "100000x64"], "--size"),
])
def test_number_flags_that_are_not_config_keys_are_bounded(tmp_path, monkeypatch, capsys, args, flag):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert f"argument {flag}:" in err[-1] and ("expected" in err[-1] or "1..8192" in err[-1]), err
    assert list(tmp_path.iterdir()) == []
