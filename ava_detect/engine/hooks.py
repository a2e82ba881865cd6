"""The hooks of a training run (:mod:`ava_detect.engine.train_loop`), in the spirit of
detectron2's ``engine/hooks.py``: each does one thing at the loop's points.

The order :func:`~ava_detect.engine.trainer.train` gives them: :class:`StopOnNonFinite`,
:class:`ProgressHook`, :class:`EvalHook`, :class:`MetricsHook`, :class:`CheckpointHook` (at the
end of an epoch: validate, then record the epoch, then save the checkpoints that contain it).
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from ava_detect.engine.train_loop import Hook, TrainState
from ava_detect.errors import AvaDetectError
from ava_detect.io import atomic_open

logger = logging.getLogger(__name__)

#: ``make_bar(total=..., initial=..., desc=...)`` -> an object with ``update(n)``,
#: ``set_postfix(**values)``, ``clear()`` and ``close()`` (a ``tqdm`` bar, made by the CLI).
ProgressFactory = Callable[..., Any]


class StopOnNonFinite(Hook):
    """Stops the run with an error naming the iteration when the loss is NaN or infinite (before
    that step updates anything), or when a step leaves a weight or a normalisation statistic of
    ``model`` NaN or infinite (before any checkpoint or validation sees it).

    Args:
        model: the model being trained (the module itself, not its DDP wrapper).
    """

    def __init__(self, model: Any):
        self.model = model

    def after_forward(self, state: TrainState) -> None:
        import torch

        if not torch.isfinite(state.loss):
            raise AvaDetectError(
                f"training loss is {state.loss.item()} at iteration {state.iteration + 1} (epoch {state.epoch + 1}); "
                f"lower train.base_lr or enable train.clip_grad_norm"
            )

    def after_step(self, state: TrainState) -> None:
        import torch

        tensors = [t for t in (*self.model.parameters(), *self.model.buffers()) if t.is_floating_point()]
        if not tensors or bool(torch.stack([t.detach().float().sum() for t in tensors]).isfinite().all()):
            return  # a sum is finite only when every element is (one check, one sync per step)
        names = [n for n, t in (*self.model.named_parameters(), *self.model.named_buffers())
                 if t.is_floating_point() and not bool(t.detach().isfinite().all())]
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        raise AvaDetectError(
            f"training made the weights non-finite (NaN or infinite) at iteration {state.iteration} "
            f"(epoch {state.epoch + 1}): {shown}; nothing of this step was saved; lower train.base_lr or "
            f"enable train.clip_grad_norm"
        )


class ProgressHook(Hook):
    """A progress bar over all iterations of the run, made by ``make_bar`` (the CLI's)."""

    def __init__(self, make_bar: ProgressFactory):
        self.make_bar = make_bar
        self.bar: Any = None

    def before_train(self, state: TrainState) -> None:
        self.bar = self.make_bar(total=state.max_epochs * state.iters_per_epoch, initial=state.iteration, desc="train")

    def after_step(self, state: TrainState) -> None:
        self.bar.update(1)
        self.bar.set_postfix(epoch=state.epoch + 1, loss=f"{state.loss.item():.4f}", lr=f"{state.lr:.3g}")

    def after_epoch(self, state: TrainState) -> None:
        self.bar.clear()  # validation logs and shows its own bar next

    def after_train(self, state: TrainState) -> None:
        if self.bar is not None:
            self.bar.close()


class EvalHook(Hook):
    """Validates every ``period`` epochs (0: only at the end) and after the last epoch; keeps
    ``state.last_map`` and ``state.best_map``, adds the numbers to ``state.record``.

    Args:
        evaluate: ``epoch -> {"mAP": float, ...}`` (numbers go into the epoch's record).
    """

    def __init__(self, evaluate: Callable[[int], Dict[str, Any]], period: int, log: bool):
        self.evaluate = evaluate
        self.period = period
        self.log = log

    def after_epoch(self, state: TrainState) -> None:
        done = state.epoch
        if not ((self.period > 0 and done % self.period == 0) or done == state.max_epochs):
            return
        result = self.evaluate(done)
        state.last_map = float(result["mAP"])
        state.record.update({k: v for k, v in result.items() if isinstance(v, (int, float))})
        if self.log:
            logger.info("epoch %d: val mAP %.4f", done, state.last_map)
        if not math.isnan(state.last_map) and not (state.last_map <= state.best_map) and "mAP" in state.record:
            state.best_map = state.last_map  # first or better (NaN-safe)
            state.new_best = True


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

    def discard_after(self, iteration: int) -> int:
        """Drop the rows of ``metrics.jsonl`` logged after ``iteration`` (rewriting it atomically), so a
        resumed run does not log those iterations twice; rows of an earlier run go when a run starts
        from 0. A line cut short by a kill is dropped too. Returns the number of lines dropped."""
        if not self.enabled or not self.path.is_file():
            return 0
        lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        kept = []
        for line in lines:
            try:
                record = json.loads(line)
                if int(record["iteration"]) <= iteration:
                    kept.append(line)
            except (ValueError, TypeError, KeyError):
                pass
        if len(kept) < len(lines):
            with atomic_open(self.path, "w", encoding="utf-8") as f:
                f.write("".join(line + "\n" for line in kept))
            logger.info("%s: dropped %d rows logged after iteration %d", self.path, len(lines) - len(kept), iteration)
        return len(lines) - len(kept)

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


class MetricsHook(Hook):
    """On the main process: the loss every 10 iterations (and the first) and each epoch's record
    into ``metrics.jsonl``; each epoch's record into ``state.history``. Before the first step, rows
    beyond the iteration the run starts from are dropped (:meth:`MetricsWriter.discard_after`).

    Args:
        start_time: ``time.perf_counter()`` at the start of the run (for the ``time`` field).
    """

    def __init__(self, output_dir: Path, main: bool, start_time: float, period: int = 10):
        self.writer = MetricsWriter(output_dir, enabled=main)
        self.main = main
        self.start_time = start_time
        self.period = period

    def before_train(self, state: TrainState) -> None:
        self.writer.discard_after(state.iteration)

    def after_step(self, state: TrainState) -> None:
        if state.iteration % self.period == 0 or state.iteration == 1:
            self.writer.write({"epoch": state.epoch + 1, "iteration": state.iteration, "loss": state.loss.item(),
                               "lr": state.lr, "boxes": state.boxes, "time": time.perf_counter() - self.start_time})

    def after_epoch(self, state: TrainState) -> None:
        if self.main:
            state.history.append(state.record)
            self.writer.write(state.record)

    def after_train(self, state: TrainState) -> None:
        self.writer.close()


class CheckpointHook(Hook):
    """Saves ``last.pth`` every ``every_iters`` iterations (0: never within an epoch) and every
    ``period`` epochs (and after the last), ``epoch_NNNN.pth`` every ``period`` epochs and
    ``best.pth`` when validation gives a new best mAP; then all processes wait for each other.

    Args:
        save: ``(state, file name) -> None`` writes the checkpoint (on the main process).
        barrier: called at the end of each epoch.
    """

    def __init__(self, save: Callable[[TrainState, str], None], *, every_iters: int, period: int,
                 barrier: Optional[Callable[[], None]] = None):
        from ava_detect.engine.checkpointing import BEST, LAST

        self.save = save
        self.every_iters = every_iters
        self.period = period
        self.barrier = barrier
        self.last, self.best = LAST, BEST

    def after_step(self, state: TrainState) -> None:
        if self.every_iters > 0 and state.iteration % self.every_iters == 0:
            self.save(state, self.last)

    def after_epoch(self, state: TrainState) -> None:
        done = state.epoch
        if state.new_best:
            self.save(state, self.best)
        if done % max(self.period, 1) == 0 or done == state.max_epochs:
            self.save(state, self.last)
            if self.period > 0 and done % self.period == 0:
                self.save(state, f"epoch_{done:04d}.pth")
        if self.barrier is not None:
            self.barrier()
