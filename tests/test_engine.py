"""Training engine: schedule, optimiser, NaN stop, the device setting, and ``ava-detect train`` run as a
command: exact resume after SIGKILL (with data-loader workers), and DDP under ``torchrun`` on CPU (gloo)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ava_detect.config import load_config
from ava_detect.engine.checkpointing import load_training_checkpoint, save_training_checkpoint
from ava_detect.engine.optim import LRSchedule, build_optimizer, scaled_lr
from ava_detect.errors import AvaDetectError

from common import ROOT, TINY_SYNTHETIC, command, subprocess_env


# A configuration small enough for CPU tests: the tiny SlowFast at 64 px, 8 frames.
TINY = TINY_SYNTHETIC


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    from ava_detect.synthetic import make_synthetic_dataset

    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic_dataset(root, seed=3, num_videos=3, seconds=6, size=(96, 72))
    return root


def tiny_config(data: Path, out: Path, *extra: str):
    return load_config(ROOT / "configs" / "tiny.yaml", [*TINY, f"data.root={data}", f"train.output_dir={out}", *extra])


# ----------------------------------------------------------------------------- schedule and optimiser


def test_lr_schedule_warmup_steps_cosine():
    s = LRSchedule(lr=0.1, epochs=20, policy="steps", steps=(10, 15), decay=0.1, warmup_epochs=5, warmup_start_lr=0.000125)
    assert s(0) == pytest.approx(0.000125)
    assert s(2.5) == pytest.approx(0.000125 + (0.1 - 0.000125) / 2)
    assert s(5) == pytest.approx(0.1) and s(9.99) == pytest.approx(0.1)
    assert s(10) == pytest.approx(0.01) and s(15) == pytest.approx(0.001)
    c = LRSchedule(lr=0.2, epochs=10, policy="cosine")
    assert c(0) == pytest.approx(0.2) and c(5) == pytest.approx(0.1) and c(10) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(AvaDetectError, match="lr_policy"):
        LRSchedule(lr=0.1, epochs=1, policy="linear")
    assert scaled_lr(0.1, 16, 64) == pytest.approx(0.025)


def test_optimizer_has_no_weight_decay_on_batch_norm_and_bias():
    model = torch.nn.Sequential(torch.nn.Conv3d(3, 4, 1), torch.nn.BatchNorm3d(4), torch.nn.Linear(4, 2))
    opt = build_optimizer(model, lr=0.1, weight_decay=1e-4)
    decay = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decay == {id(model[0].weight), id(model[2].weight)}
    assert opt.defaults["nesterov"] and opt.defaults["momentum"] == 0.9


def test_checkpoint_is_safe_and_atomic(tmp_path, monkeypatch):
    path = tmp_path / "last.pth"
    state = {"model": {"w": torch.ones(2)}, "optimizer": {}, "epoch": 1, "iteration": 5, "rng": {}, "config": {}}
    save_training_checkpoint(path, state)

    def broken_save(obj, f, *a, **k):
        Path(f).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save_training_checkpoint(path, dict(state, iteration=6))
    monkeypatch.undo()
    assert load_training_checkpoint(path)["iteration"] == 5  # the previous checkpoint survives
    assert [p.name for p in tmp_path.iterdir()] == ["last.pth"]
    (tmp_path / "foreign.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(AvaDetectError, match="foreign.pth"):
        load_training_checkpoint(tmp_path / "foreign.pth")


# ----------------------------------------------------------------------------- the device


def test_device_setting_is_checked_where_it_is_set(tmp_path, capsys):
    from ava_detect import cli

    assert (load_config().train.device, load_config().test.device) == ("auto", "auto")
    cfg = load_config(None, ["train.device=cuda:1", "test.device=cpu"])
    assert (cfg.train.device, cfg.test.device) == ("cuda:1", "cpu")
    with pytest.raises(AvaDetectError, match=r"^command line: bad value for config key 'train.device': "
                                             r"expected auto, cpu, cuda or cuda:N .*found 'gpu'"):
        load_config(None, ["train.device=gpu"])
    path = tmp_path / "c.yaml"
    path.write_text("test:\n  device: cuda:x\n")
    with pytest.raises(AvaDetectError, match=r"c.yaml: bad value for config key 'test.device'.*found 'cuda:x'"):
        load_config(path)
    assert cli.main(["test", "--weights", "w.pth", "test.device=cuda1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("ava-detect test: error: command line: bad value for config key 'test.device': expected auto, "
                   "cpu, cuda or cuda:N (N = GPU index), found 'cuda1'")


def test_select_device(monkeypatch):
    from ava_detect.engine.distributed import select_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device("auto") == select_device("cpu") == torch.device("cpu")
    with pytest.raises(AvaDetectError, match="no CUDA GPU is available"):
        select_device("cuda")
    with pytest.raises(AvaDetectError, match="found 'gpu'"):
        select_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert select_device("auto") == torch.device("cuda", 0)
    assert select_device("auto", local_rank=1, world_size=2) == torch.device("cuda", 1)
    assert select_device("cuda", local_rank=1, world_size=2) == torch.device("cuda", 1)
    assert select_device("cpu", local_rank=1, world_size=2) == torch.device("cpu")
    assert select_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(AvaDetectError, match="with 2 processes"):
        select_device("cuda:0", world_size=2)
    with pytest.raises(AvaDetectError, match="has 2 CUDA GPU"):
        select_device("cuda:2")


def test_process_group_backend_follows_the_device(monkeypatch):
    """Under torchrun, ``cpu`` joins with gloo even where CUDA exists; ``auto`` takes cuda:LOCAL_RANK + NCCL."""
    from ava_detect.engine import distributed as du

    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.append(("set_device", d)))
    monkeypatch.setattr(du.dist, "init_process_group", lambda backend, **kw: calls.append(("join", backend)))
    monkeypatch.setattr(du, "is_initialized", lambda: False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert du.init_from_env("cpu") == torch.device("cpu")
    assert calls == [("join", "gloo")]
    calls.clear()
    assert du.init_from_env("auto") == torch.device("cuda", 1)
    assert calls == [("set_device", torch.device("cuda", 1)), ("join", "nccl")]
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("LOCAL_RANK", "0")
    calls.clear()
    assert du.init_from_env("cpu") == torch.device("cpu") and calls == []  # one process: no group


# ----------------------------------------------------------------------------- the loop


def test_nan_loss_stops_naming_the_iteration(tiny_data, tmp_path, monkeypatch):
    from ava_detect.engine import trainer

    real = trainer.bce_loss
    calls = {"n": 0}

    def loss_that_breaks(logits, labels):
        calls["n"] += 1
        loss = real(logits, labels)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(trainer, "bce_loss", loss_that_breaks)
    cfg = tiny_config(tiny_data, tmp_path / "run", "train.epochs=2")
    with pytest.raises(AvaDetectError, match=r"loss is nan at iteration 3 \(epoch"):
        trainer.train(cfg, progress=False)


def test_train_writes_outputs_and_validates(tiny_data, tmp_path):
    from ava_detect.engine.trainer import train

    out = tmp_path / "run"
    result = train(tiny_config(tiny_data, out, "train.epochs=1"), progress=False)
    assert result.iterations > 0 and 0.0 <= result.last_map <= 1.0
    for name in ("config.yaml", "metrics.jsonl", "checkpoints/last.pth", "checkpoints/best.pth",
                 "checkpoints/epoch_0001.pth"):
        assert (out / name).is_file(), name
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("loss" in r for r in records) and any("mAP" in r for r in records)
    assert load_config(out / "config.yaml").train.output_dir == str(out)


def _train_command(config: Path, log: Path, *extra: str) -> subprocess.Popen:
    """``ava-detect train --config CONFIG EXTRA...`` in a child process (its own session, so that
    whatever it started can be cleaned up), its output into ``log``."""
    with open(log, "a", encoding="utf-8") as f:
        return subprocess.Popen(command("train", "--config", str(config), *extra), env=subprocess_env(OMP_NUM_THREADS="1"),
                                stdout=f, stderr=subprocess.STDOUT, start_new_session=True)


def _finish(proc: subprocess.Popen, log: Path) -> None:
    assert proc.wait(timeout=600) == 0, log.read_text()[-3000:]


def test_train_command_resumes_after_sigkill_exactly(tiny_data, tmp_path):
    """``ava-detect train`` straight; separately ``ava-detect train`` killed with SIGKILL after some
    steps, then ``ava-detect train --resume``: the final weights are identical (CPU, same seed), with
    data-loader workers as in the real recipes."""
    from ava_detect.config import save_config

    extra = ["train.epochs=3", "train.checkpoint_iters=2", "model.dropout=0.5", "train.lr_policy=cosine",
             "data.num_workers=2"]
    straight_cfg = tiny_config(tiny_data, tmp_path / "straight", *extra)
    killed_cfg = tiny_config(tiny_data, tmp_path / "killed", *extra)
    assert straight_cfg.data.num_workers == 2 and straight_cfg.train.device == "cpu"
    save_config(straight_cfg, tmp_path / "straight.yaml")
    save_config(killed_cfg, tmp_path / "killed.yaml")
    log = tmp_path / "train.log"

    _finish(_train_command(tmp_path / "straight.yaml", log), log)

    last = tmp_path / "killed" / "checkpoints" / "last.pth"
    proc = _train_command(tmp_path / "killed.yaml", log)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if last.exists():
                try:
                    if load_training_checkpoint(last)["iteration"] >= 2:  # the first checkpoint: 4 of 6 steps left
                        break
                except AvaDetectError:
                    pass
            time.sleep(0.05)
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        try:  # the killed run's data-loader workers and their server, if any are left
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    killed_at = load_training_checkpoint(last)["iteration"]
    straight = load_training_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pth")
    assert killed_at < straight["iteration"]

    _finish(_train_command(tmp_path / "killed.yaml", log, "--resume"), log)
    text = log.read_text()
    assert text.count("running on cpu") == 3 and "joined process group" not in text, text[-3000:]
    assert f"resumed from {last} at epoch" in text
    resumed = load_training_checkpoint(last)
    assert resumed["iteration"] == straight["iteration"]
    for name, value in straight["model"].items():
        assert torch.equal(value, resumed["model"][name]), name


# ----------------------------------------------------------------------------- distributed (torchrun, 2 gloo processes)


def _torchrun(log: Path, *words: str) -> None:
    """``torchrun --standalone --nproc_per_node 2 -m ava_detect WORDS...``; its output into ``log``.

    ``--standalone``: the workers meet at a store that torchrun's agent already listens on (port 0,
    chosen by the system), so no port is picked, released and raced for.
    """
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            "-m", "ava_detect", *words]
    with open(log, "a", encoding="utf-8") as f:
        proc = subprocess.run(args, env=subprocess_env(OMP_NUM_THREADS="1"), stdout=f, stderr=subprocess.STDOUT,
                              timeout=600)
    assert proc.returncode == 0, log.read_text()[-3000:]


def test_torchrun_train_matches_one_process_averaging_two_half_batches(tiny_data, tmp_path):
    """``torchrun --nproc_per_node 2 -m ava_detect train`` (gloo on CPU) trains and writes its outputs,
    to the weights of one process that averages the gradients of the two ranks' half-batches; then
    ``torchrun ... test`` predicts what one process predicts."""
    from ava_detect.config import save_config
    from ava_detect.data.dataset import build_dataset, collate
    from ava_detect.engine.inference import evaluate_split
    from ava_detect.engine.sample_order import SeededDataset, SeededTrainSampler
    from ava_detect.engine.trainer import bce_loss, freeze_batch_norm
    from ava_detect.model import build_model

    steps = 3  # 5 training keyframes / (2 processes x 2) = 1 iteration per epoch
    cfg = tiny_config(tiny_data, tmp_path / "ddp", f"train.epochs={steps}", "train.freeze_bn=true",
                      "model.dropout=0.0", f"test.output_dir={tmp_path / 'ddp_test'}")
    assert (cfg.train.device, cfg.test.device) == ("cpu", "cpu")
    save_config(cfg, tmp_path / "ddp.yaml")
    log = tmp_path / "torchrun.log"
    _torchrun(log, "train", "--config", str(tmp_path / "ddp.yaml"))
    text = log.read_text()
    for rank in range(2):  # gloo on CPU even on a machine with a GPU: the device is pinned
        assert f"joined process group: rank {rank} of 2 (gloo)" in text, text[-3000:]
    assert text.count("running on cpu") == 2 and "epoch 3: val mAP" in text
    out = tmp_path / "ddp"
    for name in ("config.yaml", "metrics.jsonl", "checkpoints/last.pth", "checkpoints/epoch_0003.pth"):
        assert (out / name).is_file(), name
    assert load_config(out / "config.yaml").train.device == "cpu"
    ddp_state = load_training_checkpoint(out / "checkpoints" / "last.pth")
    assert ddp_state["iteration"] == steps

    # one process: the same two half-batches (the samples and augmentation seeds of ranks 0 and 1),
    # gradients averaged, the same optimiser and schedule
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg)
    dataset = SeededDataset(build_dataset(cfg, "train"))
    samplers = [SeededTrainSampler(len(dataset), num_replicas=2, rank=r, seed=cfg.train.seed, drop_last=True)
                for r in range(2)]
    iters_per_epoch = len(dataset) // (2 * cfg.train.batch_size)
    schedule = LRSchedule(lr=scaled_lr(cfg.train.base_lr, 2 * cfg.train.batch_size, cfg.train.reference_batch_size),
                          epochs=cfg.train.epochs, policy=cfg.train.lr_policy, steps=tuple(cfg.train.lr_steps),
                          decay=cfg.train.lr_decay, warmup_epochs=cfg.train.warmup_epochs,
                          warmup_start_lr=cfg.train.warmup_start_lr)
    optimizer = build_optimizer(model, lr=schedule(0), momentum=cfg.train.momentum, nesterov=cfg.train.nesterov,
                                weight_decay=cfg.train.weight_decay)
    done = 0
    for epoch in range(cfg.train.epochs):
        streams = []
        for s in samplers:
            s.set_epoch(epoch)
            streams.append(list(s))
        for it in range(iters_per_epoch):
            if done == steps:
                break
            model.train()
            freeze_batch_norm(model)
            for g in optimizer.param_groups:
                g["lr"] = schedule(epoch + it / iters_per_epoch)
            optimizer.zero_grad()
            grads = []
            for stream in streams:
                items = stream[it * cfg.train.batch_size:(it + 1) * cfg.train.batch_size]
                batch = collate([dataset[item] for item in items])
                loss = bce_loss(model(batch["inputs"], batch["rois"]), batch["labels"])
                model.zero_grad()
                loss.backward()
                grads.append([None if p.grad is None else p.grad.clone() for p in model.parameters()])
            for p, g0, g1 in zip(model.parameters(), *grads):
                p.grad = None if g0 is None else (g0 + g1) / 2
            optimizer.step()
            done += 1
    assert done == steps
    worst = max((model.state_dict()[k].float() - v.float()).abs().max().item() for k, v in ddp_state["model"].items())
    print(f"largest weight difference, 2-process DDP vs one process averaging two half-batches: {worst:.2e}")
    assert worst <= 1e-5, worst

    # distributed test predictions equal single-process ones (each keyframe once, no padding repeats)
    _torchrun(log, "test", "--config", str(tmp_path / "ddp.yaml"), "--weights", str(out / "checkpoints" / "last.pth"),
              "--no-progress")
    assert log.read_text().count("running on cpu") == 4
    model.load_state_dict(ddp_state["model"])
    single = evaluate_split(cfg, model, "val", device=torch.device("cpu"), progress=False)["evaluator"]
    ours = single.detections_frame()
    from ava_detect.data.ava_files import read_detections

    theirs = read_detections(tmp_path / "ddp_test" / "detections.csv")
    keys = ["video_id", "second", "x1", "y1", "x2", "y2", "action_id"]
    a = ours.assign(video_id=ours["video_id"].astype(str)).sort_values(keys).reset_index(drop=True)
    b = theirs.assign(video_id=theirs["video_id"].astype(str)).sort_values(keys).reset_index(drop=True)
    assert len(a) == len(b) > 0
    assert (a["video_id"] == b["video_id"]).all() and (a["second"] == b["second"]).all()
    assert (a["action_id"] == b["action_id"]).all()
    assert np.allclose(a[["x1", "y1", "x2", "y2"]].to_numpy(float), b[["x1", "y1", "x2", "y2"]].to_numpy(float), atol=5e-4)
    assert np.allclose(a["score"].to_numpy(float), b["score"].to_numpy(float), atol=1e-6)
