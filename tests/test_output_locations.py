"""Class 3 of bad input: output locations that cannot be written -- an output file that is an existing
folder, an output folder that is a file, a file where a parent folder should be, a folder that
cannot be written. One line, exit 2, before any work (nothing is rendered, trained or decoded)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from ava_detect.errors import AvaDetectError
from ava_detect.io import atomic_open
from ava_detect.io_paths import check_writable_location

from common import CPU, FIXTURES, ROOT, cli_error, folder_state

EXCERPT = FIXTURES / "eval" / "ava_val_excerpt"
TINY = ROOT / "configs" / "tiny.yaml"


@pytest.fixture
def work(tmp_path) -> Path:
    for name in ("gt.csv", "pred.csv"):
        shutil.copy(EXCERPT / name, tmp_path / name)
    (tmp_path / "notes.txt").write_text("a file where a folder is expected\n")
    (tmp_path / "afolder").mkdir()
    (tmp_path / "tiny.pth").write_bytes(b"not read: the location is checked first")
    return tmp_path


@pytest.fixture
def unwritable(tmp_path) -> Path:
    """A folder this process cannot create files in."""
    if os.geteuid() != 0:
        folder = tmp_path / "readonly"
        folder.mkdir()
        folder.chmod(0o500)
        yield folder
        folder.chmod(0o700)
        return
    for folder in (Path("/sys/kernel"), Path("/proc/self")):  # root writes anywhere else
        try:
            fd, probe = tempfile.mkstemp(dir=folder)
        except OSError:
            yield folder
            return
        os.close(fd)
        os.unlink(probe)
    pytest.skip("no folder that this (root) process cannot write to")


def _error(capsys, work: Path, *argv) -> str:
    before = folder_state(work)
    line = cli_error(capsys, *argv)
    assert folder_state(work) == before  # nothing created, nothing changed
    return line


def _eval(work: Path, *extra):
    return ["eval", "--gt", work / "gt.csv", "--pred", work / "pred.csv", *extra]


def test_eval_json_is_a_folder_or_under_a_file(capsys, work):
    assert "is a folder; expected a file" in _error(capsys, work, *_eval(work, "--json", work / "afolder"))
    line = _error(capsys, work, *_eval(work, "--json", work / "notes.txt" / "r.json"))
    assert "notes.txt is a file, not a folder" in line and "--json" in line
    line = _error(capsys, work, *_eval(work, "--plots", work / "notes.txt"))
    assert "--plots is a file; expected a folder" in line


def test_eval_json_in_an_unwritable_folder(capsys, work, unwritable):
    line = cli_error(capsys, *_eval(work, "--json", unwritable / "deep" / "r.json"))
    assert "cannot write the --json file" in line and str(unwritable) in line


@pytest.mark.parametrize("command", ["train", "test"])
def test_train_and_test_output_dir_is_a_file(capsys, work, command):
    weights = ["--weights", work / "tiny.pth"] if command == "test" else []
    line = _error(capsys, work, command, "--config", TINY, *CPU, *weights, "--output-dir", work / "notes.txt")
    assert f"{command}.output_dir is a file; expected a folder" in line


def test_train_output_dir_below_a_file_and_unwritable(capsys, work, unwritable):
    line = _error(capsys, work, "train", "--config", TINY, *CPU, "--output-dir", work / "notes.txt" / "run")
    assert "is a file, not a folder" in line
    line = cli_error(capsys, "train", "--config", TINY, *CPU, "--output-dir", unwritable / "run")
    assert "cannot write" in line


def test_quickstart_workdir_is_a_file_before_any_rendering(capsys, work):
    line = _error(capsys, work, "quickstart", "--workdir", work / "notes.txt", "--videos", "2", "--seconds", "4")
    assert "--workdir is a file" in line


def test_prep_outputs_that_are_files(capsys, work):
    line = _error(capsys, work, "prep", "synthetic", "--out", work / "notes.txt", "--videos", "2", "--seconds", "4")
    assert "--out" in line and "is a file" in line
    videos = work / "videos"
    videos.mkdir()
    (videos / "a.mp4").write_bytes(b"x")
    line = _error(capsys, work, "prep", "frames", "--videos", videos, "--out", work / "notes.txt")
    assert "--out is a file; expected a folder" in line
    line = _error(capsys, work, "prep", "annotations", "--split", "val", "--root", work, "--gt", work / "gt.csv",
                  "--out", work / "afolder")
    assert "--out is a folder" in line


def test_annotate_and_detect_outputs(capsys, work, unwritable):
    video = work / "clip.mp4"
    video.write_bytes(b"never decoded")
    base = ["annotate", video, "--config", TINY, "--weights", work / "tiny.pth", "--device", "cpu"]
    assert "--out is a folder" in _error(capsys, work, *base, "--out", work / "afolder")
    assert "is a file, not a folder" in _error(capsys, work, *base, "--out", work / "o.mp4",
                                               "--csv", work / "notes.txt" / "o.csv")
    assert "cannot write the --json file" in cli_error(capsys, *base, "--out", work / "o.mp4",
                                                       "--json", unwritable / "o.json")
    line = _error(capsys, work, "detect", "--videos", video, "--out", work / "notes.txt" / "boxes.csv",
                  "--device", "cpu")
    assert "--out" in line and "is a file, not a folder" in line


def test_the_last_line_of_defence_the_atomic_writer(work, unwritable):
    """Where a location is only known late, the writer itself still gives one clear error."""
    with pytest.raises(AvaDetectError, match="cannot write"):
        with atomic_open(unwritable / "x.csv", "w") as f:
            f.write("x")
    with pytest.raises(AvaDetectError, match="is a file"):
        with atomic_open(work / "notes.txt" / "x.csv", "w") as f:
            f.write("x")
    with pytest.raises(AvaDetectError, match="is a folder"):
        check_writable_location(work / "afolder")
