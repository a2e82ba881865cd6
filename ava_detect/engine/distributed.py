"""torch.distributed helpers for one process or many (``torchrun``).

``torchrun --nproc_per_node N -m ava_detect.cli train ...`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; :func:`init_from_env` then joins the process group (NCCL on GPU, gloo on CPU).
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


def init_from_env(timeout_minutes: float = 30.0) -> torch.device:
    """Join the process group described by torchrun's environment variables, if any.

    Returns:
        The device this process should use: ``cuda:LOCAL_RANK`` when CUDA is available, else CPU.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available()
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if world_size > 1 and not is_initialized():
        backend = "nccl" if use_cuda else "gloo"
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=timeout_minutes))
        logger.info("joined process group: rank %d of %d (%s)", get_rank(), world_size, backend)
    return device


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
