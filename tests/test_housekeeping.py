"""Housekeeping after faults: a killed writer's temporary files are removed by the next write of the
same path (never another path's, never a running process's); a resumed training logs no iteration
twice; a run stopped by bad input leaves no half-made output folder (train, detect offline,
quickstart with a misspelt key)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import pytest
import torch

from ava_detect import io as aio
from ava_detect.cli import main
from ava_detect.errors import AvaDetectError

from common import ROOT, subprocess_env

HOUR_AGO = time.time() - 3600


def _dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _leftover(folder: Path, name: str, *, mtime: float = HOUR_AGO, folder_kind: bool = False) -> Path:
    path = folder / name
    if folder_kind:
        path.mkdir()
        (path / "frame_000001.jpg").write_bytes(b"x")
    else:
        path.write_bytes(b"half written")
    os.utime(path, (mtime, mtime))
    return path


# ---- temporary files of killed writers -------------------------------------------------------


def test_a_sigkilled_writer_leaves_a_temporary_that_the_next_run_removes(tmp_path):
    target = tmp_path / "boxes.csv"
    killed = ("import os, signal, sys\nfrom ava_detect.io import temporary_path_for\n"
              "tmp = temporary_path_for(sys.argv[1])\ntmp.write_text('half')\nprint(tmp, flush=True)\n"
              "os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", killed, str(target)], env=subprocess_env(), capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == -signal.SIGKILL
    left = Path(proc.stdout.strip())
    assert left.is_file() and left.name.startswith(".boxes.") and left.name.endswith(".tmp.csv")
    rerun = ("import sys\nfrom ava_detect.io import atomic_open\n"
             "with atomic_open(sys.argv[1]) as f:\n    f.write('done\\n')\n")
    subprocess.run([sys.executable, "-c", rerun, str(target)], env=subprocess_env(), check=True, timeout=120, cwd=ROOT)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boxes.csv"] and target.read_text() == "done\n"


def test_only_temporaries_of_the_same_path_whose_process_is_gone_are_removed(tmp_path):
    dead = _dead_pid()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = _leftover(tmp_path, f".out.{dead}.abcd_123.tmp.csv")
        running = _leftover(tmp_path, f".out.{sleeper.pid}.abcd_124.tmp.csv")  # its writer still runs
        other_path = _leftover(tmp_path, f".out2.{dead}.abcd_125.tmp.csv")  # belongs to out2.csv
        other_suffix = _leftover(tmp_path, f".out.{dead}.abcd_126.tmp.json")  # belongs to out.json
        user_file = _leftover(tmp_path, ".out.notes.tmp.csv")  # not our pattern
        with aio.atomic_open(tmp_path / "out.csv") as f:
            f.write("x")
        assert not stale.exists()
        assert running.exists() and other_path.exists() and other_suffix.exists() and user_file.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_temporaries_newer_than_this_process_are_kept(tmp_path):
    """A temporary made after this process started may be another machine's writer (shared folder)."""
    recent = _leftover(tmp_path, f".out.{_dead_pid()}.abcd_123.tmp.csv", mtime=time.time() + 5)
    aio.remove_stale_temporaries(tmp_path / "out.csv")
    assert recent.exists()


def test_temporaries_without_a_pid_from_earlier_versions_go_by_age(tmp_path):
    old = _leftover(tmp_path, ".movie.k3j_x9a2.tmp.mp4")
    new = _leftover(tmp_path, ".movie.k3j_x9a3.tmp.mp4", mtime=time.time() + 5)
    assert aio.remove_stale_temporaries(tmp_path / "movie.mp4") == [old]
    assert not old.exists() and new.exists()


def test_temporary_names_carry_the_pid_and_the_suffix(tmp_path):
    tmp = aio.temporary_path_for(tmp_path / "video.mp4")
    assert tmp.name.startswith(f".video.{os.getpid()}.") and tmp.name.endswith(".tmp.mp4")
    folder = aio.temporary_dir_for(tmp_path / "vid1")
    assert folder.is_dir() and folder.name.startswith(f".vid1.{os.getpid()}.") and folder.name.endswith(".tmp")


def test_prep_videos_rerun_removes_what_a_killed_run_left(tmp_path, capsys):
    from test_data_prep import make_raw_movie

    raw, out = tmp_path / "raw", tmp_path / "videos"
    raw.mkdir()
    out.mkdir()
    make_raw_movie(raw / "movieA.mkv", last=901)
    left = _leftover(out, f".movieA.{_dead_pid()}.q1w2e3r4.tmp.mp4")
    assert main(["prep", "videos", "--src", str(raw), "--out", str(out), "--no-progress"]) == 0
    assert not left.exists() and (out / "movieA.mp4").is_file()


