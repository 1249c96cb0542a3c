"""Data-parallel training with ``torchrun`` and DistributedDataParallel (DDP).

``torchrun`` (``python -m torch.distributed.run``, PyTorch's launcher) starts the
same program once per process and sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``. The command line needs nothing more::

    python -m torch.distributed.run --nproc_per_node 2 -m snnlab train --profile tiny
    python -m torch.distributed.run --nproc_per_node 2 -m snnlab search darts --epochs 1

(the batch size is the global batch of all processes; rank 0 prints and writes).
In your own script::

    with snnlab.distributed.process_group() as info:      # gloo on CPU, nccl on CUDA
        model = snnlab.distributed.prepare_model(model, device)  # BN over the global batch, DDP
        loader = snnlab.distributed.shard_loader(dataset, global_batch_size=128, seed=0)
        history = snnlab.train.fit(model, loader, config=config, device=device,
                                   checkpoint="run.pt")   # rank 0 writes the checkpoint

The differentiable searches need no call at all: inside a process group,
:func:`snnlab.search.loop.make_search_loaders` shards both halves and
:func:`snnlab.search.loop.run_bilevel` makes the supernet data-parallel (that
module's docstring says how and why it averages gradients itself).

What each piece does, and why:

* **Global batch.** :func:`shard_loader` gives each of ``W`` processes ``1/W`` of every
  global batch (``DistributedSampler``; its shuffle seeded by ``seed`` and the epoch,
  which :func:`snnlab.train.fit` advances). DDP averages the gradients, so a step
  equals one step of one process on the whole global batch. The reported epoch
  numbers are summed over the processes (:func:`sum_over_processes`).
* **Batch norm.** Each process sees only its shard, so plain BN would normalise with
  shard statistics. :func:`prepare_model` replaces every ``BatchNorm2d`` by
  :class:`GlobalBatchNorm2d`, which sums the statistics over processes (``all_reduce``
  with autograd) on any backend; ``nn.SyncBatchNorm`` does the same on GPUs only.
  With it, 2 processes equal 1 process up to float rounding: tests/test_distributed.py
  (fit), tests/test_distributed_cli.py (``torchrun ... train``) and
  tests/test_distributed_search.py (DARTS, SpikeDHS), all in float64 within 1e-9.
* **The same data order for any number of processes.** Under torchrun the data is
  always read through :func:`shard_loader`, one process included, so ``torchrun
  --nproc_per_node 1`` and ``--nproc_per_node 4`` see the same global batches. A plain
  ``python -m snnlab`` run (no process group) keeps its own seeded shuffle: another,
  equally random order, and the results of earlier releases.
* **RNG per rank.** Every process seeds the same way (``fit`` calls
  ``seed_everything(config.seed)``), so initial weights agree (DDP also copies rank
  0's weights at wrap time, the searches :func:`broadcast_state`) and so do dropout
  and drop-path masks and ``cutout`` centres, which are drawn for each shard: image
  ``i`` of every shard gets the same draw, so draws are correlated across ranks, not
  across the samples of one shard. Nothing in snnlab depends on a mask being unique
  across ranks; with such augmentation N processes do not equal one exactly.
  Checkpoints store rank 0's RNG state, which every rank restores on resume: the
  same shared stream.
* **Checkpoints** are written by rank 0 only (:func:`is_main_process`); they hold the
  unwrapped model's weights and fingerprint the *global* batch, so a run resumes on
  any world size (a torchrun checkpoint resumes under torchrun: a plain run reads
  another order and has no global-batch BN).
* **Logging.** The command line lets rank 0 log; the others print warnings only.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterable, Iterator, List, NamedTuple, Optional, Sequence

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

__all__ = ["DistInfo", "init_from_env", "process_group", "env_rank", "in_process_group",
           "is_distributed", "is_main_process", "world_size", "rank", "device_for_rank",
           "GlobalBatchNorm2d", "global_batch_norm", "prepare_model", "unwrap", "shard_loader",
           "sum_over_processes", "average_gradients", "average_tensors", "broadcast_state"]


class DistInfo(NamedTuple):
    rank: int
    world_size: int
    local_rank: int


def in_process_group() -> bool:
    """True once a process group is initialised (by torchrun's :func:`init_from_env`),
    even of one process: data is then read through sharded samplers."""
    return dist.is_available() and dist.is_initialized()


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return in_process_group() and dist.get_world_size() > 1


def world_size() -> int:
    """Processes in the group (1 outside one)."""
    return dist.get_world_size() if in_process_group() else 1


def rank() -> int:
    """This process's rank (0 outside a group)."""
    return dist.get_rank() if in_process_group() else 0


def env_rank() -> int:
    """The rank torchrun gave this process (``$RANK``), readable before the group exists:
    0 without torchrun. The CLI uses it to keep the log of other ranks quiet."""
    return int(os.environ.get("RANK", "0"))


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


@contextmanager
def process_group(backend: Optional[str] = None) -> Iterator[DistInfo]:
    """:func:`init_from_env` for a ``with`` block; the group it created is destroyed at the
    end (also on an error), so the process exits cleanly. Without torchrun: ``(0, 1, 0)``.

    Example::

        with process_group("gloo") as info:
            ...                                   # info.rank, info.world_size
    """
    created = "WORLD_SIZE" in os.environ and not in_process_group()
    info = init_from_env(backend)
    try:
        yield info
    finally:
        if created and in_process_group():
            dist.destroy_process_group()


def device_for_rank(device: torch.device, local_rank: int) -> torch.device:
    """One GPU per process: ``cuda`` becomes ``cuda:<local_rank>`` (made current); other
    devices, and a ``cuda:k`` given explicitly, stay as they are."""
    if device.type == "cuda" and device.index is None and in_process_group():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device


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
    ``nn.BatchNorm2d``. Outside a process group of 2 or more, or when it normalises with
    running statistics (eval mode), it is ``BatchNorm2d``. Every process must call it
    equally often (a collective): the shards of one global batch have equal sizes.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # batch statistics in training mode, and always without running statistics (as
        # BatchNorm2d; the DARTS supernet normalises so in eval mode too)
        batch_stats = self.training or not self.track_running_stats
        if not (batch_stats and is_distributed()):
            return super().forward(x)
        count = torch.full((1,), x.numel() / x.shape[1], dtype=x.dtype, device=x.device)
        stats = torch.cat([x.sum((0, 2, 3)), x.square().sum((0, 2, 3)), count])   # [2C + 1]
        stats = _SumOverProcesses.apply(stats)
        C = x.shape[1]
        n = stats[-1]
        mean = stats[:C] / n
        var = stats[C:2 * C] / n - mean.square()                     # biased, as BN normalises
        if self.training and self.track_running_stats:
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
                                    child.track_running_stats,      # no tensors: no dtype
                                    device=None if like is None else like.device,
                                    dtype=None if like is None else like.dtype)
            new.load_state_dict(child.state_dict())
            setattr(model, name, new)
        else:
            global_batch_norm(child)
    return model


