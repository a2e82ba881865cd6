"""Training: one process or many (torchrun + DDP), resumable, validated with frame-mAP.

:func:`train` reads the config once, builds the model, data, optimiser and schedule, and runs
:func:`~ava_detect.engine.train_loop.train_loop` with one optimisation step per batch
(:class:`SupervisedStep`) and the hooks of :mod:`ava_detect.engine.hooks`:

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
then end identical to an uninterrupted run; rows of ``metrics.jsonl`` logged after that checkpoint
are dropped, so no iteration is logged twice.

The output folder is written only once the model, its weights, the training data and the
checkpoint to resume from have been read without error; a run that bad input stops before its
first checkpoint removes the folder it made.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from ava_detect.config import Config, config_to_dict, save_config
from ava_detect.data.labelmaps import check_num_classes, resolve_labelmap
from ava_detect.engine import distributed as du
from ava_detect.engine.checkpointing import (
    BEST,
    LAST,
    capture_rng,
    load_training_checkpoint,
    restore_rng,
    save_training_checkpoint,
    training_changes,
)
from ava_detect.engine.hooks import (
    CheckpointHook,
    EvalHook,
    MetricsHook,
    ProgressFactory,
    ProgressHook,
    StopOnNonFinite,
)
from ava_detect.engine.optim import LRSchedule, build_optimizer, scaled_lr, set_lr
from ava_detect.engine.sample_order import SeededDataset, SeededTrainSampler, worker_context
from ava_detect.engine.train_loop import Hook, TrainState, train_loop
from ava_detect.errors import AvaDetectError
from ava_detect.io_paths import IOPaths
from ava_detect.reuse import flatten

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
    #: what the initial weights (``train.weights``) loaded, copied and initialised (``LoadReport.summary()``);
    #: "" when training started without them or resumed
    weights_summary: str = ""


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


class SupervisedStep:
    """One step of supervised training: seeded forward pass, BCE loss, (scaled) backward pass,
    optional gradient clipping, optimiser step (see :class:`~ava_detect.engine.train_loop.TrainStep`)."""

    def __init__(self, *, model: nn.Module, ddp_model: nn.Module, optimizer: torch.optim.Optimizer,
                 scaler: "torch.amp.GradScaler", schedule: LRSchedule, sampler: SeededTrainSampler, loader: DataLoader,
                 device: torch.device, rank: int, seed: int, batch_size: int, freeze_bn: bool, clip_grad_norm: float,
                 use_amp: bool):
        self.model, self.ddp_model, self.optimizer, self.scaler = model, ddp_model, optimizer, scaler
        self.schedule, self.sampler, self.loader, self.device = schedule, sampler, loader, device
        self.rank, self.seed, self.batch_size = rank, seed, batch_size
        self.freeze_bn, self.clip_grad_norm, self.use_amp = freeze_bn, clip_grad_norm, use_amp

    def epoch_batches(self, state: TrainState):
        in_epoch = state.iteration - state.epoch * state.iters_per_epoch
        self.sampler.set_epoch(state.epoch, start=in_epoch * self.batch_size)
        self.ddp_model.train()
        if self.freeze_bn:
            freeze_batch_norm(self.model)
        return self.loader

    def forward(self, state: TrainState, batch: Dict[str, Any]) -> torch.Tensor:
        # dropout & co. draw from a generator that depends only on (seed, iteration, rank), so a
        # resumed run continues exactly, whatever the data loader consumed in between
        torch.manual_seed(int(np.random.SeedSequence([self.seed, state.iteration, self.rank]).generate_state(1)[0]))
        ipe = state.iters_per_epoch
        state.lr = self.schedule(state.epoch + (state.iteration - state.epoch * ipe) / ipe)
        set_lr(self.optimizer, state.lr)
        batch = _move(batch, self.device)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.use_amp):
            logits = self.ddp_model(batch["inputs"], batch["rois"])
        state.boxes = int(batch["rois"].shape[0])
        return bce_loss(logits, batch["labels"])

    def update(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.clip_grad_norm > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()


def _build_model(cfg: Config, class_names: Dict[int, str], *, resume: bool, main: bool, device: torch.device
                 ) -> Tuple[nn.Module, str]:
    """``(model, what was loaded)``: the model with its initial weights (``train.weights`` unless resuming;
    a head for other actions is re-initialised, its rows of actions named in ``class_names``, the label map
    trained with, copied: see :func:`~ava_detect.model.weights.load_weights`), frozen parts, on ``device``."""
    from ava_detect.model import build_model
    from ava_detect.model.weights import load_weights

    tc = cfg.train
    torch.manual_seed(tc.seed)  # identical initial weights on every process
    model = build_model(cfg)
    summary = ""
    if tc.weights and not resume:
        report = load_weights(model, tc.weights, target_names=class_names)
        summary = report.summary()
        if main:
            logger.info("%s", summary)
    if tc.freeze_backbone:
        for p in model.backbone.parameters():
            p.requires_grad_(False)
    if tc.freeze_bn:
        freeze_batch_norm(model)
    return model.to(device), summary


def _build_loader(cfg: Config, *, rank: int, world: int, device: torch.device
                  ) -> Tuple[int, SeededTrainSampler, DataLoader, int]:
    """``(keyframes, sampler, loader, iterations per epoch)`` of the training split."""
    from ava_detect.data.dataset import build_dataset, collate

    tc = cfg.train
    train_set = build_dataset(cfg, "train")
    if len(train_set) == 0:
        raise AvaDetectError("the training split has no keyframes with boxes", cfg.data.train_gt or None)
    iters_per_epoch = len(train_set) // (tc.batch_size * world)
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
    return len(train_set), sampler, loader, iters_per_epoch


def _check_same_model(saved: Dict[str, Any], model: nn.Module, path: Path, settings: Dict[str, Any]) -> None:
    """Refuse to resume a run with a model other than the one it was started with, saying which
    model settings changed (rather than a dump of mismatched tensors)."""
    before = (saved.get("config") or {}).get("model") or {}
    now = settings
    theirs, ours = saved["model"], model.state_dict()
    wrong = sorted(set(theirs) ^ set(ours)) + sorted(k for k in set(theirs) & set(ours)
                                                        if tuple(theirs[k].shape) != tuple(ours[k].shape))
    if not wrong:
        return
    changed = ""
    if isinstance(before, dict):
        old_flat, new_flat = dict(flatten(before)), dict(flatten(now))
        diff = [f"{k} {old_flat.get(k)} -> {new_flat.get(k)}" for k in sorted(set(old_flat) | set(new_flat))
                if old_flat.get(k) != new_flat.get(k)]
        changed = f"; model settings changed since the run started: {', '.join(diff)}" if diff else ""
    raise AvaDetectError(
        f"cannot resume: this checkpoint holds another model ({len(wrong)} tensor(s) differ in name or shape, "
        f"first {wrong[0]!r}){changed}; resume with the config the run started with (its config.yaml), "
        f"or train into a new train.output_dir", path)


def _resume(path: Path, cfg: Config, state: TrainState, model: nn.Module, optimizer: torch.optim.Optimizer,
            scaler: "torch.amp.GradScaler", main: bool) -> None:
    """Restore weights, optimiser, scaler, loop state and random state from the checkpoint ``path``
    (refused when ``cfg`` describes another model)."""
    saved = load_training_checkpoint(path, map_location="cpu")
    _check_same_model(saved, model, path, config_to_dict(cfg)["model"])
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    if saved.get("scaler"):
        scaler.load_state_dict(saved["scaler"])
    state.epoch, state.iteration = int(saved["epoch"]), int(saved["iteration"])
    state.best_map = float(saved.get("best_map", float("nan")))
    state.history = list(saved.get("history", []))
    restore_rng(saved["rng"])
    if main:
        logger.info("resumed from %s at epoch %d, iteration %d", path, state.epoch, state.iteration)
        changes = training_changes(saved["config"], cfg)
        if changes:
            logger.warning("resuming with other settings than %s was made with: %s", path, "; ".join(changes))


def _remove_unfinished_run(out: Path, ckpt_dir: Path) -> None:
    """After bad input stopped a run that made ``out`` before it saved any checkpoint: remove ``out``
    (its config.yaml, metrics, empty checkpoints folder), so that nothing half-made is left."""
    if ckpt_dir.is_dir() and any(ckpt_dir.iterdir()):
        return
    shutil.rmtree(out, ignore_errors=True)
    logger.info("removed %s: the run stopped before its first checkpoint", out)


#: The files :func:`train` writes into ``train.output_dir`` (besides ``checkpoints/epoch_NNNN.pth``).
TRAIN_FILES = ("config.yaml", "metrics.jsonl", f"checkpoints/{LAST}", f"checkpoints/{BEST}")


def declared_paths(cfg: Config, *, resume: bool = False) -> IOPaths:
    """What :func:`train` reads (initial weights unless resuming, the data section's files) and
    writes (``train.output_dir``)."""
    from ava_detect.data.layout import data_inputs

    paths = IOPaths().folder("train.output_dir", cfg.train.output_dir, writes=TRAIN_FILES)
    if not resume:
        paths.input("train.weights", cfg.train.weights or None)
    for label, path in data_inputs(cfg.data):
        paths.input(label, path)
    return paths


def train(
    cfg: Config,
    *,
    resume: bool = False,
    progress: Optional[ProgressFactory] = None,
    evaluate_fn: Optional[Callable[[nn.Module, int], Dict[str, Any]]] = None,
    stop_after_iterations: Optional[int] = None,
) -> TrainResult:
    """Train the detector described by ``cfg`` (see the module docstring).

    Args:
        cfg: the whole config (read here once).
        resume: continue from ``<output_dir>/checkpoints/last.pth``.
        progress: ``make_bar(total=, initial=, desc=)`` for progress bars on the main process
            (the CLI passes tqdm's); None or False: none.
        evaluate_fn: ``(model, epoch) -> {"mAP": float, ...}``; defaults to frame-mAP on the
            validation split with the configured protocol.
        stop_after_iterations: stop (without a final checkpoint) after this many iterations in
            total; for tests that interrupt and resume a run.
    """
    from ava_detect.engine.inference import evaluate_split

    t_start = time.perf_counter()
    device = du.init_from_env(cfg.train.device)
    rank, world = du.get_rank(), du.get_world_size()
    main = rank == 0
    tc = cfg.train
    out = Path(tc.output_dir)
    ckpt_dir = out / "checkpoints"
    declared_paths(cfg, resume=resume).check()
    labelmap = resolve_labelmap(kind="all", data=cfg.data)
    check_num_classes(cfg.model.num_classes, labelmap)
    class_names = {int(i): labelmap.names[i] for i in labelmap.ids}  # head column order
    model, weights_summary = _build_model(cfg, class_names, resume=resume, main=main, device=device)
    n_train, sampler, loader, iters_per_epoch = _build_loader(cfg, rank=rank, world=world, device=device)
    lr = scaled_lr(tc.base_lr, tc.batch_size * world, tc.reference_batch_size)
    schedule = LRSchedule(lr=lr, epochs=tc.epochs, policy=tc.lr_policy, steps=tuple(tc.lr_steps), decay=tc.lr_decay,
                          warmup_epochs=tc.warmup_epochs, warmup_start_lr=tc.warmup_start_lr)
    if main:
        logger.info("training %d keyframes, %d process(es) x batch %d, %d iterations/epoch, lr %.4g (base %.4g for %d)",
                    n_train, world, tc.batch_size, iters_per_epoch, lr, tc.base_lr, tc.reference_batch_size)
    optimizer = build_optimizer(model, lr=lr, momentum=tc.momentum, nesterov=tc.nesterov, weight_decay=tc.weight_decay)
    use_amp = tc.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    state = TrainState(epoch=0, iteration=0, max_epochs=tc.epochs, iters_per_epoch=iters_per_epoch)
    if resume:
        _resume(ckpt_dir / LAST, cfg, state, model, optimizer, scaler, main)
    # everything is checked (model, weights, data, checkpoint): only now is the output folder written
    created = main and not out.exists()
    if main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
    du.barrier()
    ddp_model: nn.Module = model
    if world > 1:
        ddp_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    step = SupervisedStep(model=model, ddp_model=ddp_model, optimizer=optimizer, scaler=scaler, schedule=schedule,
                          sampler=sampler, loader=loader, device=device, rank=rank, seed=tc.seed,
                          batch_size=tc.batch_size, freeze_bn=tc.freeze_bn, clip_grad_norm=tc.clip_grad_norm,
                          use_amp=use_amp)

    def save(s: TrainState, name: str) -> None:
        if not main:
            return
        save_training_checkpoint(ckpt_dir / name, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": {"lr": schedule.lr, "policy": schedule.policy, "epochs": schedule.epochs},
            "scaler": scaler.state_dict() if use_amp else {}, "epoch": s.epoch, "iteration": s.iteration,
            "rng": capture_rng(), "config": config_to_dict(cfg), "best_map": s.best_map, "history": s.history,
            "class_names": class_names,
        })

    if evaluate_fn is not None:
        evaluate = lambda epoch: evaluate_fn(model, epoch)  # noqa: E731
    else:
        evaluate = lambda epoch: evaluate_split(cfg, model, "val", device=device, progress=progress)  # noqa: E731
    hooks: List[Hook] = [StopOnNonFinite(model)]
    if main and progress:
        hooks.append(ProgressHook(progress))
    hooks += [EvalHook(evaluate, tc.eval_period, log=main), MetricsHook(out, main, t_start),
              CheckpointHook(save, every_iters=tc.checkpoint_iters, period=tc.checkpoint_period, barrier=du.barrier)]
    try:
        finished = train_loop(state, step, hooks, stop_after_iterations)
    except AvaDetectError:
        if created:
            _remove_unfinished_run(out, ckpt_dir)
        raise
    return TrainResult(out, tc.epochs if finished else state.epoch, state.iteration, state.best_map, state.last_map,
                       state.history, time.perf_counter() - t_start, weights_summary)