def test_prep_frames_rerun_removes_a_killed_runs_temporary_folder(tmp_path):
    from test_data_prep import make_raw_movie

    from ava_detect.prep.frames import extract_frames
    from ava_detect.prep.videos import EncodeSettings, cut_video

    make_raw_movie(tmp_path / "vid1.mkv", last=901)
    video = tmp_path / "vid1.mp4"
    cut_video(tmp_path / "vid1.mkv", video, EncodeSettings(end=901))
    frames = tmp_path / "frames"
    frames.mkdir()
    left = _leftover(frames, f".vid1.{_dead_pid()}.a1b2c3d4.tmp", folder_kind=True)
    legacy = _leftover(frames, ".vid1.zz9_8y7x.tmp", folder_kind=True)  # made by an earlier version
    assert extract_frames(video, frames) == 30
    assert sorted(p.name for p in frames.iterdir()) == [".vid1.settings.json", "vid1"]
    assert not left.exists() and not legacy.exists()


def test_annotate_rerun_removes_what_a_killed_run_left(tiny_data, tmp_path, capsys):
    from ava_detect.config import load_config
    from ava_detect.model import build_model, save_checkpoint

    weights = tmp_path / "tiny.pth"
    save_checkpoint(weights, model=build_model(load_config(ROOT / "configs" / "tiny.yaml", ["model.num_classes=7"])))
    video = sorted((tiny_data / "videos").glob("*.mp4"))[0]
    out = tmp_path / "out"
    out.mkdir()
    dead = _dead_pid()
    left = [_leftover(out, f".ann.{dead}.k1l2m3n4.tmp{suffix}") for suffix in (".mp4", ".csv", ".json")]
    rc = main(["annotate", "--config", str(ROOT / "configs" / "tiny.yaml"), "--weights", str(weights), "--out", str(out / "ann.mp4"), "--csv", str(out / "ann.csv"),
               "--json", str(out / "ann.json"), "--detector", "csv", "--boxes",
               str(tiny_data / "annotations" / "train.csv"), "--second-offset", "900", "--device", "cpu",
               "--labelmap", str(tiny_data / "annotations" / "labelmap.pbtxt"), str(video), "model.num_classes=7"])
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["ann.csv", "ann.json", "ann.mp4"]
    assert not any(p.exists() for p in left)


# ---- metrics after resume --------------------------------------------------------------------


