"""Class 1 of bad input: an output path that is one of the command's inputs (the same path, another
path to it, a symbolic link, a hard link), or two outputs that are one file. Every command refuses
before doing any work (:class:`ava_detect.io_paths.IOPaths`) and changes nothing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ava_detect.errors import AvaDetectError
from ava_detect.io_paths import IOPaths

from common import CPU, FIXTURES, ROOT, cli_error, folder_state

EXCERPT = FIXTURES / "eval" / "ava_val_excerpt"
TINY = ROOT / "configs" / "tiny.yaml"


@pytest.fixture
def work(tmp_path) -> Path:
    """gt.csv, pred.csv, excluded.csv of the eval excerpt, a file standing for weights, a video."""
    for name in ("gt.csv", "pred.csv", "excluded.csv"):
        shutil.copy(EXCERPT / name, tmp_path / name)
    (tmp_path / "tiny.pth").write_bytes(b"weights that must survive")
    (tmp_path / "clip.mp4").write_bytes(b"a video that must survive")
    return tmp_path


def _eval(work: Path, *extra):
    return ["eval", "--gt", work / "gt.csv", "--pred", work / "pred.csv", "--exclusions", work / "excluded.csv",
            *extra]


def _refused(capsys, work: Path, *argv) -> str:
    before = folder_state(work)
    line = cli_error(capsys, *argv)
    assert "refusing to overwrite the input" in line or "same file" in line or "same folder" in line, line
    assert folder_state(work) == before
    return line


@pytest.mark.parametrize("target", ["gt.csv", "pred.csv", "excluded.csv"])
def test_eval_json_that_is_an_input(capsys, work, target):
    line = _refused(capsys, work, *_eval(work, "--json", work / target))
    assert str(work / target) in line and "--json" in line


def test_eval_json_through_another_path_a_symlink_and_a_hard_link(capsys, work, monkeypatch):
    monkeypatch.chdir(work)
    _refused(capsys, work, *_eval(work, "--json", "./sub/../gt.csv"))
    os.symlink(work / "pred.csv", work / "link.json")
    _refused(capsys, work, *_eval(work, "--json", work / "link.json"))
    os.link(work / "gt.csv", work / "hard.json")
    line = _refused(capsys, work, *_eval(work, "--json", work / "hard.json"))
    assert "--gt" in line


def test_eval_plots_folder_that_holds_an_input_under_a_plot_name(capsys, work):
    plots = work / "plots"
    plots.mkdir()
    shutil.copy(work / "gt.csv", plots / "per_class_ap.png")
    _refused(capsys, work, "eval", "--gt", plots / "per_class_ap.png", "--pred", work / "pred.csv",
             "--plots", plots)


def test_annotate_outputs_onto_weights_boxes_and_each_other(capsys, work):
    boxes = work / "boxes.csv"
    boxes.write_text("clip,0000,0.1,0.1,0.5,0.9,,0.99\n")
    base = ["annotate", work / "clip.mp4", "--config", TINY, "--weights", work / "tiny.pth", "--device", "cpu",
            "--detector", "csv", "--boxes", boxes]
    line = _refused(capsys, work, *base, "--out", work / "o.mp4", "--json", work / "tiny.pth")
    assert "--weights" in line
    line = _refused(capsys, work, *base, "--out", work / "o.mp4", "--csv", boxes)
    assert "--boxes" in line
    line = _refused(capsys, work, *base, "--out", work / "o.mp4", "--csv", work / "r.txt", "--json", work / "r.txt")
    assert "--json and --csv are the same file" in line
    line = _refused(capsys, work, *base, "--out", work / "clip.mp4")
    assert "input video" in line


def test_detect_out_onto_ground_truth_or_box_file(capsys, work):
    line = _refused(capsys, work, "detect", "--videos", work / "clip.mp4", "--out", work / "gt.csv",
                    "--gt", work / "gt.csv", "--device", "cpu")
    assert "--gt" in line
    line = _refused(capsys, work, "detect", "--videos", work / "clip.mp4", "--out", work / "pred.csv",
                    "--detector", "csv", "--boxes", work / "pred.csv", "--device", "cpu")
    assert "boxes_csv" in line


def test_prep_annotations_out_onto_its_ground_truth(capsys, work):
    line = _refused(capsys, work, "prep", "annotations", "--split", "val", "--root", work, "--gt", work / "gt.csv",
                    "--out", work / "sub" / ".." / "gt.csv")
    assert "--gt" in line


def test_train_initial_weights_are_not_the_checkpoint_it_writes(capsys, work):
    out = work / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "last.pth").write_bytes(b"someone's model")
    line = _refused(capsys, work, "train", "--config", TINY, *CPU, "--output-dir", out,
                    "--weights", out / "checkpoints" / "last.pth")
    assert "train.weights" in line and "last.pth" in line


def test_test_output_folder_files_onto_its_inputs(capsys, work):
    out = work / "tested"
    out.mkdir()
    shutil.copy(work / "pred.csv", out / "detections.csv")
    line = _refused(capsys, work, "test", "--config", TINY, *CPU, f"data.val_boxes={out / 'detections.csv'}",
                    "--weights", work / "tiny.pth", "--output-dir", out)
    assert "data.val_boxes" in line
    # the run's config.yaml written over the --config it was given
    shutil.copy(TINY, out / "config.yaml")
    line = _refused(capsys, work, "test", "--config", out / "config.yaml", *CPU, "--weights", work / "tiny.pth",
                    "--output-dir", out)
    assert "--config" in line


def test_prep_frames_out_is_the_videos_folder(capsys, work):
    videos = work / "videos"
    videos.mkdir()
    (videos / "a.mp4").write_bytes(b"x")
    line = _refused(capsys, work, "prep", "frames", "--videos", videos, "--out", work / "videos" / ".")
    assert "same folder" in line


def test_the_check_itself_on_paths_that_do_not_exist_yet(tmp_path):
    a = tmp_path / "new" / "a.csv"
    IOPaths().input("--in", tmp_path / "missing.csv").output("--out", a).check()  # nothing exists: fine
    with pytest.raises(AvaDetectError, match="same file"):
        IOPaths().input("--in", a).output("--out", tmp_path / "new" / "." / "a.csv").check()
    IOPaths().input("--weights", "slowfast_r50_8x8_ava").output("--out", tmp_path / "o.csv").check()  # a name
    assert not (tmp_path / "new").exists()  # checking created nothing
