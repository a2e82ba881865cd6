"""torch.distributed helpers for one process or many (``torchrun``).

``torchrun --nproc_per_node N -m ava_detect.cli train ...`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; :func:`init_from_env` then joins the process group (NCCL on GPU, gloo on CPU) on the
device that ``train.device`` / ``test.device`` asks for (:func:`select_device`).
Without those variables everything runs in one process and the helpers are no-ops.
"""

from __future__ import annotations

import datetime
import logging
import os
from typing import Any, List

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_initialized() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def is_main_process() -> bool:
    return get_rank() == 0


def select_device(spec: str = "auto", *, local_rank: int = 0, world_size: int = 1) -> torch.device:
    """The device a process uses for ``train.device`` / ``test.device`` = ``spec``.

    Args:
        spec: ``auto`` (``cuda:local_rank`` when CUDA is available, else CPU), ``cpu``, ``cuda``
            (``cuda:local_rank``) or ``cuda:N`` (one process only: under torchrun every process would
            take GPU N).
        local_rank: this process's index on its machine (torchrun's ``LOCAL_RANK``).
        world_size: the number of processes (torchrun's ``WORLD_SIZE``).

    Raises:
        AvaDetectError: an unknown ``spec``, CUDA asked for where none is available, or ``cuda:N``
            with several processes.
    """
    from ava_detect.config import DEVICE_PATTERN
    from ava_detect.errors import AvaDetectError

    if not isinstance(spec, str) or not DEVICE_PATTERN.fullmatch(spec):
        raise AvaDetectError(f"device: expected auto, cpu, cuda or cuda:N (N = GPU index), found {spec!r}")
    if spec == "cpu" or (spec == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise AvaDetectError(f"device {spec!r}: no CUDA GPU is available (use cpu or auto)")
    if spec in ("auto", "cuda"):
        return torch.device("cuda", local_rank)
    if world_size > 1:
        raise AvaDetectError(f"device {spec!r} with {world_size} processes: every process would use that one GPU; "
                             f"use cuda or auto (process LOCAL_RANK takes cuda:LOCAL_RANK)")
    index = int(spec.split(":")[1])
    if index >= torch.cuda.device_count():
        raise AvaDetectError(f"device {spec!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    return torch.device("cuda", index)


def init_from_env(device: str = "auto", timeout_minutes: float = 30.0) -> torch.device:
    """Join the process group described by torchrun's environment variables, if any.

    The rendezvous is torchrun's (``env://``: ``MASTER_ADDR``/``MASTER_PORT``; ``torchrun --standalone``
    points them at a store its agent already listens on, so no port is picked and released).

    Args:
        device: ``train.device`` / ``test.device`` (see :func:`select_device`). The backend follows the
            device: NCCL on GPU, gloo on CPU (also where CUDA exists but ``cpu`` is asked for).

    Returns:
        The device this process should use.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = select_device(device, local_rank=local_rank, world_size=world_size)
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    if world_size > 1 and not is_initialized():
        backend = "nccl" if chosen.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=timeout_minutes))
        logger.info("joined process group: rank %d of %d (%s)", get_rank(), world_size, backend)
    logger.info("running on %s", chosen)
    return chosen


def barrier() -> None:
    if is_initialized() and get_world_size() > 1:
        dist.barrier()


def all_gather_object(obj: Any) -> List[Any]:
    """Gather one picklable object from every process (a one-element list without distribution)."""
    if not is_initialized() or get_world_size() == 1:
        return [obj]
    out: List[Any] = [None] * get_world_size()
    dist.all_gather_object(out, obj)
    return out


def cleanup() -> None:
    if is_initialized():
        dist.destroy_process_group()
