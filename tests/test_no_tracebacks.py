"""Class 4 of bad input: faults that used to end in a traceback. Each is one line and exit status 2:
resuming a run with another model, what the operating system refuses (disk full, permission
denied) or cannot give (memory), argparse's own errors, numbers too large for their column, and
settings out of range given on the command line."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch

from ava_detect.config import config_to_dict, load_config, save_config
from ava_detect.engine.checkpointing import capture_rng, save_training_checkpoint
from ava_detect.model import build_model

from common import CPU, FIXTURES, ROOT, cli_error, folder_state

TINY = ROOT / "configs" / "tiny.yaml"
EXCERPT = FIXTURES / "eval" / "ava_val_excerpt"


#: The tiny SlowFast on a small synthetic set.
SMALL = ["model.num_classes=7", "model.num_frames=8", "data.labelmap=annotations/labelmap.pbtxt", "data.num_workers=0",
         "data.train_crop_size=64", "data.train_jitter_min=64", "data.train_jitter_max=80", "train.batch_size=2",
         "train.reference_batch_size=2", *CPU]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from ava_detect.synthetic import make_synthetic_dataset

    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic_dataset(root, seed=2, num_videos=2, seconds=6, size=(64, 64))
    return root


def _resumable_run(out: Path, data: Path) -> Path:
    cfg = load_config(TINY, [*SMALL, f"data.root={data}", f"train.output_dir={out}"])
    model = build_model(cfg)
    save_training_checkpoint(out / "checkpoints" / "last.pth", {
        "model": model.state_dict(), "optimizer": torch.optim.SGD(model.parameters(), lr=0.1).state_dict(),
        "scheduler": {}, "scaler": {}, "epoch": 1, "iteration": 3, "rng": capture_rng(), "config": config_to_dict(cfg),
        "best_map": float("nan"), "history": []})
    save_config(cfg, out / "config.yaml")
    return out


@pytest.mark.parametrize("change, named", [("model.resnet.depth=101", "resnet"),
                                           ("model.resnet.width_per_group=16", "resnet"), ("model.arch=slow", "arch")])
def test_resume_with_another_model_names_the_changed_settings(tmp_path, capsys, data, change, named):
    run = _resumable_run(tmp_path / "run", data)
    before = folder_state(run)
    line = cli_error(capsys, "train", "--config", TINY, *SMALL, f"data.root={data}", change, "--output-dir", run,
                     "--resume")
    assert "cannot resume" in line and named in line and "last.pth" in line
    assert len(line) < 600  # not a dump of tensor names
    assert folder_state(run) == before  # the run's config.yaml is not replaced by the refused one


def test_disk_full_and_permission_denied_are_one_line(tmp_path, capsys, monkeypatch):
    import ava_detect.evaluation.report as report

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "r.json"))

    monkeypatch.setattr(report, "write_json", disk_full)
    line = cli_error(capsys, "eval", "--gt", EXCERPT / "gt.csv", "--pred", EXCERPT / "pred.csv",
                     "--json", tmp_path / "r.json")
    assert "No space left on device" in line and "r.json" in line

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path / "r.json"))

    monkeypatch.setattr(report, "write_json", denied)
    assert "Permission denied" in cli_error(capsys, "eval", "--gt", EXCERPT / "gt.csv", "--pred",
                                            EXCERPT / "pred.csv", "--json", tmp_path / "r.json")


def test_out_of_memory_is_one_line(tmp_path, capsys, monkeypatch):
    import ava_detect.synthetic as synthetic

    def too_big(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(synthetic, "make_synthetic_dataset", too_big)
    line = cli_error(capsys, "prep", "synthetic", "--out", tmp_path / "s", "--size", "8192x8192", "--no-progress")
    assert "out of memory" in line


@pytest.mark.parametrize("argv, says", [
    (["eval", "--gt"], "expected one argument"),
    (["eval", "--gt", "a", "--pred", "b", "--protocol", "coco"], "invalid choice"),
    (["detect", "--videos", "v.mp4", "--out", "b.csv", "--every", "0"], "--every"),
    (["prep", "frames", "--videos", "v", "--out", "f", "--workers", "0"], "--workers"),
    (["quickstart", "--size", "12x"], "--size"),
    (["train", "--frobnicate"], "unrecognized arguments: --frobnicate"),
])
def test_argparse_errors_are_one_line_without_the_usage(capsys, argv, says):
    line = cli_error(capsys, *argv)
    assert says in line and "usage:" not in line


def test_a_label_id_too_large_for_an_integer(tmp_path, capsys):
    gt = tmp_path / "gt.csv"
    gt.write_bytes((EXCERPT / "gt.csv").read_bytes() + b"-5KQ66BBWC4,0902,0.1,0.1,0.5,0.5,99999999999999999999,0\n")
    line = cli_error(capsys, "eval", "--gt", gt, "--pred", EXCERPT / "pred.csv")
    n = len((EXCERPT / "gt.csv").read_text().splitlines()) + 1
    assert f"gt.csv:{n}:" in line


@pytest.mark.parametrize("override, key", [("train.batch_size=0", "train.batch_size"),
                                           ("data.train_crop_size=-224", "data.train_crop_size"),
                                           ("train.epochs=-2", "train.epochs")])
def test_settings_out_of_range_stop_before_anything_is_written(tmp_path, capsys, override, key):
    line = cli_error(capsys, "train", "--config", TINY, *CPU, override, "--output-dir", tmp_path / "run")
    assert key in line
    assert not (tmp_path / "run").exists()
