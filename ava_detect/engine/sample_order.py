"""Samplers: resumable, seeded training order and duplicate-free sharded inference.

Training uses :class:`torch.utils.data.DistributedSampler` (one shuffle per epoch, seeded with
``seed + epoch``, the same on every process, each process taking its share). Each sample is
yielded together with its own random seed, derived from ``(seed, epoch, position)``, so data
augmentation does not depend on which worker or process loads it, and a run resumed in the
middle of an epoch sees exactly the samples and augmentations it would have seen.
"""

from __future__ import annotations

from typing import Iterator, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler


class SeededTrainSampler(Sampler[Tuple[int, int]]):
    """Yields ``(dataset_index, sample_seed)`` for one process's share of an epoch.

    Args:
        length: number of samples in the dataset.
        num_replicas: number of processes; ``rank``: this process.
        seed: run seed; the epoch order is ``DistributedSampler``'s for ``seed`` and the epoch.
        drop_last: drop the tail so that every process gets the same number of samples
            (otherwise ``DistributedSampler`` pads with repeats, as usual in training).
    """

    def __init__(self, length: int, *, num_replicas: int = 1, rank: int = 0, seed: int = 0, drop_last: bool = False):
        self.length = length
        self.seed = seed
        self._inner = DistributedSampler(range(length), num_replicas=num_replicas, rank=rank, shuffle=True,
                                         seed=seed, drop_last=drop_last)
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch; skip its first ``start`` samples of this process (resume)."""
        self.epoch = epoch
        self.start = start
        self._inner.set_epoch(epoch)

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        indices = list(self._inner)
        rank = self._inner.rank
        for position in range(self.start, len(indices)):
            seed = int(np.random.SeedSequence([self.seed, self.epoch, rank, position]).generate_state(1)[0])
            yield indices[position], seed

    def __len__(self) -> int:
        return len(self._inner) - self.start


class ShardedInferenceSampler(Sampler[int]):
    """Process ``rank`` of ``num_replicas`` takes indices ``rank, rank + n, ...``: every sample is
    seen exactly once overall, with no padding (unlike ``DistributedSampler``, whose padded
    repeats would become duplicate detections)."""

    def __init__(self, length: int, *, num_replicas: int = 1, rank: int = 0):
        self.indices = list(range(rank, length, num_replicas))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class SeededDataset(Dataset):
    """Wraps a dataset so that ``ds[(index, seed)]`` seeds torch's, numpy's and Python's global
    generators before loading: augmentations that draw from them become a function of the seed."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, item: Tuple[int, int]):
        import random

        index, seed = item
        torch.manual_seed(seed)
        np.random.seed(seed % (2**32))
        random.seed(seed)
        return self.dataset[index]


def worker_context(num_workers: int):
    """Start data-loader workers with ``forkserver``, not ``fork``: a worker forked from a process
    that runs other threads (PyAV/FFmpeg decoders and encoders, tqdm's monitor) can inherit a lock
    held by one of them and hang on its first decode. None (no workers) needs no context."""
    import multiprocessing

    return multiprocessing.get_context("forkserver") if num_workers > 0 else None
