"""A training run's data loaders, in an order that replays exactly: seeded per-epoch shuffles,
resumable mid-epoch, sharded over processes.

The training order of an epoch is a permutation drawn from ``(seed, epoch)`` alone, cut into
global batches. Process ``r`` of ``W`` takes the ``r``-th contiguous share of every global batch,
and each process cuts its share into micro-batches in order, so the global batch is the same clips
whatever the number of processes and micro-batches (and BatchNorm sees the same groups of clips
for the same ``W × accumulation``). Each sample carries its own seed, so its augmentation does not
depend on workers, ranks or on where a resumed run restarted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from .distributed import env_dist_info, resolve_device
from .rng import item_seed, seeded_cpu_rng
from .train_config import TrainConfig


class SeededItems(Dataset):
    """``dataset`` indexed by ``(index, seed)``: each item drawn with the generators seeded."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        with seeded_cpu_rng(seed):
            return self.dataset[index]


class TrainSampler(DistributedSampler):
    """Resumable, seeded, drop-last training order for one process of ``num_replicas``.

    Yields ``(index, seed)`` keys for :class:`SeededItems`. ``set_epoch`` chooses the epoch's
    permutation, ``set_start_step`` skips the optimiser steps a resumed run already took.
    """

    def __init__(self, dataset: Dataset, batch_size: int, *, num_replicas: int = 1,
                 rank: int = 0, seed: int = 0, shuffle: bool = True) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle,
                         seed=seed, drop_last=True)
        if batch_size % num_replicas:
            raise ValueError(f"batch size {batch_size} is not divisible by {num_replicas} "
                             "processes")
        self.batch_size = batch_size
        self.share = batch_size // num_replicas
        self.start_step = 0
        n = len(dataset)  # type: ignore[arg-type]
        if n < batch_size:
            raise ValueError(f"the training set has {n} clips, fewer than one batch of "
                             f"{batch_size}")
        self.steps_per_epoch = n // batch_size

    def set_start_step(self, step: int) -> None:
        """Begin the epoch after ``step`` optimiser steps (0: from its start)."""
        if not 0 <= step <= self.steps_per_epoch:
            raise ValueError(f"start step {step} outside the epoch's {self.steps_per_epoch}")
        self.start_step = step

    def epoch_order(self) -> torch.Tensor:
        """The whole epoch's global order (all processes)."""
        n = len(self.dataset)  # type: ignore[arg-type]
        if not self.shuffle:
            return torch.arange(n)
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        return torch.randperm(n, generator=g)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = self.epoch_order()
        for step in range(self.start_step, self.steps_per_epoch):
            first = step * self.batch_size + self.rank * self.share
            for index in order[first:first + self.share].tolist():
                yield index, item_seed(self.seed, self.epoch, index)

    def __len__(self) -> int:
        return (self.steps_per_epoch - self.start_step) * self.share


class ShardSampler(Sampler[int]):
    """Every ``num_replicas``-th index from ``rank``: an evaluation shard with no repeats."""

    def __init__(self, length: int, *, num_replicas: int = 1, rank: int = 0) -> None:
        self.indices = list(range(rank, length, num_replicas))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


@dataclass
class Loaders:
    """A run's loaders and how its global batch is cut: ``batch_size`` = processes ×
    ``micro_batch`` × ``accumulation``; ``train`` yields micro-batches in :class:`TrainSampler`
    order."""

    train: DataLoader
    test: DataLoader | None
    sampler: TrainSampler
    micro_batch: int
    accumulation: int


def build_loaders(cfg: TrainConfig, train_set: Dataset, test_set: Dataset | None) -> Loaders:
    """This process's loaders for ``cfg`` (its batch, micro-batch, workers and seed)."""
    dist = env_dist_info()
    world, batch = dist.world_size, cfg.optim.batch_size
    if batch % world:
        raise ValueError(f"batch size {batch} is not divisible by {world} processes")
    share = batch // world
    micro = cfg.optim.micro_batch_size or share
    if share % micro:
        raise ValueError(f"per-process batch {share} is not a multiple of the micro-batch "
                         f"{micro}")
    seed, workers = cfg.runtime.seed, cfg.data.workers
    pin = resolve_device(cfg.runtime.device, dist.local_rank).type == "cuda"
    sampler = TrainSampler(train_set, batch, num_replicas=world, rank=dist.rank, seed=seed)
    # Loaders draw their worker seeds from their own generators, never from the global RNG.
    train = DataLoader(SeededItems(train_set), batch_size=micro, sampler=sampler,
                       num_workers=workers, pin_memory=pin,
                       generator=torch.Generator().manual_seed(seed))
    test = None
    if test_set is not None:
        test = DataLoader(test_set, batch_size=micro, num_workers=workers, pin_memory=pin,
                          sampler=ShardSampler(len(test_set),  # type: ignore[arg-type]
                                               num_replicas=world, rank=dist.rank),
                          generator=torch.Generator().manual_seed(seed))
    return Loaders(train, test, sampler, micro, share // micro)
