"""Sharding ``detect`` over the processes of a ``torchrun`` launch: each video is done by exactly one process.

``torchrun --nproc_per_node N -m ava_detect.cli detect ...`` starts N processes; the command joins
their process group (:func:`~ava_detect.engine.distributed.init_from_env`, as ``train`` and ``test`` do:
gloo on the CPU, NCCL on GPUs, ``cuda:LOCAL_RANK`` per process) and hands :meth:`Shard.current` to
:func:`~ava_detect.detection.detect_videos`. The videos, sorted by path, are dealt out round robin:
video ``i`` of the sorted list belongs to process ``i % N`` (:meth:`Shard.owned`). Every process writes
the outputs of its own videos (its parts of the box CSV, its CVAT XMLs); :meth:`Shard.gather` then
waits for all of them, and the first process (:attr:`Shard.is_main`) joins the box CSV and reports.
Without a process group there is one shard that owns every video, and nothing waits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Sequence

import torch.distributed as dist

#: How long a process of ``detect`` waits for the others (minutes): one share may take hours longer
#: than another, and a process that fails ends the launch anyway (torchrun stops the others).
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
    def current(cls) -> "Shard":
        """The share of this process in the process group it has joined (the whole when none)."""
        if dist.is_available() and dist.is_initialized():
            return cls(rank=dist.get_rank(), world_size=dist.get_world_size())
        return cls()

    @property
    def is_main(self) -> bool:
        """Whether this process joins the outputs and reports (the first one)."""
        return self.rank == 0

    def owned(self, videos: Sequence[Path]) -> List[Path]:
        """The videos of ``videos`` this process does: those at index ``rank``, ``rank + N``, ... of the
        list sorted by path (whatever order they were given in), in the given order."""
        order = {v: i for i, v in enumerate(sorted(videos, key=str))}
        return [v for v in videos if order[v] % self.world_size == self.rank]

    def barrier(self) -> None:
        """Wait for every process."""
        if self.world_size > 1:
            dist.barrier()

    def gather(self, value: Any) -> List[Any]:
        """Wait for every process and collect one picklable ``value`` from each (in rank order)."""
        if self.world_size == 1:
            return [value]
        out: List[Any] = [None] * self.world_size
        dist.all_gather_object(out, value)
        return out
