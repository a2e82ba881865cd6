"""The one safe torch reader and the one atomic torch writer."""

from __future__ import annotations

import pytest
import torch

from ava_detect.errors import AvaDetectError
from ava_detect.serialization import UnreadableTorchFile, load_torch_file, save_torch_file


class _CreatesFile:
    """Unpickling this calls ``open(path, "w")``: a file appears if the loader runs pickled code."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_round_trip_and_atomic_write(tmp_path):
    path = tmp_path / "sub" / "state.pth"
    path.parent.mkdir()
    save_torch_file(path, {"w": torch.arange(3), "epoch": 2})
    got = load_torch_file(path)
    assert torch.equal(got["w"], torch.arange(3)) and got["epoch"] == 2
    assert [p.name for p in path.parent.iterdir()] == ["state.pth"]


def test_missing_garbage_and_code_are_errors_that_name_the_file(tmp_path):
    with pytest.raises(AvaDetectError, match="weights file not found"):
        load_torch_file(tmp_path / "absent.pth", what="weights file")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(UnreadableTorchFile) as e:
        load_torch_file(garbage)
    assert str(garbage) in str(e.value) and "cannot read checkpoint safely" in str(e.value) and not e.value.refused
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save({"hook": _CreatesFile(str(marker))}, evil)
    with pytest.raises(UnreadableTorchFile) as e:
        load_torch_file(evil)
    assert e.value.refused and not marker.exists()
