"""The training loop: one process or many (torchrun + DDP), resumable, validated with frame-mAP.

:func:`train` reads the config once, builds the model, data, optimiser and schedule, and runs
:func:`train_loop`-style epochs:

* loss: binary cross-entropy over all boxes x classes (mean), from the head's logits;
* optional frozen backbone (head only) and frozen batch norm (statistics and affine parameters);
* mixed precision on GPU (``torch.autocast`` + ``GradScaler``), gradient-norm clipping;
* a NaN or infinite loss stops the run with an error naming the iteration;
* a checkpoint every ``checkpoint_period`` epochs (and every ``checkpoint_iters`` iterations if set)
  as ``checkpoints/last.pth``, plus ``checkpoints/epoch_NNNN.pth`` and ``checkpoints/best.pth``
  (best validation mAP);
* metrics as JSON lines in ``metrics.jsonl`` (and TensorBoard events when it is installed).

Resume (``resume=True``) restores model, optimiser, grad scaler, epoch, iteration, random state
and the position in the epoch's sample order from ``checkpoints/last.pth``: on CPU the weights
then end identical to an uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from ava_detect.config import Config, config_to_dict, save_config
from ava_detect.engine import distributed as du
from ava_detect.engine.checkpointing import (
    BEST,
    LAST,
    capture_rng,
    load_training_checkpoint,
    restore_rng,
    save_training_checkpoint,
)
from ava_detect.engine.optim import LRSchedule, build_optimizer, scaled_lr, set_lr
from ava_detect.engine.sample_order import SeededDataset, SeededTrainSampler, worker_context
from ava_detect.errors import AvaDetectError

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a finished run reports."""

    output_dir: Path
    epochs: int
    iterations: int
    best_map: float = float("nan")
    last_map: float = float("nan")
    history: List[Dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


class MetricsWriter:
    """Appends one JSON object per line to ``metrics.jsonl``; mirrors scalars to TensorBoard if installed."""

    def __init__(self, output_dir: Path, enabled: bool):
        self.enabled = enabled
        self.path = output_dir / "metrics.jsonl"
        self._tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

                self._tb = SummaryWriter(log_dir=str(output_dir / "tensorboard"))
            except ImportError:
                self._tb = None

    def write(self, record: Dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is not None:
            step = record.get("iteration", 0)
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in ("iteration", "epoch"):
                    self._tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def freeze_batch_norm(model: nn.Module) -> None:
    """Put every batch-norm layer in eval mode (running statistics fixed) with fixed affine
    parameters. Call once before building the optimiser, and again after each ``model.train()``."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
            for p in m.parameters():
                p.requires_grad_(False)


def bce_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy over all boxes x classes, averaged; 0 (with a gradient path) when K == 0."""
    total = nn.functional.binary_cross_entropy_with_logits(logits.float(), labels.float(), reduction="sum")
    return total / max(labels.numel(), 1)


def _move(batch: Dict[str, Any], device: torch.device) -> Dict[str, Any]:
    out = dict(batch)
    out["inputs"] = [x.to(device, non_blocking=True) for x in batch["inputs"]]
    out["rois"] = batch["rois"].to(device, non_blocking=True)
    out["labels"] = batch["labels"].to(device, non_blocking=True)
    return out


def _progress(total: int, initial: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, dynamic_ncols=True, leave=False)


def train(
    cfg: Config,
    *,
    resume: bool = False,
    progress: bool = True,
    evaluate_fn: Optional[Callable[[nn.Module, int], Dict[str, Any]]] = None,
    stop_after_iterations: Optional[int] = None,
) -> TrainResult:
    """Train the detector described by ``cfg`` (see the module docstring).

    Args:
        cfg: the whole config (read here once).
        resume: continue from ``<output_dir>/checkpoints/last.pth``.
        progress: show a progress bar on the main process.
        evaluate_fn: ``(model, epoch) -> {"mAP": float, ...}``; defaults to frame-mAP on the
            validation split with the configured protocol.
        stop_after_iterations: stop (without a final checkpoint) after this many iterations in
            total; for tests that interrupt and resume a run.
    """
    from ava_detect.data.dataset import build_dataset, collate
    from ava_detect.engine.inference import evaluate_split
    from ava_detect.model import build_model
    from ava_detect.model.checkpoint import load_weights

    t_start = time.perf_counter()
    device = du.init_from_env(cfg.train.device)
    rank, world = du.get_rank(), du.get_world_size()
    main = rank == 0
    tc = cfg.train
    out = Path(tc.output_dir)
    ckpt_dir = out / "checkpoints"
    if main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
    du.barrier()

    torch.manual_seed(tc.seed)  # identical initial weights on every process
    model = build_model(cfg)
    if tc.weights and not resume:
        report = load_weights(model, tc.weights)
        if main:
            logger.info("%s", report.summary())
    if tc.freeze_backbone:
        for p in model.backbone.parameters():
            p.requires_grad_(False)
    if tc.freeze_bn:
        freeze_batch_norm(model)
    model.to(device)

    train_set = build_dataset(cfg, "train")
    if len(train_set) == 0:
        raise AvaDetectError("the training split has no keyframes with boxes", cfg.data.train_gt or None)
    global_batch = tc.batch_size * world
    iters_per_epoch = len(train_set) // global_batch
    if iters_per_epoch == 0:
        raise AvaDetectError(
            f"train.batch_size={tc.batch_size} x {world} process(es) is larger than the training split "
            f"({len(train_set)} keyframes)"
        )
    sampler = SeededTrainSampler(len(train_set), num_replicas=world, rank=rank, seed=tc.seed, drop_last=True)
    loader = DataLoader(
        SeededDataset(train_set), batch_size=tc.batch_size, sampler=sampler, drop_last=True,
        num_workers=cfg.data.num_workers, collate_fn=collate, pin_memory=device.type == "cuda",
        persistent_workers=cfg.data.num_workers > 0, multiprocessing_context=worker_context(cfg.data.num_workers),
    )

    lr = scaled_lr(tc.base_lr, global_batch, tc.reference_batch_size)
    schedule = LRSchedule(lr=lr, epochs=tc.epochs, policy=tc.lr_policy, steps=tuple(tc.lr_steps), decay=tc.lr_decay,
                          warmup_epochs=tc.warmup_epochs, warmup_start_lr=tc.warmup_start_lr)
    if main:
        logger.info("training %d keyframes, %d process(es) x batch %d, %d iterations/epoch, lr %.4g (base %.4g for %d)",
                    len(train_set), world, tc.batch_size, iters_per_epoch, lr, tc.base_lr, tc.reference_batch_size)
    optimizer = build_optimizer(model, lr=lr, momentum=tc.momentum, nesterov=tc.nesterov, weight_decay=tc.weight_decay)
    use_amp = tc.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    start_epoch, iteration, best_map, history = 0, 0, float("nan"), []
    if resume:
        state = load_training_checkpoint(ckpt_dir / LAST, map_location="cpu")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        start_epoch, iteration = int(state["epoch"]), int(state["iteration"])
        best_map = float(state.get("best_map", float("nan")))
        history = list(state.get("history", []))
        restore_rng(state["rng"])
        if main:
            logger.info("resumed from %s at epoch %d, iteration %d", ckpt_dir / LAST, start_epoch, iteration)

    ddp_model: nn.Module = model
    if world > 1:
        ddp_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    metrics = MetricsWriter(out, enabled=main)
    evaluate = evaluate_fn or (lambda m, epoch: evaluate_split(cfg, m, "val", device=device, progress=progress))

    def checkpoint(epoch: int, name: str = LAST) -> None:
        if not main:
            return
        state = {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": {"lr": schedule.lr, "policy": schedule.policy, "epochs": schedule.epochs},
            "scaler": scaler.state_dict() if use_amp else {}, "epoch": epoch, "iteration": iteration,
            "rng": capture_rng(), "config": config_to_dict(cfg), "best_map": best_map, "history": history,
        }
        save_training_checkpoint(ckpt_dir / name, state)

    last_map = float("nan")
    bar = _progress(tc.epochs * iters_per_epoch, iteration, main and progress, "train")
    try:
        for epoch in range(start_epoch, tc.epochs):
            in_epoch = iteration - epoch * iters_per_epoch
            sampler.set_epoch(epoch, start=in_epoch * tc.batch_size)
            ddp_model.train()
            if tc.freeze_bn:
                freeze_batch_norm(model)
            for batch in loader:
                if stop_after_iterations is not None and iteration >= stop_after_iterations:
                    return TrainResult(out, epoch, iteration, best_map, last_map, history, time.perf_counter() - t_start)
                # dropout & co. draw from a generator that depends only on (seed, iteration, rank), so a
                # resumed run continues exactly, whatever the data loader consumed in between
                torch.manual_seed(int(np.random.SeedSequence([tc.seed, iteration, rank]).generate_state(1)[0]))
                lr_now = schedule(epoch + (iteration - epoch * iters_per_epoch) / iters_per_epoch)
                set_lr(optimizer, lr_now)
                batch = _move(batch, device)
                with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                    logits = ddp_model(batch["inputs"], batch["rois"])
                loss = bce_loss(logits, batch["labels"])
                if not torch.isfinite(loss):
                    raise AvaDetectError(
                        f"training loss is {loss.item()} at iteration {iteration + 1} (epoch {epoch + 1}); "
                        f"lower train.base_lr or enable train.clip_grad_norm"
                    )
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if tc.clip_grad_norm > 0:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                iteration += 1
                bar.update(1)
                loss_value = loss.item()
                bar.set_postfix(epoch=epoch + 1, loss=f"{loss_value:.4f}", lr=f"{lr_now:.3g}")
                if iteration % 10 == 0 or iteration == 1:
                    metrics.write({"epoch": epoch + 1, "iteration": iteration, "loss": loss_value, "lr": lr_now,
                                   "boxes": int(batch["rois"].shape[0]), "time": time.perf_counter() - t_start})
                if tc.checkpoint_iters > 0 and iteration % tc.checkpoint_iters == 0:
                    checkpoint(epoch)
            done = epoch + 1
            record: Dict[str, Any] = {"epoch": done, "iteration": iteration}
            if (tc.eval_period > 0 and done % tc.eval_period == 0) or done == tc.epochs:
                bar.clear()
                result = evaluate(model, done)
                last_map = float(result["mAP"])
                record.update({k: v for k, v in result.items() if isinstance(v, (int, float))})
                if main:
                    logger.info("epoch %d: val mAP %.4f", done, last_map)
            if main:
                history.append(record)
            if not math.isnan(last_map) and not (last_map <= best_map) and "mAP" in record:
                best_map = last_map  # first or better (NaN-safe)
                checkpoint(done, BEST)
            if main:
                metrics.write(record)
            if done % max(tc.checkpoint_period, 1) == 0 or done == tc.epochs:
                checkpoint(done)
                if tc.checkpoint_period > 0 and done % tc.checkpoint_period == 0:
                    checkpoint(done, f"epoch_{done:04d}.pth")
            du.barrier()
    finally:
        bar.close()
        metrics.close()
    return TrainResult(out, tc.epochs, iteration, best_map, last_map, history, time.perf_counter() - t_start)
