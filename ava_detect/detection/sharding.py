"""Sharding ``detect`` over the processes of a ``torchrun`` launch: each video is done by exactly one process.

``torchrun --nproc_per_node N -m ava_detect.cli detect ...`` starts N processes (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``); :meth:`Shard.from_env` joins their process group (gloo on the CPU, NCCL on GPUs) and picks
this process's device (``cuda:LOCAL_RANK``; :func:`~ava_detect.engine.distributed.select_device`). The
videos, sorted by path, are dealt out round robin: video ``i`` of the sorted list belongs to process
``i % N``. Every process writes the outputs of its own videos (its parts of the box CSV, its CVAT XMLs);
:meth:`Shard.gather` then waits for all of them, and the first process joins the box CSV and prints the
summary. Without torchrun there is one shard that owns every video, and nothing waits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Sequence, Tuple

import torch

from ava_detect.engine import distributed as du

logger = logging.getLogger(__name__)

#: How long a process waits for the others (minutes): a shard may take hours longer than another.
WAIT_MINUTES = 7 * 24 * 60.0


@dataclass(frozen=True)
class Shard:
    """This process's share of the videos.

    Attributes:
        rank: this process's index (0 .. world_size - 1). world_size: the number of processes.
    """

    rank: int = 0
    world_size: int = 1

    @classmethod
    def from_env(cls, device: str = "auto") -> Tuple["Shard", torch.device]:
        """Join the ``torchrun`` process group, if any, and pick this process's device (``--device``).

        Raises:
            AvaDetectError: a device that cannot be used (see :func:`~ava_detect.engine.distributed.select_device`).
        """
        chosen = du.init_from_env(device, timeout_minutes=WAIT_MINUTES)
        shard = cls(rank=du.get_rank(), world_size=du.get_world_size())
        if shard.world_size > 1:
            logger.debug("detect: process %d of %d on %s", shard.rank, shard.world_size, chosen)
        return shard, chosen

    @property
    def is_main(self) -> bool:
        """Whether this process joins the outputs and reports (the first one)."""
        return self.rank == 0

    def owned(self, videos: Sequence[Path]) -> List[Path]:
        """The videos of ``videos`` this process does: those at index ``rank``, ``rank + N``, ... of the
        list sorted by path (whatever order they were given in), in the given order."""
        order = {v: i for i, v in enumerate(sorted(videos, key=str))}
        return [v for v in videos if order[v] % self.world_size == self.rank]

    def gather(self, value: Any) -> List[Any]:
        """Wait for every process and collect one picklable ``value`` from each (in rank order)."""
        if self.world_size == 1:
            return [value]
        return du.all_gather_object(value)

    def barrier(self) -> None:
        """Wait for every process."""
        if self.world_size > 1:
            du.barrier()

    def close(self) -> None:
        """Leave the process group (once the command is done)."""
        if self.world_size > 1:
            du.cleanup()
