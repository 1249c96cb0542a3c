"""Data-parallel training with ``torchrun`` and DistributedDataParallel (DDP).

Launch the same script once per process; ``torchrun`` sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``::

    python -m torch.distributed.run --nproc_per_node 2 my_training.py

and in the script::

    info = snnlab.distributed.init_from_env()             # gloo on CPU, nccl on CUDA
    model = snnlab.distributed.prepare_model(model, device)  # BN over the global batch, DDP
    loader = snnlab.distributed.shard_loader(dataset, global_batch_size=128, seed=0)
    history = snnlab.train.fit(model, loader, config=config, device=device,
                               checkpoint="run.pt")       # rank 0 writes the checkpoint

What each piece does, and why:

* **Global batch.** :func:`shard_loader` gives each of ``W`` processes ``1/W`` of every
  global batch (``DistributedSampler``; its shuffle seeded by ``seed`` and the epoch,
  which :func:`snnlab.train.fit` advances). DDP averages the gradients, so a step
  equals one step of one process on the whole global batch.
* **Batch norm.** Each process sees only its shard, so plain BN would normalise with
  shard statistics. :func:`prepare_model` replaces every ``BatchNorm2d`` by
  :class:`GlobalBatchNorm2d`, which sums the statistics over processes (``all_reduce``
  with autograd) on any backend; ``nn.SyncBatchNorm`` does the same on GPUs only.
  With it, 2 processes equal 1 process up to float rounding (tests/test_distributed.py).
* **RNG per rank.** Every process seeds the same way (``fit`` calls
  ``seed_everything(config.seed)``), so initial weights agree (DDP also copies rank
  0's weights at wrap time) and so do dropout masks and ``cutout`` centres, which are
  drawn for each shard: draws are correlated across ranks, not across samples of one
  shard. Nothing in snnlab's models depends on a mask being unique across ranks.
* **Checkpoints** are written by rank 0 only (``fit`` asks :func:`is_main_process`);
  they hold the unwrapped model's weights, so a run resumes on any world size.
"""
from __future__ import annotations

import os
from typing import NamedTuple, Optional

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

__all__ = ["DistInfo", "init_from_env", "is_distributed", "is_main_process", "world_size",
           "GlobalBatchNorm2d", "global_batch_norm", "prepare_model", "unwrap",
           "shard_loader"]


class DistInfo(NamedTuple):
    rank: int
    world_size: int
    local_rank: int


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """Rank 0, or the only process: the one that writes files."""
    return not is_distributed() or dist.get_rank() == 0


def init_from_env(backend: Optional[str] = None) -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment.

    Args:
        backend: ``"gloo"`` (CPU) or ``"nccl"`` (CUDA); None picks nccl when CUDA is
            available, else gloo.
    Returns:
        ``DistInfo(rank, world_size, local_rank)``; ``(0, 1, 0)`` without torchrun.
    """
    if "WORLD_SIZE" not in os.environ:
        return DistInfo(0, 1, 0)
    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        dist.init_process_group(backend, rank=rank, world_size=size)
    return DistInfo(rank, size, local)


class _SumOverProcesses(torch.autograd.Function):
    """``all_reduce`` (sum) whose gradient is the sum of every process's gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training statistics cover the whole global batch ``[N, C, H, W]``.

    The per-channel sum, sum of squares and count of every process are added with
    an ``all_reduce`` that gradients flow back through (as ``nn.SyncBatchNorm``),
    then ``y = (x - mean) / sqrt(var + eps) * weight + bias`` with the biased
    variance, and the running variance updated with the unbiased one, as
    ``nn.BatchNorm2d``. Outside a process group, or in eval mode, it is ``BatchNorm2d``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        count = torch.full((1,), x.numel() / x.shape[1], dtype=x.dtype, device=x.device)
        stats = torch.cat([x.sum((0, 2, 3)), x.square().sum((0, 2, 3)), count])   # [2C + 1]
        stats = _SumOverProcesses.apply(stats)
        C = x.shape[1]
        n = stats[-1]
        mean = stats[:C] / n
        var = stats[C:2 * C] / n - mean.square()                     # biased, as BN normalises
        if self.track_running_stats:
            with torch.no_grad():
                momentum = self.momentum if self.momentum is not None else 1 / (
                    int(self.num_batches_tracked) + 1)
                self.num_batches_tracked += 1
                self.running_mean.lerp_(mean.detach(), momentum)
                self.running_var.lerp_(var.detach() * n / (n - 1), momentum)
        shape = (1, C, 1, 1)
        y = (x - mean.reshape(shape)) * torch.rsqrt(var.reshape(shape) + self.eps)
        return y * self.weight.reshape(shape) + self.bias.reshape(shape) if self.affine else y


def global_batch_norm(model: nn.Module) -> nn.Module:
    """Replace, in place, every ``nn.BatchNorm2d`` by a :class:`GlobalBatchNorm2d`
    with the same parameters and statistics; returns ``model``."""
    for name, child in model.named_children():
        if type(child) is nn.BatchNorm2d:
            like = child.running_mean if child.track_running_stats else child.weight
            new = GlobalBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                    child.track_running_stats, device=like.device,
                                    dtype=like.dtype)
            new.load_state_dict(child.state_dict())
            setattr(model, name, new)
        else:
            global_batch_norm(child)
    return model


def prepare_model(model: nn.Module, device: Optional[torch.device] = None) -> nn.Module:
    """Global-batch BN, then ``DistributedDataParallel`` (no-op outside a process group)."""
    if not is_distributed():
        return model
    device = torch.device(device) if device is not None else torch.device("cpu")
    model = global_batch_norm(model).to(device)
    ids = [device.index] if device.type == "cuda" and device.index is not None else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DDP wrapper (what checkpoints store), or ``model`` itself."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def shard_loader(dataset: Dataset, global_batch_size: int, seed: int = 0, shuffle: bool = True,
                 drop_last: bool = True, **loader_kwargs) -> DataLoader:
    """A loader giving this process its ``1 / world_size`` share of every global batch.

    Sample ``i`` of an epoch's order goes to rank ``i % world_size``, so the shards
    of global batch ``k`` together are that batch of one process reading the same
    order. ``global_batch_size`` must divide by the world size.
    """
    size = world_size()
    if global_batch_size % size:
        raise ValueError(f"global_batch_size={global_batch_size} does not split over "
                         f"{size} processes; use a multiple of {size}.")
    rank = dist.get_rank() if is_distributed() else 0
    sampler = DistributedSampler(dataset, num_replicas=size, rank=rank, shuffle=shuffle,
                                 seed=seed, drop_last=drop_last)
    return DataLoader(dataset, batch_size=global_batch_size // size, sampler=sampler,
                      drop_last=drop_last, **loader_kwargs)
