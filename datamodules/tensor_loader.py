"""Batches from in-memory tensors by indexing: no per-sample Python, no worker processes."""

from collections.abc import Callable, Iterator

import torch

import zoo.checks as checks


class EpochPermutation:
    """Seeded permutation of ``n`` indices, new each epoch, sharded over ``world_size`` ranks.

    Lightning calls :meth:`set_epoch` at the start of every epoch (also after a resume), so the
    order depends only on ``(seed, epoch)`` and a resumed run sees the same batches.
    """

    def __init__(self, n: int, shuffle: bool, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.n, self.shuffle, self.seed = n, shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def indices(self, device: torch.device) -> torch.Tensor:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=g)
        else:
            order = torch.arange(self.n)
        return order[self.rank :: self.world_size].to(device)

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.world_size))


class TensorBatchLoader:
    """Iterates ``(x, y)`` batches out of two tensors that live on one device.

    Args:
        images: All inputs ``[N, ...]`` (any dtype; ``transform`` turns a batch into model input).
        targets: All labels ``[N]``.
        batch_size: Samples per batch on this device.
        shuffle: Reshuffle every epoch (seeded by ``seed + epoch``).
        seed: Base seed of the shuffling.
        transform: Applied to each gathered input batch (e.g. uint8 -> normalised float).
        drop_last: Drop the last incomplete batch.
        rank: This process's rank (shard of the data it reads).
        world_size: Number of processes sharing the data.
    """

    def __init__(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        checks.integer("batch_size", batch_size)
        self.images, self.targets = images, targets
        self.batch_size, self.drop_last = batch_size, drop_last
        self.transform = transform
        # Named `sampler` so that Lightning's per-epoch `sampler.set_epoch(epoch)` reaches it.
        self.sampler = EpochPermutation(len(targets), shuffle, seed, rank, world_size)
        self.batch_sampler = None  # Lightning inspects it next to `sampler`

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.sampler.indices(self.targets.device)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            idx = order[start : start + self.batch_size]
            x = self.images[idx]
            yield (self.transform(x) if self.transform else x), self.targets[idx]
