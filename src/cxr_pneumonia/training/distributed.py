"""Several training processes (torchrun): process group, rank helpers, samplers and reductions.

One process (not launched by torchrun) gets ``SINGLE``: every helper is then the identity, so the
single-process path runs exactly as it always has.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from ..errors import DataError

VAL_BATCH = 64
# Augmentation and dropout draw from the global torch RNG: each rank seeds it apart (rank 0 as one
# process would), far enough apart that rank r's epoch e never reuses another rank's seed.
RANK_SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class Ranks:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Rank 0: the only one writing checkpoints, logs, MLflow and the package."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def seed_offset(self) -> int:
        return self.rank * RANK_SEED_STRIDE


SINGLE = Ranks()


def per_rank_batch(batch_size: int, world_size: int) -> int:
    """The global batch stays ``batch_size``: each of ``world_size`` ranks takes an equal share."""
    if world_size < 1 or batch_size % world_size:
        raise DataError(
            f"batch_size {batch_size} is not divisible by {world_size} processes: the global batch is "
            f"kept equal to batch_size, so choose a batch size that is a multiple of the process count",
            code="bad_config",
        )
    return batch_size // world_size


def setup(batch_size: int, threads: int) -> Ranks:
    """Join the torchrun job (gloo on CPU, NCCL on GPUs), or ``SINGLE`` when not launched by torchrun."""
    if not dist.is_torchelastic_launched():
        return SINGLE
    use_cuda = torch.cuda.is_available()
    local_rank = dist.get_node_local_rank(fallback_rank=0)
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if use_cuda else "gloo", device_id=device if use_cuda else None)
    ranks = Ranks(dist.get_rank(), dist.get_world_size(), device)
    per_rank_batch(batch_size, ranks.world_size)  # every rank refuses, so the job stops at once
    # torchrun sets OMP_NUM_THREADS=1; share this node's cores between the ranks on it instead.
    per_node = _ranks_on_this_node()
    total = threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(max(1, total // per_node))
    return ranks


def describe(ranks: Ranks) -> str:
    return (
        f"rank {ranks.rank} of {ranks.world_size} on {ranks.device} ({dist.get_backend()}), "
        f"{torch.get_num_threads()} threads"
    )


def teardown(ranks: Ranks) -> None:
    # setup()'s process group only (also a torchrun job of one rank), never one a caller made
    if ranks is not SINGLE and dist.is_initialized():
        dist.destroy_process_group()


def _ranks_on_this_node() -> int:
    hosts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(hosts, socket.gethostname())
    return hosts.count(socket.gethostname())


def wrap(model: torch.nn.Module, ranks: Ranks) -> torch.nn.Module:
    """The module to run forward/backward through: DDP averages the gradients across ranks.

    Optimiser, EMA and checkpoints keep using ``model`` itself (its state_dict has no ``module.``)."""
    if not ranks.distributed:
        return model
    model.to(ranks.device)
    return DistributedDataParallel(model, device_ids=[ranks.device] if ranks.device.type == "cuda" else None)


class DealtSampler(DistributedSampler[int]):
    """A DistributedSampler whose epoch order is the one a single process's shuffled DataLoader draws.

    A DataLoader with a generator seeded ``seed + epoch`` first draws its base seed from it (one
    int64), then RandomSampler's permutation. Drawn the same way here and dealt out in turn, every
    global batch of N ranks holds exactly the images of the same batch in one process
    (tests/training/test_distributed.py checks this against torch's DataLoader). Padded by wrapping
    round, as DistributedSampler does, so every rank has the same number of samples."""

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        torch.empty((), dtype=torch.int64).random_(generator=generator)  # the DataLoader's base seed
        order = torch.randperm(len(self.dataset), generator=generator).tolist()  # type: ignore[arg-type]
        order += order[: self.total_size - len(order)]
        return iter(order[self.rank : self.total_size : self.num_replicas])


def train_loader(dataset: Dataset[Any], batch_size: int, seed: int, ranks: Ranks) -> DataLoader[Any]:
    """Shuffled training batches of ``batch_size`` images in all (``per_rank_batch`` on each rank)."""
    size = len(dataset)  # type: ignore[arg-type]
    drop_last = size > batch_size
    # The loader's generator seeds its base seed (so the global torch RNG, which augmentation draws
    # from, is not consumed by it) and, in one process, the shuffle; seed_epoch reseeds it.
    generator = torch.Generator().manual_seed(seed)
    if not ranks.distributed:
        return DataLoader(
            dataset, batch_size=batch_size, shuffle=True, generator=generator, drop_last=drop_last
        )
    return DataLoader(
        dataset,
        batch_size=per_rank_batch(batch_size, ranks.world_size),
        sampler=DealtSampler(dataset, ranks.world_size, ranks.rank, shuffle=True, seed=seed),
        generator=generator,
        drop_last=drop_last,
    )


def seed_epoch(loader: DataLoader[Any], seed: int, epoch: int, ranks: Ranks) -> None:
    """Per-epoch seeds (shuffling, augmentation, dropout) so a resumed run repeats an uninterrupted one."""
    torch.manual_seed(seed + epoch + ranks.seed_offset)
    if loader.generator is not None:
        loader.generator.manual_seed(seed + epoch)
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)  # its permutation is seeded with seed + epoch too


def validation_shard(dataset: Dataset[Any], ranks: Ranks) -> DataLoader[Any]:
    """Every rank scores every world_size-th validation image (no padding: each image exactly once)."""
    if not ranks.distributed:
        return DataLoader(dataset, batch_size=VAL_BATCH)
    if len(dataset) < ranks.world_size:  # type: ignore[arg-type]
        raise DataError(
            f"{len(dataset)} validation images for {ranks.world_size} processes: every rank needs one",  # type: ignore[arg-type]
            code="data_empty",
        )
    indices = range(ranks.rank, len(dataset), ranks.world_size)  # type: ignore[arg-type]
    return DataLoader(Subset(dataset, list(indices)), batch_size=VAL_BATCH)


def gather_shards(ranks: Ranks, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every rank's ``validation_shard`` rows, back in dataset order, on every rank."""
    if not ranks.distributed:
        return arrays
    parts: list[Any] = [None] * ranks.world_size
    dist.all_gather_object(parts, arrays)
    merged = []
    for k, first in enumerate(arrays):
        total = sum(len(part[k]) for part in parts)
        out = np.empty((total, *first.shape[1:]), dtype=first.dtype)
        for rank, part in enumerate(parts):
            out[rank :: ranks.world_size] = part[k]
        merged.append(out)
    return tuple(merged)


def sync_buffers(module: torch.nn.Module, ranks: Ranks) -> None:
    """Rank 0's BatchNorm statistics on every rank before validating: each rank's running statistics
    (and their EMA) moved with its own batches; rank 0's are the ones checkpointed and exported."""
    if ranks.distributed:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def sum_across(ranks: Ranks, *values: float) -> tuple[float, ...]:
    if not ranks.distributed:
        return values
    total = torch.tensor(values, dtype=torch.float64, device=ranks.device)
    dist.all_reduce(total)
    return tuple(float(v) for v in total.cpu())


def assert_same(ranks: Ranks, what: str, value: Any) -> None:
    """Fail on every rank when ``value`` (JSON-able) is not identical on all ranks."""
    if not ranks.distributed:
        return
    digest = hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
    digests: list[Any] = [None] * ranks.world_size
    dist.all_gather_object(digests, digest)
    if len(set(digests)) != 1:
        raise DataError(
            f"the {what} differs between ranks (same data, config and seed on every rank?)",
            code="rank_mismatch",
        )
