"""Error text: every error of ours is one line; a file that cannot be read is said to be unreadable
(not found, a folder, permission denied), never "not a PyTorch checkpoint"; a truncated checkpoint
is called truncated; a text input that is not UTF-8 is named with its line, whichever reader reads it."""

from __future__ import annotations

import builtins
import errno
import os
from pathlib import Path

import pytest
import torch

from ava_detect.cli import main
from ava_detect.engine.checkpointing import load_training_checkpoint
from ava_detect.errors import AvaDetectError, one_line, unreadable_file_error
from ava_detect.model.weights import read_checkpoint
from ava_detect.detection.torchvision_backend import read_weights_file
from ava_detect.serialization import UnreadableTorchFile, load_torch_file

#: The three readers of torch files, with the word each uses for the file.
TORCH_READERS = [
    pytest.param(read_checkpoint, "checkpoint file", id="model weights"),
    pytest.param(load_training_checkpoint, "checkpoint", id="training checkpoint"),
    pytest.param(read_weights_file, "person detector weights file", id="detector weights"),
]


def _error_of(fn, *args) -> AvaDetectError:
    with pytest.raises(AvaDetectError) as e:
        fn(*args)
    return e.value


def _saved(tmp_path: Path, name: str = "ok.pth") -> Path:
    path = tmp_path / name
    torch.save({"model": {"w": torch.zeros(64)}, "optimizer": {}, "epoch": 0, "iteration": 0, "rng": {},
                "config": {}}, path)
    return path


def _tiny_video(path: Path) -> Path:
    import av
    import numpy as np

    with av.open(str(path), "w") as c:
        stream = c.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i, np.uint8), format="rgb24")
            c.mux(stream.encode(frame))
        c.mux(stream.encode(None))
    return path


# ---- one line, always ----------------------------------------------------------------------


@pytest.mark.parametrize("message", ["first\nsecond", "first\r\nsecond\n", "  first  \n\n  second\r", "a\rb"])
def test_error_messages_with_line_breaks_become_one_line(message):
    err = AvaDetectError(message, "file.csv", 3)
    assert str(err) == "file.csv:3: first; second" or str(err) == "file.csv:3: a; b"
    assert "\n" not in str(err) and "\r" not in str(err) and "\n" not in err.message


def test_a_line_break_in_a_path_is_shown_escaped():
    err = AvaDetectError("bad row", "we\nird.csv", 2)
    assert str(err) == "we\\nird.csv:2: bad row"


def test_one_line_keeps_a_single_line_as_it_is():
    assert one_line("expected 8 columns, found 5") == "expected 8 columns, found 5"
    assert one_line("") == ""


