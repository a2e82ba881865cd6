"""Training checkpoints: what a resumed run needs to continue exactly.

A checkpoint is a plain dict ``{model, optimizer, scheduler, scaler, epoch, iteration, rng, config,
...}`` saved with ``torch.save`` to a temporary name and renamed (a kill during a save leaves the
previous checkpoint intact), and read back with ``torch.load(weights_only=True)``: everything in
it is tensors, numbers, strings and containers. Random generator states are stored as tensors and
integers for that reason.
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Union

import numpy as np
import torch

from ava_detect.errors import AvaDetectError
from ava_detect.reuse import flatten
from ava_detect.serialization import load_torch_file, save_torch_file
from ava_detect.io import PathLike

if TYPE_CHECKING:
    from ava_detect.config import Config

logger = logging.getLogger(__name__)

LAST = "last.pth"
BEST = "best.pth"


def capture_rng() -> Dict[str, Any]:
    """The state of Python's, numpy's, torch's (and CUDA's) global generators, as safe types."""
    np_state = np.random.get_state()
    state: Dict[str, Any] = {
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npy = state["numpy"]
    np.random.set_state((npy[0], npy[1].numpy().astype(np.uint32), npy[2], npy[3], npy[4]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_checkpoint(path: PathLike, state: Dict[str, Any]) -> None:
    """Write ``state`` atomically (temporary file, then rename)."""
    save_torch_file(path, state)
    logger.debug("saved checkpoint %s", path)


def load_training_checkpoint(path: PathLike, map_location: Optional[Union[str, torch.device]] = "cpu") -> Dict[str, Any]:
    """Read a training checkpoint without executing pickled code.

    Raises:
        AvaDetectError: missing file, unreadable or unsafe file, or not a training checkpoint.
    """
    state = load_torch_file(path, what="checkpoint", map_location=map_location)
    required = {"model", "optimizer", "epoch", "iteration", "rng", "config"}
    if not isinstance(state, dict) or not required <= set(state):
        found = sorted(state)[:8] if isinstance(state, dict) else type(state).__name__
        raise AvaDetectError(f"not a training checkpoint of ours (expected keys {sorted(required)}, found {found})", path)
    return state


#: Settings that do not change what training computes (where it runs and writes, how often it
#: saves or validates, how data is loaded) or that a resumed run may change (``train.epochs``: train
#: longer); every other model, data and train setting does.
RESUMABLE_CHANGES = frozenset({
    "train.epochs", "train.output_dir", "train.device", "train.eval_period", "train.checkpoint_period",
    "train.checkpoint_iters", "data.num_workers", "data.decode_threads",
})


def training_changes(saved_config: Any, cfg: "Config") -> List[str]:
    """The model, data and train settings of ``cfg`` that differ from those a checkpoint was made with
    (its ``"config"``), as ``"section.key: old -> new"``, leaving out :data:`RESUMABLE_CHANGES`.
    Empty: continuing from the checkpoint is continuing the same training."""
    from ava_detect.config import config_from_dict, config_to_dict

    try:
        old = config_to_dict(config_from_dict(saved_config))
    except AvaDetectError:
        return ["the checkpoint's config cannot be read"]
    new = config_to_dict(cfg)
    old_flat = dict(flatten({k: old[k] for k in ("model", "data", "train")}))
    new_flat = dict(flatten({k: new[k] for k in ("model", "data", "train")}))
    return [f"{k}: {old_flat.get(k)!r} -> {new_flat.get(k)!r}" for k in sorted(set(old_flat) | set(new_flat))
            if k not in RESUMABLE_CHANGES and old_flat.get(k) != new_flat.get(k)]
