"""SGD with PySlowFast's AVA recipe and its learning-rate schedule.

* SGD, momentum 0.9, Nesterov, weight decay 1e-7 on weights; none on batch-norm parameters and
  biases (as PySlowFast's ``BN.WEIGHT_DECAY = 0``).
* Learning-rate scaling rule: ``lr = base_lr * global_batch / reference_batch_size`` (linear
  scaling, Goyal et al. 2017), with ``global_batch = batch_size_per_process * world_size``.
* Schedule, as a function of the fractional epoch: linear warm-up from ``warmup_start_lr`` to the
  schedule's value at ``warmup_epochs``, then ``steps`` (multiply by ``lr_decay`` at each epoch in
  ``lr_steps``) or ``cosine`` (half cosine from ``lr`` to 0 at ``epochs``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Sequence

import torch
from torch import nn

from ava_detect.errors import AvaDetectError

_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.GroupNorm, nn.LayerNorm)


def scaled_lr(base_lr: float, global_batch: int, reference_batch_size: int) -> float:
    """The linear scaling rule: ``base_lr * global_batch / reference_batch_size``."""
    return base_lr * global_batch / reference_batch_size


def build_optimizer(
    model: nn.Module, *, lr: float, momentum: float = 0.9, nesterov: bool = True, weight_decay: float = 1e-7
) -> torch.optim.SGD:
    """SGD over the trainable parameters; normalisation parameters and biases get no weight decay."""
    decay: List[nn.Parameter] = []
    no_decay: List[nn.Parameter] = []
    seen = set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            (no_decay if isinstance(module, _NORM_TYPES) or name == "bias" else decay).append(p)
    groups = [g for g in ({"params": decay, "weight_decay": weight_decay},
                          {"params": no_decay, "weight_decay": 0.0}) if g["params"]]
    if not groups:
        raise AvaDetectError("the model has no trainable parameters (is everything frozen?)")
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov and momentum > 0)


@dataclass(frozen=True)
class LRSchedule:
    """Learning rate as a function of the fractional epoch (see the module docstring)."""

    lr: float
    epochs: int
    policy: str = "steps"
    steps: Sequence[int] = ()
    decay: float = 0.1
    warmup_epochs: float = 0.0
    warmup_start_lr: float = 0.0

    def __post_init__(self) -> None:
        if self.policy not in ("steps", "cosine"):
            raise AvaDetectError(f"train.lr_policy must be 'steps' or 'cosine', found {self.policy!r}")

    def _main(self, epoch: float) -> float:
        if self.policy == "cosine":
            return 0.5 * self.lr * (1.0 + math.cos(math.pi * min(epoch, self.epochs) / self.epochs))
        return self.lr * self.decay ** sum(1 for s in self.steps if epoch >= s)

    def __call__(self, epoch: float) -> float:
        if epoch < self.warmup_epochs:
            end = self._main(self.warmup_epochs)
            return self.warmup_start_lr + (end - self.warmup_start_lr) * epoch / self.warmup_epochs
        return self._main(epoch)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
