"""The training loop and the hooks it calls, in the shape of detectron2's ``engine/train_loop.py``.

:func:`train_loop` only iterates: epochs, batches, one optimisation step per batch (a
:class:`TrainStep`: ``forward`` then ``update``), and calls its hooks around them. Everything
else a run does (checkpoints, validation, metrics, the progress bar, stopping on a NaN loss) is a
:class:`Hook` (see :mod:`ava_detect.engine.hooks`), called in list order at each point:

* ``before_train(state)``: once, before the first step;
* ``after_forward(state)``: ``state.loss`` is computed, nothing is updated yet;
* ``after_step(state)``: the weights are updated, ``state.iteration`` counts this step;
* ``after_epoch(state)``: ``state.epoch`` counts the finished epoch; ``state.record`` is the
  epoch's record (``{"epoch", "iteration"}``), which hooks complete (validation adds ``mAP``);
* ``after_train(state)``: once, also when the loop ends early or by an exception.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Protocol, Sequence


@dataclass
class TrainState:
    """What the loop and its hooks share; what a checkpoint stores of the loop.

    Attributes:
        epoch: epochs finished (during an epoch: its 0-based index).
        iteration: optimisation steps done since the start of the run (over all epochs).
        max_epochs, iters_per_epoch: the length of the run.
        best_map, last_map: best and latest validation mAP (NaN before any validation).
        history: the records of the finished epochs (main process).
        loss: the current step's loss (a 0-dim tensor); lr: its learning rate; boxes: its RoIs.
        record: the record of the epoch that just ended (``after_epoch``).
        new_best: ``after_epoch``: this epoch's validation gave a new ``best_map``.
    """

    epoch: int
    iteration: int
    max_epochs: int
    iters_per_epoch: int
    best_map: float = math.nan
    last_map: float = math.nan
    history: List[Dict[str, Any]] = field(default_factory=list)
    loss: Any = None
    lr: float = 0.0
    boxes: int = 0
    record: Dict[str, Any] = field(default_factory=dict)
    new_best: bool = False


class Hook:
    """Does nothing at every point of :func:`train_loop`; subclasses override what they need."""

    def before_train(self, state: TrainState) -> None:
        pass

    def after_forward(self, state: TrainState) -> None:
        pass

    def after_step(self, state: TrainState) -> None:
        pass

    def after_epoch(self, state: TrainState) -> None:
        pass

    def after_train(self, state: TrainState) -> None:
        pass


class TrainStep(Protocol):
    """One optimisation step, in two halves so that hooks can look at the loss in between."""

    def epoch_batches(self, state: TrainState) -> Iterable[Any]:
        """The batches of epoch ``state.epoch`` from step ``state.iteration`` on (a resumed run
        starts in the middle of an epoch); also puts the model in training mode."""

    def forward(self, state: TrainState, batch: Any) -> Any:
        """The loss of ``batch`` (sets ``state.lr`` and ``state.boxes``)."""

    def update(self, loss: Any) -> None:
        """Backward pass and optimiser step."""


def train_loop(state: TrainState, step: TrainStep, hooks: Sequence[Hook],
               stop_after_iterations: Optional[int] = None) -> bool:
    """Run epochs ``state.epoch .. state.max_epochs - 1`` (see the module docstring).

    Args:
        state: where to start (a resumed run: the checkpoint's epoch and iteration).
        step: the optimisation step.
        hooks: called in this order at each point.
        stop_after_iterations: stop before the step that would exceed this many iterations.

    Returns:
        True when all epochs ran, False when ``stop_after_iterations`` stopped the run.
    """
    for hook in hooks:
        hook.before_train(state)
    try:
        for epoch in range(state.epoch, state.max_epochs):
            state.epoch = epoch
            for batch in step.epoch_batches(state):
                if stop_after_iterations is not None and state.iteration >= stop_after_iterations:
                    return False
                state.loss = step.forward(state, batch)
                for hook in hooks:
                    hook.after_forward(state)
                step.update(state.loss)
                state.iteration += 1
                for hook in hooks:
                    hook.after_step(state)
            state.epoch = epoch + 1
            state.record = {"epoch": state.epoch, "iteration": state.iteration}
            state.new_best = False
            for hook in hooks:
                hook.after_epoch(state)
    finally:
        for hook in hooks:
            hook.after_train(state)
    return True