def test_a_truncated_checkpoint_is_one_line_saying_truncated(tmp_path):
    good = _saved(tmp_path)
    data = good.read_bytes()
    for cut in (len(data) // 2, len(data) - 30, 200):
        bad = tmp_path / f"cut{cut}.pth"
        bad.write_bytes(data[:cut])
        for reader in (read_checkpoint, load_training_checkpoint, read_weights_file):
            text = str(_error_of(reader, bad))
            assert "\n" not in text and text.startswith(f"{bad}: "), text
            assert "truncated or damaged" in text, text


def test_a_refused_checkpoint_names_the_global_on_one_line(tmp_path):
    from argparse import Namespace

    path = tmp_path / "code.pth"
    torch.save({"model": Namespace(a=1)}, path)  # not in the weights-only safe set
    for reader in (read_checkpoint, load_training_checkpoint):
        with pytest.raises(UnreadableTorchFile if reader is load_training_checkpoint else AvaDetectError) as e:
            reader(path)
        assert len(e.value.detail.splitlines()) > 1 if isinstance(e.value, UnreadableTorchFile) else True
        text = str(e.value)
        assert "\n" not in text and "Namespace" in text, text


def test_the_cli_prints_a_truncated_checkpoint_error_on_one_line(tmp_path, capsys):
    good = _saved(tmp_path)
    bad = tmp_path / "bad.pth"
    bad.write_bytes(good.read_bytes()[:300])
    video = _tiny_video(tmp_path / "v.mp4")
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("v,0000,0.1,0.1,0.5,0.5,,0.9\n")
    rc = main(["annotate", str(video), "--weights", str(bad), "--out", str(tmp_path / "o.mp4"),
               "--detector", "csv", "--boxes", str(boxes), "--second-offset", "0"])
    err = capsys.readouterr().err
    last = err.splitlines()[-1]  # lines before it are the command's progress
    assert rc == 2 and err.endswith(last + "\n") and last.startswith("ava-detect annotate: error: "), err
    assert f"{bad}: " in last and "truncated or damaged" in last, err


# ---- unreadable files are called unreadable -------------------------------------------------


@pytest.mark.parametrize("reader, what", TORCH_READERS)
def test_a_folder_given_as_weights_is_called_a_folder(tmp_path, reader, what):
    folder = tmp_path / "weights.pth"
    folder.mkdir()
    assert str(_error_of(reader, folder)) == f"{folder}: {what} is a folder, expected a file"


@pytest.mark.parametrize("reader, what", TORCH_READERS)
def test_permission_denied_on_weights_is_said_as_such(tmp_path, monkeypatch, reader, what):
    path = _saved(tmp_path)
    real_open = builtins.open

    def denied(file, *args, **kwargs):
        if os.fspath(file) == os.fspath(path):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", denied)
    text = str(_error_of(reader, path))
    assert text == f"{path}: cannot read the {what}: permission denied"
    assert "not a PyTorch" not in text


def test_permission_denied_by_the_file_system(tmp_path):
    path = _saved(tmp_path)
    os.chmod(path, 0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("this user reads files without read permission (root)")
        assert "permission denied" in str(_error_of(read_checkpoint, path))
    finally:
        os.chmod(path, 0o644)


def test_a_read_error_inside_the_file_is_an_io_error_not_bad_contents(tmp_path, monkeypatch):
    path = _saved(tmp_path)

    def failing_load(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(torch, "load", failing_load)
    text = str(_error_of(load_torch_file, path))
    assert text == f"{path}: cannot read the checkpoint: Input/output error"


def test_unreadable_file_error_names_each_kind():
    cases = [(FileNotFoundError(errno.ENOENT, "x"), "label map not found"),
             (IsADirectoryError(errno.EISDIR, "x"), "label map is a folder, expected a file"),
             (PermissionError(errno.EACCES, "x"), "cannot read the label map: permission denied"),
             (OSError(errno.EIO, "Input/output error"), "cannot read the label map: Input/output error")]
    for error, expected in cases:
        assert str(unreadable_file_error(error, "m.pbtxt", "label map")) == f"m.pbtxt: {expected}"


def test_missing_weights_are_not_found(tmp_path):
    for reader in (read_checkpoint, load_training_checkpoint, read_weights_file):
        assert str(_error_of(reader, tmp_path / "none.pth")).endswith(" not found")


def test_garbage_is_still_not_a_checkpoint(tmp_path):
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"this is no checkpoint\n" * 20)
    with pytest.raises(UnreadableTorchFile) as e:
        load_torch_file(path)
    assert not e.value.truncated and not e.value.is_torch_zip
    assert "not a PyTorch checkpoint" in str(_error_of(read_checkpoint, path))


# ---- non-UTF-8 text: every reader names the line ----------------------------------------------

ROW_PRED = b"vid1,0902,0.1,0.1,0.5,0.5,,0.9\n"
ROW_GT = b"vid1,0902,0.1,0.1,0.5,0.5,12,1\n"
ROW_DET = b"vid1,0902,0.1,0.1,0.5,0.5,12,0.9\n"


def _latin1_on_line_3(tmp_path, name, good_row):
    path = tmp_path / name
    path.write_bytes(good_row + good_row + good_row.replace(b"vid1", b"vid\xe9"))
    return path


def _readers():
    from ava_detect.data import ava_files as af
    from ava_detect.detection.csv_backend import CsvPersonDetector
    from ava_detect.evaluation.frame_map import read_inputs

    return [
        ("pred.csv", ROW_PRED, lambda p: af.read_predicted_boxes(p)),
        ("gt.csv", ROW_GT, lambda p: af.read_ground_truth(p)),
        ("det.csv", ROW_DET, lambda p: af.read_detections(p)),
        ("ex.csv", b"vid1,0902\n", lambda p: af.read_exclusions(p)),
        ("boxes.csv", ROW_PRED, lambda p: CsvPersonDetector(path=p)),
        ("det2.csv", ROW_DET, lambda p: read_inputs(gt_path=_plain(p, "g.csv", ROW_GT), pred_path=p)),
        ("list.txt", b"vid1.mkv\n", lambda p: af.read_video_list(p)),
    ]


def _plain(next_to: Path, name: str, row: bytes) -> Path:
    path = next_to.parent / name
    path.write_bytes(row)
    return path


@pytest.mark.parametrize("index", range(7))
def test_every_reader_names_the_line_of_a_non_utf8_byte(tmp_path, index):
    name, row, read = _readers()[index]
    path = _latin1_on_line_3(tmp_path, name, row)
    text = str(_error_of(read, path))
    assert text.startswith(f"{path}:3: ") and "not UTF-8" in text and "0xe9" in text, text


def test_the_eval_command_names_the_line_of_a_non_utf8_prediction(tmp_path, capsys):
    gt = _plain(tmp_path / "x", "gt.csv", ROW_GT)
    pred = _latin1_on_line_3(tmp_path, "pred.csv", ROW_DET)
    rc = main(["eval", "--gt", str(gt), "--pred", str(pred)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and f"{pred}:3:" in err, err