def _records(path: Path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _signature(records):
    return [(r.get("epoch"), r["iteration"], "loss" in r, r.get("loss")) for r in records]


class _CountingStep:
    """A training step without a model: ``ipe`` batches per epoch (from where a resumed run stands), a
    loss that depends only on the iteration."""

    def __init__(self, ipe: int):
        self.ipe = ipe

    def epoch_batches(self, state):
        return range(state.iteration - state.epoch * self.ipe, self.ipe)

    def forward(self, state, batch):
        state.lr, state.boxes = 0.1, 1
        return torch.tensor(1.0 / (state.iteration + 1))

    def update(self, loss):
        pass


def _run(out: Path, *, ipe: int, epochs: int, start=None, stop=None):
    """The loop with the trainer's metrics and checkpoint hooks; checkpoints are kept in a dict."""
    from ava_detect.engine.hooks import CheckpointHook, MetricsHook
    from ava_detect.engine.train_loop import TrainState, train_loop

    saved = {}

    def save(state, name):
        saved[name] = (state.epoch, state.iteration)

    state = TrainState(epoch=0, iteration=0, max_epochs=epochs, iters_per_epoch=ipe)
    if start is not None:
        state.epoch, state.iteration = start
    hooks = [MetricsHook(out, True, time.perf_counter()), CheckpointHook(save, every_iters=0, period=1)]
    train_loop(state, _CountingStep(ipe), hooks, stop)
    return saved


def test_resume_logs_no_iteration_twice_and_matches_a_straight_run(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    straight.mkdir()
    killed.mkdir()
    _run(straight, ipe=7, epochs=3)
    saved = _run(killed, ipe=7, epochs=3, stop=12)  # killed at iteration 12: last.pth is epoch 1's
    assert saved["last.pth"] == (1, 7)
    assert [r["iteration"] for r in _records(killed / "metrics.jsonl")] == [1, 7, 10]  # 10: after the checkpoint
    _run(killed, ipe=7, epochs=3, start=saved["last.pth"])
    resumed = _records(killed / "metrics.jsonl")
    assert [r["iteration"] for r in resumed] == [1, 7, 10, 14, 20, 21]
    assert _signature(resumed) == _signature(_records(straight / "metrics.jsonl"))


def test_train_resume_drops_rows_after_its_checkpoint(tiny_data, tmp_path):
    """The trainer itself: a checkpoint at iteration 2, rows of a run that went further; resuming
    drops them before logging its own."""
    from test_engine import tiny_config

    from ava_detect.engine.trainer import train

    out = tmp_path / "run"
    train(tiny_config(tiny_data, out, "train.epochs=1"), progress=False, evaluate_fn=lambda model, epoch: {"mAP": 0.5})
    metrics = out / "metrics.jsonl"
    first = _records(metrics)
    assert [r["iteration"] for r in first] == [1, 2]  # the first step, the epoch record (2 steps per epoch)
    with metrics.open("a") as f:  # what a run killed after its checkpoint would have logged
        f.write(json.dumps({"epoch": 2, "iteration": 3, "loss": 9.0}) + "\n")
    train(tiny_config(tiny_data, out, "train.epochs=2"), resume=True, progress=False,
          evaluate_fn=lambda model, epoch: {"mAP": 0.5})
    rows = _records(metrics)
    assert 9.0 not in [r.get("loss") for r in rows] and rows[:len(first)] == first


def test_metrics_rows_after_the_start_and_a_cut_line_are_dropped(tmp_path):
    from ava_detect.engine.hooks import MetricsWriter

    path = tmp_path / "metrics.jsonl"
    rows = [{"epoch": 1, "iteration": i, "loss": 0.5} for i in (1, 10, 20, 30)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"epoch": 1, "iterat')
    writer = MetricsWriter(tmp_path, enabled=True)
    assert writer.discard_after(20) == 2
    assert [r["iteration"] for r in _records(path)] == [1, 10, 20]
    assert writer.discard_after(0) == 3 and path.read_text() == ""  # a run from 0: an earlier run's rows go
    writer.close()


def test_metrics_of_other_processes_are_left_alone(tmp_path):
    from ava_detect.engine.hooks import MetricsWriter

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"iteration": 5}\n')
    assert MetricsWriter(tmp_path, enabled=False).discard_after(0) == 0
    assert path.read_text() == '{"iteration": 5}\n'


# ---- no half-made output folders -------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    from ava_detect.synthetic import make_synthetic_dataset

    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic_dataset(root, seed=3, num_videos=3, seconds=6, size=(96, 72))
    return root


@pytest.mark.parametrize("extra, resume, message", [
    (["train.batch_size=1000"], False, "larger than the training split"),
    (["train.weights=missing.pth"], False, "not found"),
    (["data.train_gt=annotations/none.csv"], False, "not found"),
    ([], True, "checkpoint not found"),
])
def test_train_stopped_by_bad_input_leaves_no_output_folder(tiny_data, tmp_path, extra, resume, message):
    from test_engine import tiny_config

    from ava_detect.engine.trainer import train

    out = tmp_path / "run"
    with pytest.raises(AvaDetectError, match=message):
        train(tiny_config(tiny_data, out, "train.epochs=1", *extra), resume=resume, progress=False)
    assert not out.exists()


def test_train_stopped_before_its_first_checkpoint_removes_what_it_made(tiny_data, tmp_path, monkeypatch):
    from test_engine import tiny_config

    from ava_detect.engine import trainer

    def bad_validation(model, epoch):
        raise AvaDetectError("validation ground truth not found", "val.csv")

    out = tmp_path / "run"
    with pytest.raises(AvaDetectError, match="validation"):
        trainer.train(tiny_config(tiny_data, out, "train.epochs=1"), progress=False, evaluate_fn=bad_validation)
    assert not out.exists()

    out.mkdir()  # a folder the run did not make is left as it is
    (out / "notes.txt").write_text("mine")
    with pytest.raises(AvaDetectError, match="validation"):
        trainer.train(tiny_config(tiny_data, out, "train.epochs=1"), progress=False, evaluate_fn=bad_validation)
    assert (out / "notes.txt").read_text() == "mine" and (out / "config.yaml").is_file()


def test_offline_detect_leaves_no_parts_folder(tiny_data, tmp_path, monkeypatch, capsys):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    out = tmp_path / "boxes.csv"
    rc = main(["detect", "--videos", str(tiny_data / "videos"), "--out", str(out), "--detector", "torchvision",
               "--device", "cpu"])
    assert rc == 2 and "could not download" in capsys.readouterr().err
    assert sorted(tmp_path.iterdir()) == []


def test_quickstart_checks_every_override_before_any_work(tmp_path, capsys, monkeypatch):
    from ava_detect import synthetic

    def must_not_render(*args, **kwargs):
        raise AssertionError("rendered before the config was checked")

    monkeypatch.setattr(synthetic, "make_synthetic_dataset", must_not_render)
    for bad in ("train.epohcs=2", "train.epochs=-2", "model.arch=nonesuch"):
        work = tmp_path / bad.split("=")[0]
        rc = main(["quickstart", "--workdir", str(work), "--videos", "4", bad])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1 and bad.split("=")[0] in err, err
        assert not work.exists()
