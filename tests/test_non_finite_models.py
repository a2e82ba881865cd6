"""Class 2 of bad input, its second half: a model that produces NaN. Training stops at the first
iteration whose loss or whose updated weights are not finite, before a checkpoint or a validation
sees them; ``test`` and ``annotate`` refuse to write scores that are not numbers (``eval`` itself
rejects such rows). The first half (text read with one policy) is ``test_bad_text_inputs.py``."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from ava_detect.config import load_config
from ava_detect.errors import AvaDetectError
from ava_detect.model import build_model
from ava_detect.model.detector import require_finite_scores
from ava_detect.model.weights import save_checkpoint

from common import ROOT, TINY_SYNTHETIC, cli_error, shared_path

TINY_YAML = ROOT / "configs" / "tiny.yaml"
#: The tiny SlowFast at 64 px on a small synthetic set.
TINY = TINY_SYNTHETIC


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from ava_detect.synthetic import make_synthetic_dataset

    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic_dataset(root, seed=5, num_videos=3, seconds=5, size=(96, 72))
    return root


def _config(data: Path, out: Path, *extra: str):
    return load_config(TINY_YAML, [*TINY, f"data.root={data}", f"train.output_dir={out}", *extra])


def _nan_checkpoint(path: Path, num_classes: int, part: str = "head") -> Path:
    torch.manual_seed(0)
    model = build_model(load_config(TINY_YAML, [f"model.num_classes={num_classes}", "model.num_frames=8"]))
    with torch.no_grad():
        tensor = next(p for n, p in model.named_parameters() if n.startswith(part) and p.ndim > 1)
        tensor.view(-1)[0] = float("nan")
    save_checkpoint(path, model=model)
    return path


def test_weights_made_infinite_by_a_step_stop_training_before_any_checkpoint(data, tmp_path):
    from ava_detect.engine.trainer import train

    out = tmp_path / "run"
    # a learning rate that sends the weights past float32's range at the first step; the loss of that
    # step is still finite, so only the weights check can stop it
    with pytest.raises(AvaDetectError, match=r"weights non-finite .* at iteration 1 \(epoch 1\)"):
        train(_config(data, out, "train.epochs=2", "train.base_lr=1e38", "train.weight_decay=0"), progress=False)
    assert not list((out / "checkpoints").glob("*.pth"))


def test_weights_broken_late_in_a_run_stop_it_at_that_iteration(data, tmp_path, monkeypatch):
    from ava_detect.engine import trainer

    real_update = trainer.SupervisedStep.update
    calls = {"n": 0}

    def update_then_break(self, loss):
        real_update(self, loss)
        calls["n"] += 1
        if calls["n"] == 2:  # a buffer (batch-norm statistics), not only a parameter
            buffer = next(b for n, b in self.model.named_buffers() if n.endswith("running_var"))
            buffer.view(-1)[0] = float("inf")

    monkeypatch.setattr(trainer.SupervisedStep, "update", update_then_break)
    with pytest.raises(AvaDetectError, match=r"at iteration 2 .*running_var"):
        trainer.train(_config(data, tmp_path / "run", "train.epochs=3"), progress=False)


def test_nan_loss_from_the_command_line_is_one_line(data, tmp_path, capsys, monkeypatch):
    from ava_detect.engine import trainer

    monkeypatch.setattr(trainer, "bce_loss", lambda logits, labels: (logits * float("nan")).mean())
    line = cli_error(capsys, "train", "--config", TINY_YAML, *TINY, f"data.root={data}", "train.epochs=1",
                     "--output-dir", tmp_path / "run")
    assert "loss is nan at iteration 1" in line
    assert not list((tmp_path / "run" / "checkpoints").glob("*.pth"))


def test_test_refuses_a_model_that_gives_nan_scores(data, tmp_path, capsys):
    weights = _nan_checkpoint(tmp_path / "nan.pth", 7)
    out = tmp_path / "tested"
    line = cli_error(capsys, "test", "--config", TINY_YAML, *TINY, f"data.root={data}", "--weights", weights,
                     "--output-dir", out, "--no-progress")
    assert "non-finite scores" in line and "nothing was written" in line
    assert not out.exists() or not any(out.iterdir())


def test_annotate_refuses_a_model_that_gives_nan_scores(tmp_path, capsys):
    video = shared_path("videos/carphone_176x144.mp4")
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("carphone_176x144,0000,0.2,0.1,0.8,0.9,,0.99\ncarphone_176x144,0001,0.2,0.1,0.8,0.9,,0.99\n")
    weights = _nan_checkpoint(tmp_path / "nan.pth", 80, part="backbone")
    line = cli_error(capsys, "annotate", video, "--config", TINY_YAML, "--weights", weights, "--device", "cpu",
                     "--detector", "csv", "--boxes", boxes, "--out", tmp_path / "o.mp4", "--csv", tmp_path / "o.csv",
                     "--json", tmp_path / "o.json")
    assert "non-finite scores" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boxes.csv", "nan.pth"]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_require_finite_scores_counts_the_boxes(bad):
    probs = torch.rand(5, 3)
    assert require_finite_scores(probs) is probs
    probs[1, 2] = bad
    probs[3, 0] = bad
    with pytest.raises(AvaDetectError, match="for 2 of 5 boxes"):
        require_finite_scores(probs)
