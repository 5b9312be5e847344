"""Several processes training one model (torchrun + DistributedDataParallel): ranks, process group, collectives.

`torchrun --nproc_per_node N -m resnet_core.train ...` starts N copies of the command line with WORLD_SIZE,
RANK and LOCAL_RANK in their environment. Each copy calls `start()` (NCCL on CUDA, gloo on the CPU), builds
the same model and data, and the Trainer gives every rank its slice of each global batch. Without torchrun
(or with one process) `start()` returns None and nothing here runs: a single process pays for no collective.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..data.containers import ImageSet
from .config import TrainerError


@dataclass(frozen=True)
class DistContext:
    """This process's place in a multi-process run (world_size > 1 always: one process needs no context)."""

    world_size: int
    rank: int
    local_rank: int
    sync_bn: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes the run folder and prints."""
        return self.rank == 0


def env_ranks() -> tuple[int, int, int]:
    """(world size, rank, local rank) from torchrun's environment; (1, 0, 0) when it did not start us."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise TrainerError("WORLD_SIZE, RANK and LOCAL_RANK must be whole numbers (torchrun sets them)") from None
    if world < 1 or not 0 <= rank < world or local < 0:
        raise TrainerError(f"inconsistent torchrun environment: WORLD_SIZE={world}, RANK={rank}, LOCAL_RANK={local}")
    return world, rank, local


def check_sync_bn(device: torch.device) -> None:
    # torch's SyncBatchNorm has only a CUDA kernel: on the CPU it fails at the first forward, deep in a step.
    if device.type != "cuda":
        raise TrainerError(f"--sync-bn needs CUDA GPUs (NCCL): torch's SyncBatchNorm does not run on {device.type}; "
                           "leave it off (each process then normalises with its own slice of the batch)")


def rank_device(device: torch.device, local_rank: int) -> torch.device:
    """The device this rank trains on: its own GPU (cuda:LOCAL_RANK, made the calling thread's current device),
    or the CPU."""
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise TrainerError(f"LOCAL_RANK {local_rank} but this machine has {torch.cuda.device_count()} CUDA "
                               "device(s): start at most that many processes per node")
        device = torch.device("cuda", local_rank)
        # The current CUDA device is per thread: NCCL and anything made on plain "cuda" must find this rank's
        # GPU in the main thread (process group, barriers) and in the trainer's thread alike.
        torch.cuda.set_device(device)
        return device
    if device.type != "cpu":
        raise TrainerError(f"several processes can train on CUDA (NCCL) or the CPU (gloo), not on {device.type}; "
                           "run one process, or pass --device cpu")
    return device


def start(device: torch.device, sync_bn: bool = False) -> DistContext | None:
    """Join torchrun's process group when there are several processes; None (and nothing started) otherwise."""
    if sync_bn:
        check_sync_bn(device)
    world, rank, local = env_ranks()
    if world == 1:
        return None
    device = rank_device(device, local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistContext(world, rank, local, sync_bn)


def shutdown() -> None:
    """Leave the process group (safe to call always): a rank that never does keeps torchrun waiting."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def main_first(ctx: DistContext | None) -> Iterator[None]:
    """Rank 0 runs the block before the others, so one process downloads (CIFAR, weights) and the rest read."""
    if ctx is not None and not ctx.is_main:
        dist.barrier()
    yield
    if ctx is not None and ctx.is_main:
        dist.barrier()


def wrap(model: nn.Module, ctx: DistContext, device: torch.device) -> tuple[nn.Module, nn.Module]:
    """(the model, with SyncBatchNorm if asked; its DDP wrapper for the forward pass). Save the first one:
    its state_dict has no "module." prefix, so a single process loads it as is."""
    if ctx.sync_bn:
        check_sync_bn(device)
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [device.index] if device.type == "cuda" else None
    ddp = nn.parallel.DistributedDataParallel(model, device_ids=ids, output_device=device.index if ids else None)
    return model, ddp


def shard(images: ImageSet, ctx: DistContext) -> ImageSet:
    """This rank's contiguous part of a set (sizes differ by one at most)."""
    return ImageSet(images.images.tensor_split(ctx.world_size)[ctx.rank],
                    images.labels.tensor_split(ctx.world_size)[ctx.rank])


def take(batch: Tensor, ctx: DistContext) -> Tensor:
    """This rank's contiguous slice of a global batch."""
    return batch.tensor_split(ctx.world_size)[ctx.rank]


def sum_all(values: Tensor) -> Tensor:
    """The element-wise sum over all ranks (in place, and returned)."""
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def broadcast_buffers(model: nn.Module) -> None:
    """Rank 0's BatchNorm running statistics on every rank. Without SyncBatchNorm each rank updated them from
    its own slice in the last step, so validating and saving rank 0's model use the same statistics."""
    for buffer in model.buffers():
        dist.broadcast(buffer, 0)


__all__ = ["DistContext", "broadcast_buffers", "check_sync_bn", "env_ranks", "main_first", "rank_device", "shard",
           "shutdown", "start", "sum_all", "take", "wrap"]