def prepare_model(model: nn.Module, device: Optional[torch.device] = None) -> nn.Module:
    """Global-batch BN, then ``DistributedDataParallel``; ``model`` itself outside a group.

    Inside a group of any size, one process included, so that a model prepared by
    ``torchrun --nproc_per_node 1`` has the same modules (and checkpoint fingerprint) as
    one prepared by 4 processes.
    """
    if not in_process_group():
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
    order. ``global_batch_size`` must divide by the world size. The order is
    ``DistributedSampler``'s: a permutation seeded by ``seed + epoch`` (call
    ``loader.sampler.set_epoch(epoch)`` each epoch; :func:`snnlab.train.fit` does),
    so it depends on the epoch only and a run resumes on any world size.
    ``loader.batch_size`` is this process's share; the global batch is
    ``loader.batch_size * loader.sampler.num_replicas``.
    """
    size = world_size()
    if global_batch_size % size:
        raise ValueError(f"the global batch of {global_batch_size} images does not split "
                         f"evenly over {size} processes: use a batch size that is a multiple of "
                         f"{size} (e.g. {max(size, global_batch_size // size * size)}; a search: "
                         f"--set batch_size=...), or a number of processes that divides "
                         f"{global_batch_size}.")
    rank = dist.get_rank() if is_distributed() else 0
    sampler = DistributedSampler(dataset, num_replicas=size, rank=rank, shuffle=shuffle,
                                 seed=seed, drop_last=drop_last)
    return DataLoader(dataset, batch_size=global_batch_size // size, sampler=sampler,
                      drop_last=drop_last, **loader_kwargs)


# ----------------------------------------------------------------------------- collectives
# Each is a no-op outside a group of 2 or more, so single-process code runs unchanged.

def sum_over_processes(values: Sequence[float]) -> List[float]:
    """The sums of ``values`` over all processes (float64 ``all_reduce``), as Python floats.

    For the counters of an epoch (loss sums, correct predictions, images), so that
    every rank reports the numbers of the global batch. Integers below ``2**53`` stay exact.
    """
    if not is_distributed():
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return t.tolist()


def average_gradients(params: Iterable[torch.Tensor]) -> None:
    """Replace every ``p.grad`` by its mean over the processes (what DDP does in backward).

    Gradients that are None stay None (the same parameters get none on every rank).
    Used where the DDP wrapper cannot hook in: the architecture step of a search takes
    ``autograd.grad`` or ``backward(inputs=...)`` on a subset of the parameters.
    """
    if not is_distributed():
        return
    grads = [p.grad for p in params if p.grad is not None]
    average_tensors(grads)


def average_tensors(tensors: Sequence[torch.Tensor]) -> Sequence[torch.Tensor]:
    """Average each tensor over the processes, in place (one flat ``all_reduce``);
    returns ``tensors``."""
    if not is_distributed() or not tensors:
        return tensors
    flat = torch.cat([t.detach().reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    with torch.no_grad():
        for t in tensors:
            n = t.numel()
            t.copy_(flat[offset:offset + n].view_as(t))
            offset += n
    return tensors


def broadcast_state(model: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s parameters and buffers to every process (DDP does it when it
    wraps a model): the same start even if a rank built or loaded its model differently."""
    if not is_distributed():
        return
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(t.data, src)
