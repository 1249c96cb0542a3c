"""The epoch loop every differentiable search plugs into (DARTS, MA-DARTS, SpikeDHS).

A bilevel search alternates two kinds of steps (DARTS Algorithm 1; SpikeDHS's
``search.py``): the training set is split in two halves; for every batch of the
weight half, an SGD step on the weights and a step on the architecture
parameters on a batch of the other half. What stays the same from one method to
the next lives here:

* :func:`make_search_loaders`: the seeded 50/50 split and its two loaders;
* :func:`alternating_epoch`: one epoch of alternating steps, with a persistent
  iterator over the architecture half (restarted when it runs out), the finite
  loss check, gradient clipping, loss and accuracy, the progress bar;
* :func:`run_bilevel`: the epochs: seeding, SGD with a cosine schedule on the
  weights, resume from an atomic checkpoint (weights, architecture, both
  optimizers, scheduler, history, every RNG and the loaders' generators, so a
  resumed search equals an uninterrupted one bit for bit on CPU), the per-epoch
  history row, early stop, the progress bar.

What differs is a :class:`BilevelSearch`: the architecture optimizer and step,
the order of the two steps, what each epoch records and when to stop.
:mod:`snnlab.darts_search` and :mod:`snnlab.spikedhs_search` each define one.

**More than one process** (``torchrun``; :mod:`snnlab.distributed`). Inside a process
group every search of this loop is data-parallel, with nothing to change in the
caller: both halves are sharded (:func:`make_search_loaders`: ``batch_size`` is the
global batch; the measurements on the architecture half read its shard too, in
:func:`unshuffled` order), the supernet's BN normalises over the global batch
(:class:`~snnlab.distributed.GlobalBatchNorm2d`, also in eval mode where the supernet
uses batch statistics), rank 0's weights and architecture are broadcast at the start,
and the gradients of *both* steps are averaged over the processes: the weights'
after their backward, the architecture's (alpha, and SpikeDHS's beta and time
constants) before the Adam step, and for DARTS's second order the look-ahead's
weight gradient and ``v`` as well (:mod:`snnlab.architect`). A step is therefore one
process's step on the global batch; every per-epoch number (losses, accuracies,
spikes per cell, images) is summed over the processes, so every rank holds the same
history (tests/test_distributed_search.py: 2 processes == 1 within 1e-9 in float64).
We average explicitly (``all_reduce``) instead of wrapping the supernet in
``DistributedDataParallel``: the architecture step takes ``autograd.grad`` or
``backward(inputs=...)`` on a subset of the parameters and evaluates the network
with ``torch.func.functional_call`` (second order), which DDP's backward hooks do
not see. Rank 0 alone logs, shows the progress bar and writes checkpoints; they hold
the plain supernet and no loader generator (a sharded order depends on the seed and
the epoch only), so a search resumes under torchrun with any number of processes.
A DGS round (:mod:`snnlab.dgs`) is data-parallel too: each probe step uses the
gradient averaged over the ranks and the look-ahead losses are averaged, so every
rank scores the candidates ``b`` on the global batch and picks the same one.
RNG per rank: every process seeds the same way (``seed_everything(config.seed)``),
so draws such as the loaders' worker seeds agree across ranks; the search draws no
random numbers per sample. A loss that becomes NaN on one rank stops that rank;
torchrun then ends the others.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, NamedTuple, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from torch.utils.data.distributed import DistributedSampler

from ..profiles import seed_everything
from .config import check, check_fields, is_int
from ..checkpoints import loader_fingerprint, model_fingerprint
from .. import distributed
from ..guards import check_batch
from ..train import (_loader_generator, _rng_state, _set_rng_state, _want_progress,
                     resolve_device, snnlab_version)

__all__ = ["BilevelConfig", "SearchLoaders", "make_search_loaders", "prepare_search",
           "unshuffled", "jsonable", "finite_loss", "alternating_epoch", "BilevelSearch",
           "run_bilevel"]

log = logging.getLogger("snnlab.search")


# ----------------------------------------------------------------------------- config

@dataclass(frozen=True)
class BilevelConfig:
    """The settings :func:`run_bilevel` and :func:`make_search_loaders` read; a method's
    config extends it (its own defaults, its own fields). Defaults: DARTS's.

    Data: ``batch_size``; ``train_portion`` of the images train the weights, the rest
    the architecture (0.5); ``max_images`` caps the images used (None: all).
    Weights: SGD ``lr`` cosine to ``lr_min`` over ``epochs``, ``momentum``,
    ``weight_decay``, gradient norm clipped to ``grad_clip``.
    Architecture: Adam ``arch_lr``, ``arch_betas``, ``arch_weight_decay``;
    ``arch_warmup`` epochs of weight steps only.
    ``seed``: the split, the loaders and (fresh runs) every RNG; ``num_workers`` of the
    loaders; a checkpoint every ``checkpoint_every`` epochs.
    """

    epochs: int = 50
    batch_size: int = 64
    train_portion: float = 0.5
    max_images: Optional[int] = None
    lr: float = 0.025
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    arch_lr: float = 3e-4
    arch_betas: Tuple[float, float] = (0.5, 0.999)
    arch_weight_decay: float = 1e-3
    arch_warmup: int = 0
    seed: int = 0
    num_workers: int = 0
    checkpoint_every: int = 1

    def __post_init__(self) -> None:
        check_fields(self, positive=("epochs", "batch_size", "checkpoint_every"),
                     optional_at_least={"max_images": 1})
        object.__setattr__(self, "arch_betas", tuple(float(v) for v in self.arch_betas))
        check(self, 0.0 < self.train_portion < 1.0, "train_portion", "in (0, 1)")
        check(self, self.lr > 0 and 0 <= self.lr_min <= self.lr, "lr_min",
              "in [0, lr] with lr > 0")
        check(self, self.arch_lr > 0, "arch_lr", "> 0")
        check(self, self.grad_clip > 0, "grad_clip", "> 0")
        check(self, is_int(self.arch_warmup) and self.arch_warmup >= 0, "arch_warmup",
              "an int >= 0")


# ----------------------------------------------------------------------------- data

class SearchLoaders(NamedTuple):
    """The weight half and the architecture half of the training set."""

    train: DataLoader
    val: DataLoader


def make_search_loaders(dataset: Union[Dataset, Any], batch_size: int = 64, seed: int = 0,
                        train_portion: float = 0.5, max_images: Optional[int] = None,
                        num_workers: int = 0) -> SearchLoaders:
    """Split a training set into the two halves of the bilevel search (DARTS: 50/50).

    Args:
        dataset: a Dataset, or a :class:`snnlab.data.DataBundle` (its ``train`` set is
            split; its val and test sets stay untouched for retraining).
        batch_size: of both loaders (DARTS: 64 each).
        seed: fixes the split (a seeded permutation) and both loaders' shuffling
            (generators seeded ``seed`` and ``seed + 1``).
        train_portion: share of the images for the weights; the rest move the architecture.
        max_images: use only this many images (taken before the split).
    Returns:
        :class:`SearchLoaders` ``(train, val)``; both shuffle and yield ``(x, y)``.

    Under torchrun (a process group of any size) each half is read through
    :func:`snnlab.distributed.shard_loader`: ``batch_size`` is then the global batch,
    split evenly over the processes, the order a permutation seeded by ``seed + k`` and
    the epoch, the same for every world size (the last incomplete batch is dropped).
    """
    dataset = getattr(dataset, "train", dataset)
    n = len(dataset)
    if max_images is not None:
        n = min(n, max_images)
    order = np.random.default_rng(seed).permutation(len(dataset))[:n]
    split = int(math.floor(train_portion * n))
    if split < 1 or split >= n:
        raise ValueError(f"train_portion={train_portion} of {n} images leaves an empty half; "
                         "use more images or a portion nearer 0.5.")
    halves = [Subset(dataset, np.sort(order[:split]).tolist()),
              Subset(dataset, np.sort(order[split:]).tolist())]
    if distributed.in_process_group():
        return SearchLoaders(*[distributed.shard_loader(half, batch_size, seed=seed + k,
                                                        num_workers=num_workers)
                               for k, half in enumerate(halves)])
    loaders = [DataLoader(half, batch_size=batch_size, shuffle=True, num_workers=num_workers,
                          generator=torch.Generator().manual_seed(seed + k))
               for k, half in enumerate(halves)]
    return SearchLoaders(*loaders)


def prepare_search(config: BilevelConfig, bundle, build_supernet: Callable[..., nn.Module],
                   device: Union[str, torch.device, None] = None
                   ) -> Tuple[torch.device, SearchLoaders, nn.Module]:
    """``(device, loaders, supernet)`` of a fresh search: seeds every RNG with
    ``config.seed`` (the supernet's initial weights and architecture), splits
    ``bundle.train`` (:func:`make_search_loaders`) and builds
    ``build_supernet(config, bundle)``."""
    device = resolve_device(device)
    seed_everything(config.seed)
    loaders = make_search_loaders(bundle, config.batch_size, config.seed, config.train_portion,
                                  config.max_images, config.num_workers)
    return device, loaders, build_supernet(config, bundle)


def unshuffled(loader: Iterable) -> Iterable:
    """``loader``'s dataset and batch size in dataset order (other iterables as given).

    A search supernet's BN normalises with batch statistics in ``eval()`` too, so
    what a measurement returns depends on the batching: fix it. A sharded loader
    (``DistributedSampler``) stays sharded: this process's share of every global
    batch, in dataset order.
    """
    if not isinstance(loader, DataLoader) or loader.batch_size is None:
        return loader                                  # custom batch sampler: keep it
    if isinstance(loader.sampler, DistributedSampler):
        shards = DistributedSampler(loader.dataset, num_replicas=loader.sampler.num_replicas,
                                    rank=loader.sampler.rank, shuffle=False,
                                    drop_last=loader.sampler.drop_last)
        return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=shards,
                          num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                          pin_memory=loader.pin_memory, drop_last=loader.drop_last)
    return DataLoader(loader.dataset, batch_size=loader.batch_size, shuffle=False,
                      num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                      pin_memory=loader.pin_memory, drop_last=loader.drop_last)


def jsonable(value: Any) -> Any:
    """Tuples to lists, recursively (``asdict`` keeps tuples; JSON has only lists)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def _to_device(batch, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    x, y = batch
    return x.to(device, non_blocking=True), y.to(device, non_blocking=True)


# ----------------------------------------------------------------------------- one epoch

def finite_loss(loss: torch.Tensor, what: str, epoch: int, batch: int) -> float:
    """``loss.item()``, or RuntimeError naming where the search diverged."""
    value = loss.item()
    if not math.isfinite(value):
        raise RuntimeError(f"{what} loss is {value} at epoch {epoch}, batch {batch}: the search "
                           "diverged. Lower lr or arch_lr; the last checkpoint is intact.")
    return value


class _Tally:
    """Loss and accuracy of one split over an epoch (correct counts stay on the device)."""

    def __init__(self, device: torch.device):
        self.loss, self.images = 0.0, 0
        self.correct = torch.zeros((), dtype=torch.int64, device=device)

    def add(self, logits: torch.Tensor, y: torch.Tensor, value: float) -> None:
        n = y.shape[0]
        self.loss += value * n
        self.correct += (logits.argmax(1) == y).sum()
        self.images += n

    def result(self, split: str) -> dict:
        """Mean loss and accuracy, over every process's images under torchrun."""
        loss, correct, n = distributed.sum_over_processes(
            [self.loss, self.correct.item(), self.images])
        return {f"{split}_loss": loss / n if n else None,
                f"{split}_acc": correct / n if n else None}


ArchStep = Callable[[Tuple[torch.Tensor, torch.Tensor], Tuple[torch.Tensor, torch.Tensor], int],
                    Optional[Tuple[torch.Tensor, torch.Tensor, float]]]


def alternating_epoch(model: nn.Module, weight_optimizer: torch.optim.Optimizer,
                      train_loader: Iterable, val_loader: Iterable, device: torch.device,
                      epoch: int, bar, *, grad_clip: float, arch_warmup: int,
                      arch_step: ArchStep, arch_first: bool,
                      forward: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
                      record_arch: bool = False) -> dict:
    """One epoch of alternating weight and architecture steps.

    For every batch ``(x, y)`` of ``train_loader``: the architecture step on the
    next batch of ``val_loader`` (``arch_first``: before the weight step, DARTS;
    else after it, SpikeDHS), and an SGD step on ``model.weight_parameters()``
    (gradients w.r.t. the weights only, norm clipped to ``grad_clip``). The
    architecture half's iterator persists through the epoch (quark0 re-created it
    at every step, quark0/darts#8) and restarts when it runs out. No architecture
    step in the first ``arch_warmup`` epochs.

    Args:
        arch_step: ``(batch, val_batch, batch index) -> None or (logits, y, loss)``;
            with ``record_arch`` its forward is tallied as ``val_loss``/``val_acc``.
        forward: ``x -> logits`` of the weight step (default ``model(x)``; DARTS
            wraps it in a spike monitor).
    Returns:
        ``train_loss``, ``train_acc`` (and ``val_loss``, ``val_acc`` with
        ``record_arch``; None when no architecture step ran), ``images`` (fed to
        weight and architecture steps).
    """
    model.train()
    weights = model.weight_parameters()
    forward = model if forward is None else forward
    move_arch = epoch > arch_warmup
    val_iter = iter(val_loader)                  # persistent through the epoch
    train, val = _Tally(device), _Tally(device)
    arch_images = 0

    def next_val_batch(b):
        nonlocal val_iter
        try:
            batch = next(val_iter)
        except StopIteration:                    # the other half ran out first: restart it
            val_iter = iter(val_loader)
            batch = next(val_iter)
        check_batch(batch[0], batch[1], f"search epoch {epoch}, architecture batch {b}")
        return _to_device(batch, device)

    def step_arch(batch, b):
        nonlocal arch_images
        val_batch = next_val_batch(b)
        arch_images += val_batch[1].shape[0]
        out = arch_step(batch, val_batch, b)
        if record_arch and out is not None:
            val.add(*out)

    for b, batch in enumerate(train_loader):
        check_batch(batch[0], batch[1], f"search epoch {epoch}, training batch {b}")
        x, y = _to_device(batch, device)
        if move_arch and arch_first:
            step_arch((x, y), b)
        logits = forward(x)                                            # [B, classes]
        loss = F.cross_entropy(logits, y)
        value = finite_loss(loss, "search", epoch, b)
        weight_optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(loss, inputs=weights)    # weights only: no architecture grads
        distributed.average_gradients(weights)           # torchrun: the global batch's gradient
        nn.utils.clip_grad_norm_(weights, grad_clip)
        weight_optimizer.step()
        train.add(logits, y, value)
        if move_arch and not arch_first:
            step_arch((x, y), b)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{value:.3f}", refresh=False)
    if train.images == 0:
        raise ValueError("train_loader yielded no batches; the search needs at least one.")
    out = train.result("train")
    if record_arch:
        out.update(val.result("val"))
    # fed to weight and architecture steps (by every process)
    out["images"] = int(distributed.sum_over_processes([train.images + arch_images])[0])
    return out


# ----------------------------------------------------------------------------- the epochs

class BilevelSearch:
    """What one differentiable search adds to :func:`run_bilevel` (subclass it).

    Attributes set by the subclass: ``checkpoint_format`` (stored in and checked on
    every checkpoint), ``label`` (progress bar and log), and ``model`` / ``config``
    (a frozen dataclass with ``epochs``, ``seed``, ``lr``, ``lr_min``, ``momentum``,
    ``weight_decay``, ``checkpoint_every``).

    Override:
        make_arch_optimizer(): the architecture optimizer (checkpointed).
        run_epoch(weight_optimizer, train_loader, val_loader, device, epoch, bar):
            one epoch, usually :func:`alternating_epoch`; returns the row's numbers.
        begin_epoch(epoch), end_epoch(epoch, lr, train_loader, val_loader, device):
            the row's entries before and after the epoch's steps (lr: the epoch's).
        stop(row): True ends the search after this epoch (early stop).
        extra_state() / load_extra_state(state): more state for the checkpoint.
        config_state(): the config as stored in the checkpoint (checked on resume).
        save(path, state) / load(path): write and read one checkpoint.
        describe(row): the log line of an epoch.
    """

    checkpoint_format = "snnlab-bilevel-search-1"
    label = "search"

    def __init__(self, model: nn.Module, config: Any):
        self.model, self.config = model, config
        self.arch_optimizer: Optional[torch.optim.Optimizer] = None

    def make_arch_optimizer(self) -> torch.optim.Optimizer:
        raise NotImplementedError

    def run_epoch(self, weight_optimizer, train_loader, val_loader, device, epoch, bar) -> dict:
        raise NotImplementedError

    def begin_epoch(self, epoch: int) -> dict:
        return {}

    def end_epoch(self, epoch: int, lr: float, train_loader, val_loader, device) -> dict:
        return {}

    def stop(self, row: dict) -> bool:
        return False

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def config_state(self) -> dict:
        return jsonable(dataclasses.asdict(self.config))

    # what a resumed search must match beyond its config: the supernet and the loaders
    # (set by run_bilevel; None compares nothing)
    fingerprint: Optional[dict] = None

    def save(self, path: Union[str, os.PathLike], state: dict) -> None:
        from ..train import save_checkpoint
        save_checkpoint(path, state, fingerprint=self.fingerprint)

    def load(self, path: Union[str, os.PathLike]) -> dict:
        from ..train import read_checkpoint
        return read_checkpoint(path, self.checkpoint_format, f"a {self.label} checkpoint",
                               self.config_state(), type(self.config).__name__,
                               kind="search ", fresh="search", fingerprint=self.fingerprint)

    def describe(self, row: dict) -> str:
        return (f"{self.label} epoch {row['epoch']}/{self.config.epochs}: train acc "
                f"{row['train_acc']:.4f}, {row['seconds']:.1f}s")


def _set_epoch(epoch: int, *loaders: Iterable) -> None:
    """Sharded loaders (torchrun) draw each epoch's order from their seed and the epoch."""
    for loader in loaders:
        sampler = getattr(loader, "sampler", None)
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch)


def _progress_bar(progress: Optional[bool], train_loader: Iterable, epochs_left: int):
    if not _want_progress(progress) or epochs_left <= 0:
        return None
    from tqdm.auto import tqdm
    try:
        total = len(train_loader) * epochs_left                     # type: ignore[arg-type]
    except TypeError:
        total = None
    return tqdm(total=total, desc="search", unit="batch", leave=False)


def run_bilevel(search: BilevelSearch, train_loader: Iterable, val_loader: Iterable,
                device: Union[str, torch.device, None] = None,
                checkpoint: Union[str, os.PathLike, None] = None, resume: bool = False,
                progress: Optional[bool] = None) -> list:
    """Run ``search.config.epochs`` epochs of a bilevel search; returns one dict per epoch.

    Args:
        search: the method's :class:`BilevelSearch` (model and config inside).
        train_loader, val_loader: the weight half and the architecture half
            (:func:`make_search_loaders`); their generators are checkpointed.
        device: None picks CUDA when available; the model is moved there.
        checkpoint: written atomically every ``config.checkpoint_every`` epochs, after
            the last one and on an early stop.
        resume: continue from ``checkpoint`` (same config): weights, architecture, both
            optimizers, scheduler, history, method state and every RNG are restored,
            so the result equals an uninterrupted search. A finished search returns
            its history.
        progress: a ``tqdm.auto`` bar; None follows :mod:`snnlab.train`'s rule.
    Returns:
        the history: per epoch ``epoch``, ``lr``, what ``begin_epoch``, ``run_epoch``
        and ``end_epoch`` return, and ``seconds``.
    """
    model, config = search.model, search.config
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=<path of the search to continue>.")
    device = resolve_device(device)
    if not resume:
        seed_everything(config.seed)
    model.to(device)
    if distributed.in_process_group():         # torchrun: data-parallel supernet
        distributed.global_batch_norm(model)   # BN over the global batch (before the optimizers)
        distributed.broadcast_state(model)     # rank 0's weights and architecture everywhere
    main = distributed.is_main_process()
    weight_optimizer = torch.optim.SGD(model.weight_parameters(), lr=config.lr,
                                       momentum=config.momentum, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(weight_optimizer, T_max=config.epochs,
                                                           eta_min=config.lr_min)
    search.arch_optimizer = search.make_arch_optimizer()
    search.fingerprint = {**model_fingerprint(model), **loader_fingerprint(train_loader),
                          **{f"val_{k}": v for k, v in loader_fingerprint(val_loader).items()}}
    val_generator = _loader_generator(val_loader)
    history: list = []
    start, stopped = 0, False
    if resume:
        state = search.load(checkpoint)
        model.load_state_dict(state["model"])
        weight_optimizer.load_state_dict(state["weight_optimizer"])
        search.arch_optimizer.load_state_dict(state["arch_optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        search.load_extra_state(state)
        history, start = list(state["history"]), int(state["epoch"])
        stopped = bool(state.get("stopped", False))
        _set_rng_state(state["rng"], train_loader)
        if state["val_rng"] is not None and val_generator is not None:
            val_generator.set_state(state["val_rng"])
        if main:
            log.info("resuming %s %s after epoch %d of %d", search.label, checkpoint, start,
                     config.epochs)
    bar = None if stopped or not main else _progress_bar(progress, train_loader,
                                                         config.epochs - start)
    try:
        for epoch in range(start + 1, config.epochs + 1):
            if stopped:
                break
            t0 = time.perf_counter()
            _set_epoch(epoch, train_loader, val_loader)
            lr = weight_optimizer.param_groups[0]["lr"]
            if bar is not None:
                bar.set_description(f"{search.label} epoch {epoch}/{config.epochs}")
            row = {"epoch": epoch, "lr": lr, **search.begin_epoch(epoch)}
            row.update(search.run_epoch(weight_optimizer, train_loader, val_loader, device,
                                        epoch, bar))
            scheduler.step()
            row.update(search.end_epoch(epoch, lr, train_loader, val_loader, device))
            stopped = search.stop(row)
            row["seconds"] = time.perf_counter() - t0
            history.append(row)
            if main:
                log.info("%s", search.describe(row))
            if checkpoint is not None and main and (epoch % config.checkpoint_every == 0
                                                    or stopped or epoch == config.epochs):
                search.save(checkpoint, dict(
                    format=search.checkpoint_format, snnlab_version=snnlab_version(),
                    torch_version=str(torch.__version__), epoch=epoch, stopped=stopped,
                    history=history, config=search.config_state(), model=model.state_dict(),
                    weight_optimizer=weight_optimizer.state_dict(),
                    arch_optimizer=search.arch_optimizer.state_dict(),
                    scheduler=scheduler.state_dict(), rng=_rng_state(train_loader),
                    val_rng=val_generator.get_state() if val_generator is not None else None,
                    **search.extra_state()))
    finally:
        if bar is not None:
            bar.close()
    return history
