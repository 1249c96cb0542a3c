"""The spiking DARTS search loop: alternating alpha and weight steps, logged per epoch.

``darts_search`` follows DARTS Algorithm 1 (Liu, Simonyan & Yang, ICLR 2019;
quark0 ``train_search.py``): the training set is split in two halves; for every
batch of the weight half it first takes an architecture step on a batch of the
alpha half (:class:`snnlab.architect.Architect`), then an SGD step on the
weights. After every epoch it records what the book plots:

* the softmax weights of every edge (normal and reduction cell),
* the derived genotype and the number of ``skip_connect`` edges in the normal
  cell (the skip-collapse indicator),
* spikes per image of every cell (NoS, AutoSNN's convention; MA-DARTS's
  signature figure), during the epoch's weight steps (train) and on the alpha
  half (val), with loss and accuracy of both.

Collapse remedies, each one switch in :class:`DartsConfig`:

* ``max_skips``: cap the skip edges of the derived normal cell (P-DARTS, Chen et
  al. ICCV 2019; they keep at most 2),
* ``early_stop_skips``: stop the search once the derived normal cell has that
  many skips (DARTS+, Liang et al. 2019: 2),
* ``aux_skip``: DARTS- (Chu et al., ICLR 2021): an auxiliary skip with weight
  beta on every edge (identity on stride-1 edges, an affine-free factorized
  reduce on the reduction cells' stride-2 edges, as the official
  ``model_search.py``), decayed linearly from ``aux_skip`` to 0 (its
  ``DecayScheduler``); the supernet must be built with ``auxiliary_skip=True``
  (:func:`build_search_network` does so when ``aux_skip > 0``).

Deviations from quark0, each for a reason: the validation iterator is
persistent (quark0 calls ``next(iter(valid_queue))`` every step, re-creating the
iterator, quark0/darts#8) and restarted at each epoch boundary so a checkpoint
can resume it exactly; the scheduler steps after the epoch; checkpoints hold
the alphas (registered Parameters), both optimizers and every RNG state, so a
resumed search equals an uninterrupted one (bit for bit on CPU; tested).
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Iterable, NamedTuple, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from .architect import ORDERS, Architect
from .darts import DARTS_NEURON, DARTS_SNN_OPS, SearchNetwork, cell_key, lif_view
from .genotypes import Genotype
from .monitor import SpikeMonitor
from .ops import check_op_names
from .profiles import Profile, seed_everything
from .search.config import check, check_fields, config_from_profile, is_int, settings_of
from .search.provenance import run_provenance
from .search.result import SearchResult, differentiable_result
from .train import (_loader_generator, _rng_state, _set_rng_state, _want_progress,
                    read_checkpoint, resolve_device, save_checkpoint, snnlab_version)

__all__ = ["DartsConfig", "SearchLoaders", "make_search_loaders", "build_search_network",
           "measure_cells", "nos_per_cell", "darts_search", "load_search_checkpoint",
           "run_darts", "run_darts_search", "load_search_result"]

log = logging.getLogger(__name__)

_CHECKPOINT_FORMAT = "snnlab-darts-search-1"


@dataclass(frozen=True)
class DartsConfig:
    """Settings of one spiking DARTS search (``dataclasses.asdict`` goes into checkpoints).

    Supernet: ``layers`` cells of ``steps`` nodes over ``ops``, ``C`` node channels,
    ``T`` time steps, LIF ``tau``/``threshold``, BN ``affine`` (DARTS: off),
    ``attention``/``attention_placement`` (names of :mod:`snnlab.attention`, MA-DARTS).
    Data: ``batch_size``; ``train_portion`` of the images train the weights, the
    rest the alphas (DARTS: 0.5); ``max_images`` caps the images used (None: all).
    Weights: SGD ``lr`` cosine to ``lr_min``, ``momentum``, ``weight_decay``, gradient
    norm clipped to ``grad_clip`` (DARTS: 0.025, 0.001, 0.9, 3e-4, 5).
    Alphas: Adam ``arch_lr``, ``arch_betas``, ``arch_weight_decay`` (DARTS: 3e-4,
    (0.5, 0.999), 1e-3); ``order`` 1 or 2; ``xi`` the virtual step (None: the current
    weight lr, as DARTS); ``arch_warmup`` epochs of weight steps only before the
    alphas move (PC-DARTS uses 15; DARTS 0).
    Remedies: ``max_skips`` (P-DARTS cap), ``early_stop_skips`` (DARTS+),
    ``aux_skip`` (DARTS- initial beta; 0 = off).
    Logging: ``eval_batches`` of the alpha half measured per epoch (None: all), in
    a fixed order (the first batches of the half in dataset order; see
    :func:`darts_search`).
    ``seed``: seeds the split, the loaders and (fresh runs) every RNG.
    """

    epochs: int = 50
    layers: int = 8
    C: int = 16
    T: int = 2                      # MA-DARTS reports T = 2 (secondary source)
    steps: int = 4
    ops: Tuple[str, ...] = DARTS_SNN_OPS
    tau: float = DARTS_NEURON["tau"]
    threshold: float = DARTS_NEURON["threshold"]
    affine: bool = False            # DARTS A.1.1: no BN affine parameters in search
    attention: str = "none"
    attention_placement: str = "cell_output"
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
    order: int = 1
    xi: Optional[float] = None
    arch_warmup: int = 0
    max_skips: Optional[int] = None
    early_stop_skips: Optional[int] = None
    aux_skip: float = 0.0
    eval_batches: Optional[int] = None
    seed: int = 0
    num_workers: int = 0
    checkpoint_every: int = 1

    def __post_init__(self) -> None:
        check_fields(self, positive=("epochs", "layers", "C", "T", "steps", "batch_size",
                                     "checkpoint_every"),
                     optional_at_least={"max_skips": 0, "early_stop_skips": 0,
                                        "max_images": 2, "eval_batches": 2})
        object.__setattr__(self, "ops", check_op_names(self.ops))
        object.__setattr__(self, "arch_betas", tuple(self.arch_betas))
        check(self, self.order in ORDERS, "order", "1 (first order) or 2 (second order)")
        check(self, 0.0 < self.train_portion < 1.0, "train_portion", "in (0, 1)")
        check(self, self.lr > 0 and 0 <= self.lr_min <= self.lr, "lr_min", "in [0, lr]")
        check(self, self.arch_lr > 0, "arch_lr", "> 0")
        check(self, self.grad_clip > 0, "grad_clip", "> 0")
        check(self, self.tau >= 1, "tau", ">= 1")
        check(self, self.xi is None or self.xi >= 0, "xi", "None (the weight lr) or >= 0")
        check(self, is_int(self.arch_warmup) and 0 <= self.arch_warmup, "arch_warmup",
              "an int >= 0")
        check(self, self.aux_skip >= 0, "aux_skip", ">= 0 (0 turns DARTS- off)")

    @classmethod
    def from_profile(cls, profile: Profile, **overrides: Any) -> "DartsConfig":
        """The search settings of a profile's ``darts_*`` fields (plus ``tau``, ``seed``,
        ``num_workers``), then ``overrides``.

        Example:
            >>> from snnlab.profiles import get_profile
            >>> DartsConfig.from_profile(get_profile("tiny"), order=2).order
            2
        """
        d = settings_of(profile, "darts")
        base = dict(epochs=d.epochs, layers=d.layers, C=d.channels, T=d.T,
                    batch_size=d.batch_size, lr=d.lr, lr_min=d.lr_min, arch_lr=d.arch_lr,
                    max_images=d.max_images, tau=profile.tau, seed=profile.seed,
                    num_workers=profile.num_workers)
        return config_from_profile(cls, profile, base, overrides)


# ----------------------------------------------------------------------------- data

class SearchLoaders(NamedTuple):
    """The weight half and the alpha half of the training set."""

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
        train_portion: share of the images for the weights; the rest move the alphas.
        max_images: use only this many images (taken before the split).
    Returns:
        :class:`SearchLoaders` ``(train, val)``; both shuffle and yield ``(x, y)``.
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
    loaders = [DataLoader(half, batch_size=batch_size, shuffle=True, num_workers=num_workers,
                          generator=torch.Generator().manual_seed(seed + k))
               for k, half in enumerate(halves)]
    return SearchLoaders(*loaders)


def build_search_network(config: DartsConfig, bundle) -> SearchNetwork:
    """The :class:`~snnlab.darts.SearchNetwork` a config describes, for a data bundle."""
    from .attention import get_attention
    attention = None if config.attention == "none" else get_attention(config.attention)
    return SearchNetwork(C=config.C, num_classes=bundle.num_classes, layers=config.layers,
                         T=config.T, in_channels=bundle.in_channels,
                         image_size=bundle.image_size, ops=config.ops,
                         neuron={"tau": config.tau, "threshold": config.threshold},
                         steps=config.steps, attention=attention,
                         attention_placement=config.attention_placement, affine=config.affine,
                         auxiliary_skip=config.aux_skip > 0)


# ----------------------------------------------------------------------------- measuring

def _unshuffled(loader: Iterable) -> Iterable:
    """``loader``'s dataset and batch size in dataset order (other iterables as given).

    The search BN normalises with batch statistics in ``eval()`` too, so what a
    measurement returns depends on the batching: fix it.
    """
    if not isinstance(loader, DataLoader) or loader.batch_size is None:
        return loader                                  # custom batch sampler: keep it
    return DataLoader(loader.dataset, batch_size=loader.batch_size, shuffle=False,
                      num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                      pin_memory=loader.pin_memory, drop_last=loader.drop_last)


def _group_nos(monitor: SpikeMonitor, images: int) -> dict:
    return monitor.group_by(cell_key, images=images)


def measure_cells(model: nn.Module, loader: Iterable, device: Union[str, torch.device, None] = None,
                  max_batches: Optional[int] = None) -> dict:
    """Loss, accuracy and spikes per image per cell of ``model`` on ``loader`` (eval mode).

    Works for :class:`~snnlab.darts.SearchNetwork` and
    :class:`~snnlab.darts.DiscreteNetwork` (LIFs under ``cells.<i>.``).

    Returns:
        ``{"loss", "accuracy", "images", "nos", "nos_per_cell": {"cells.0": ..., ...}}``
        where ``nos`` is spikes per image of the whole model (the sum over cells).

    A search supernet's BN uses batch statistics in ``eval()`` too, so its numbers
    depend on how ``loader`` batches the images: pass an unshuffled loader for
    reproducible ones (:func:`darts_search` does).
    """
    device = resolve_device(device)
    model.to(device)
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    images = 0
    try:
        with SpikeMonitor(lif_view(model)) as monitor, torch.no_grad():
            for b, (x, y) in enumerate(loader):
                if max_batches is not None and b >= max_batches:
                    break
                x, y = x.to(device), y.to(device)
                logits = model(x)                                      # [B, classes]
                loss_sum += F.cross_entropy(logits, y, reduction="sum")
                correct += (logits.argmax(1) == y).sum()
                images += y.shape[0]
            if images == 0:
                raise ValueError("loader yielded no batches; measure_cells needs at least one.")
            per_cell = _group_nos(monitor, images)
    finally:
        model.train(was_training)
    return {"loss": loss_sum.item() / images, "accuracy": correct.item() / images,
            "images": images, "nos": sum(per_cell.values()), "nos_per_cell": per_cell}


def nos_per_cell(model: nn.Module, loader: Iterable, device: Union[str, torch.device, None] = None,
                 max_batches: Optional[int] = None) -> dict:
    """Spikes per image per cell, ``{"cells.0": ..., ...}`` (see :func:`measure_cells`)."""
    return measure_cells(model, loader, device, max_batches)["nos_per_cell"]


# ----------------------------------------------------------------------------- checkpoints

def load_search_checkpoint(path: Union[str, os.PathLike],
                           config: Optional[DartsConfig] = None) -> dict:
    """Read a checkpoint written by :func:`darts_search` onto the CPU.

    Args:
        path: the checkpoint file.
        config: when given, every field except ``checkpoint_every`` must equal the
            stored config (ValueError naming the differences).
    Returns:
        the state: ``model`` (weights and alphas), ``weight_optimizer``,
        ``arch_optimizer``, ``scheduler``, ``epoch``, ``history``, ``stopped``,
        ``config``, ``rng``, ``val_rng``, ``snnlab_version``, ``torch_version``.
    """
    return read_checkpoint(path, _CHECKPOINT_FORMAT, "a spiking DARTS search checkpoint",
                           None if config is None else dataclasses.asdict(config), "DartsConfig",
                           kind="search ", fresh="search")


# ----------------------------------------------------------------------------- the loop

def _to_device(batch, device: torch.device):
    x, y = batch
    return x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def _add_scaled(total: dict, part: dict, scale: float) -> None:
    for key, value in part.items():
        total[key] = total.get(key, 0.0) + value * scale


def _search_epoch(model, architect, weight_optimizer, config, train_loader, val_loader,
                  device, epoch, bar) -> dict:
    """One epoch of Algorithm 1: for each train batch, an alpha step then a weight step."""
    model.train()
    weights = model.weight_parameters()
    move_alphas = epoch > config.arch_warmup
    view = lif_view(model)             # the LIFs only: cheap spike counting
    val_iter = iter(val_loader)        # persistent through the epoch (not one per step)
    loss_sum, images, nos = 0.0, 0, {}
    correct = torch.zeros((), dtype=torch.int64, device=device)
    for b, batch in enumerate(train_loader):
        x, y = _to_device(batch, device)
        if move_alphas:
            try:
                val_batch = next(val_iter)
            except StopIteration:      # alpha half exhausted first: start it again
                val_iter = iter(val_loader)
                val_batch = next(val_iter)
            architect.step((x, y), _to_device(val_batch, device), weight_optimizer)
        with SpikeMonitor(view) as monitor:         # train NoS: the weight steps' forwards
            logits = model(x)                                          # [B, classes]
        loss = F.cross_entropy(logits, y)
        value = loss.item()
        if not math.isfinite(value):
            raise RuntimeError(f"search loss is {value} at epoch {epoch}, batch {b} (lr "
                               f"{weight_optimizer.param_groups[0]['lr']:.3g}): the search "
                               "diverged. Lower lr or arch_lr; the last checkpoint is intact.")
        weight_optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(loss, inputs=weights)      # weights only: alphas get no grad
        nn.utils.clip_grad_norm_(weights, config.grad_clip)
        weight_optimizer.step()
        n = y.shape[0]
        _add_scaled(nos, _group_nos(monitor, n), n)
        loss_sum += value * n
        correct += (logits.argmax(1) == y).sum()
        images += n
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{value:.3f}", refresh=False)
    if images == 0:
        raise ValueError("train_loader yielded no batches; the search needs at least one.")
    per_cell = {k: v / images for k, v in nos.items()}
    return {"train_loss": loss_sum / images, "train_acc": correct.item() / images,
            "train_nos": sum(per_cell.values()), "train_nos_per_cell": per_cell}


def _check_model(model: nn.Module, config: DartsConfig) -> None:
    for method in ("arch_parameters", "weight_parameters", "genotype", "arch_weights"):
        if not callable(getattr(model, method, None)):
            raise TypeError(f"model ({type(model).__name__}) has no {method}(); darts_search needs "
                            "a supernet such as snnlab.darts.SearchNetwork "
                            "(snnlab.darts_search.build_search_network(config, bundle)).")
    if config.aux_skip > 0 and not callable(getattr(model, "set_aux_skip", None)):
        raise TypeError("config.aux_skip > 0 (DARTS-) needs a model with set_aux_skip(beta).")
    if config.aux_skip > 0 and getattr(model, "auxiliary_skip", True) is False:
        raise ValueError("config.aux_skip > 0 (DARTS-) needs the auxiliary path on every edge: "
                         "build the supernet with SearchNetwork(..., auxiliary_skip=True) or "
                         "build_search_network(config, bundle).")


def darts_search(model: nn.Module, train_loader: Iterable, val_loader: Iterable,
                 config: Optional[DartsConfig] = None,
                 device: Union[str, torch.device, None] = None,
                 checkpoint: Union[str, os.PathLike, None] = None, resume: bool = False,
                 progress: Optional[bool] = None) -> list[dict]:
    """Search a cell with spiking DARTS; returns one dict per epoch.

    Args:
        model: a supernet (:class:`~snnlab.darts.SearchNetwork` or one with its API),
            moved to ``device``.
        train_loader, val_loader: the weight half and the alpha half
            (:func:`make_search_loaders`); their generators are checkpointed.
        config: a :class:`DartsConfig` (None: DARTS's defaults).
        device: None picks CUDA when available.
        checkpoint: written atomically every ``config.checkpoint_every`` epochs, after
            the last one and on an early stop.
        resume: continue from ``checkpoint`` (same config): weights, alphas, both
            optimizers, scheduler, history and RNG states are restored, so the result
            equals an uninterrupted search. A finished search returns its history.
        progress: a ``tqdm.auto`` bar; None follows :mod:`snnlab.train`'s rule
            (``SNNLAB_PROGRESS``, else a terminal or Jupyter).
    Returns:
        per epoch: ``epoch``, ``lr``, ``aux_skip``, ``train_loss``, ``train_acc``,
        ``train_nos``, ``train_nos_per_cell`` ({"cells.0": spikes per image, ...}),
        ``val_loss``, ``val_acc``, ``val_nos``, ``val_nos_per_cell``, ``alphas_normal``,
        ``alphas_reduce`` (softmax weights, ``[edges][ops]`` nested lists),
        ``genotype`` (dict; after the ``max_skips`` cap), ``skip_count`` (skips of the
        *uncapped* normal cell, the collapse indicator), ``stopped_early``, ``seconds``.

    The ``val_*`` numbers are measured on the alpha half in a fixed order (an
    unshuffled loader over ``val_loader``'s dataset, same batch size): the
    supernet's BN uses batch statistics in ``eval()`` too, so loss, accuracy and
    NoS depend on how the images are batched, and a shuffled measurement would
    change with the shuffle (and draw from the alpha loader's generator). With a
    fixed order they are reproducible and comparable between epochs.
    """
    config = DartsConfig() if config is None else config
    if not isinstance(config, DartsConfig):
        raise TypeError(f"config must be a DartsConfig; got {type(config).__name__}.")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=<path of the search to continue>.")
    _check_model(model, config)
    device = resolve_device(device)
    if not resume:
        seed_everything(config.seed)
    model.to(device)
    weight_optimizer = torch.optim.SGD(model.weight_parameters(), lr=config.lr,
                                       momentum=config.momentum, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(weight_optimizer, T_max=config.epochs,
                                                           eta_min=config.lr_min)
    architect = Architect(model, lr=config.arch_lr, betas=config.arch_betas,
                          weight_decay=config.arch_weight_decay, order=config.order, xi=config.xi)
    val_generator = _loader_generator(val_loader)
    history: list[dict] = []
    start, stopped = 0, False
    if resume:
        state = load_search_checkpoint(checkpoint, config)
        model.load_state_dict(state["model"])
        weight_optimizer.load_state_dict(state["weight_optimizer"])
        architect.optimizer.load_state_dict(state["arch_optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, start, stopped = list(state["history"]), int(state["epoch"]), state["stopped"]
        _set_rng_state(state["rng"], train_loader)
        if state["val_rng"] is not None and val_generator is not None:
            val_generator.set_state(state["val_rng"])
        log.info("resuming search %s after epoch %d of %d", checkpoint, start, config.epochs)
    bar = None
    if _want_progress(progress) and start < config.epochs and not stopped:
        from tqdm.auto import tqdm
        try:
            total = len(train_loader) * (config.epochs - start)   # type: ignore[arg-type]
        except TypeError:
            total = None
        bar = tqdm(total=total, desc="search", unit="batch", leave=False)
    try:
        for epoch in range(start + 1, config.epochs + 1):
            if stopped:
                break
            t0 = time.perf_counter()
            lr = weight_optimizer.param_groups[0]["lr"]
            beta = config.aux_skip * (1 - (epoch - 1) / config.epochs)   # DARTS-: linear decay
            if config.aux_skip > 0:
                model.set_aux_skip(beta)
            if bar is not None:
                bar.set_description(f"search epoch {epoch}/{config.epochs}")
            row = {"epoch": epoch, "lr": lr, "aux_skip": beta if config.aux_skip > 0 else 0.0}
            row.update(_search_epoch(model, architect, weight_optimizer, config, train_loader,
                                     val_loader, device, epoch, bar))
            scheduler.step()
            val = measure_cells(model, _unshuffled(val_loader), device, config.eval_batches)
            row.update(val_loss=val["loss"], val_acc=val["accuracy"], val_nos=val["nos"],
                       val_nos_per_cell=val["nos_per_cell"])
            normal, reduce = model.arch_weights()
            raw = model.genotype()
            final = raw if config.max_skips is None else model.genotype(config.max_skips)
            row.update(alphas_normal=normal.cpu().tolist(), alphas_reduce=reduce.cpu().tolist(),
                       genotype=final.to_dict(), skip_count=raw.skip_count("normal"))
            stopped = (config.early_stop_skips is not None
                       and row["skip_count"] >= config.early_stop_skips)
            row["stopped_early"] = stopped
            row["seconds"] = time.perf_counter() - t0
            history.append(row)
            log.info("search epoch %d/%d: train acc %.4f, val acc %.4f, NoS train %.0f val %.0f, "
                     "normal-cell skips %d, %.1fs", epoch, config.epochs, row["train_acc"],
                     row["val_acc"], row["train_nos"], row["val_nos"], row["skip_count"],
                     row["seconds"])
            if stopped:
                log.info("early stop (DARTS+): the normal cell has %d skip connections >= %d",
                         row["skip_count"], config.early_stop_skips)
            if checkpoint is not None and (epoch % config.checkpoint_every == 0 or stopped
                                           or epoch == config.epochs):
                save_checkpoint(checkpoint, dict(
                    format=_CHECKPOINT_FORMAT, snnlab_version=snnlab_version(),
                    torch_version=str(torch.__version__), epoch=epoch, stopped=stopped,
                    history=history, config=dataclasses.asdict(config),
                    model=model.state_dict(), weight_optimizer=weight_optimizer.state_dict(),
                    arch_optimizer=architect.optimizer.state_dict(),
                    scheduler=scheduler.state_dict(), rng=_rng_state(train_loader),
                    val_rng=val_generator.get_state() if val_generator is not None else None))
    finally:
        if bar is not None:
            bar.close()
    return history


# ----------------------------------------------------------------------------- one call

def _jsonable(value):
    """Tuples to lists, recursively (asdict keeps tuples; JSON has only lists)."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def run_darts(config: DartsConfig, bundle, device: Union[str, torch.device, None] = None,
              checkpoint: Union[str, os.PathLike, None] = None, resume: bool = False,
              progress: Optional[bool] = None) -> SearchResult:
    """Split the data, build the supernet, search: the registry's ``darts``/``madarts`` search.

    Args:
        config: a :class:`DartsConfig` (an ``attention`` other than ``"none"`` makes it
            MA-DARTS).
        bundle: a :class:`~snnlab.data.DataBundle`; its ``train`` set is split in two halves
            (:func:`make_search_loaders`).
        device, checkpoint, resume, progress: as :func:`darts_search`.
    Returns:
        a :class:`~snnlab.search.SearchResult`: ``genotype`` the last epoch's
        :class:`~snnlab.genotypes.Genotype`, ``history`` the epochs of
        :func:`darts_search`, ``metrics`` the last epoch's val accuracy and NoS.
    """
    device = resolve_device(device)
    seed_everything(config.seed)                  # the supernet's initial weights and alphas
    loaders = make_search_loaders(bundle, config.batch_size, config.seed, config.train_portion,
                                  config.max_images, config.num_workers)
    model = build_search_network(config, bundle)
    t0 = time.perf_counter()
    history = darts_search(model, loaders.train, loaders.val, config, device, checkpoint, resume,
                           progress)
    return differentiable_result(
        "darts" if config.attention == "none" else "madarts",
        Genotype.from_dict(history[-1]["genotype"]), history, time.perf_counter() - t0,
        _jsonable(dataclasses.asdict(config)), run_provenance(bundle, device))


def run_darts_search(profile: Profile, bundle, order: int = 1, attention: str = "none",
                     attention_placement: str = "cell_output", epochs: Optional[int] = None,
                     seed: Optional[int] = None, out: Union[str, os.PathLike, None] = None,
                     device: Union[str, torch.device, None] = None,
                     checkpoint: Union[str, os.PathLike, None] = None, resume: bool = False,
                     progress: Optional[bool] = None, **overrides: Any) -> dict:
    """:func:`run_darts` with the config built from a profile; returns the result as a dict.

    Args:
        profile, bundle: the run's :class:`~snnlab.profiles.Profile` and data bundle
            (its ``train`` set is split 50/50).
        order, attention, attention_placement, epochs, seed: the usual overrides;
            further :class:`DartsConfig` fields go in ``overrides``.
        out: write the :class:`~snnlab.search.SearchResult` there (JSON, atomically).
        device, checkpoint, resume, progress: as :func:`darts_search`.
    Returns:
        ``SearchResult.to_legacy_dict()``: ``{"method", "profile", "dataset", "config",
        "genotype", "history", "seconds", "device", "snnlab_version", "torch_version"}``;
        ``genotype`` is the last epoch's (``Genotype.from_dict(result["genotype"])``).
    """
    fields = dict(order=order, attention=attention, attention_placement=attention_placement)
    if epochs is not None:
        fields["epochs"] = epochs
    if seed is not None:
        fields["seed"] = seed
    config = DartsConfig.from_profile(profile, **{**fields, **overrides})
    result = run_darts(config, bundle, device, checkpoint, resume, progress)
    result = result.replace(provenance={**result.provenance, "profile": profile.name})
    if out is not None:
        result.save(out)
    return result.to_legacy_dict()


def load_search_result(path: Union[str, os.PathLike]) -> dict:
    """Read a DARTS or MA-DARTS result file (this release's or an earlier one) as the dict
    :func:`run_darts_search` returns; ``SearchResult.load(path)`` gives the object.

    Use ``Genotype.from_dict(load_search_result(path)["genotype"])`` to retrain it.
    """
    result = SearchResult.load(path)
    if result.method not in ("darts", "madarts"):
        raise ValueError(f"{str(path)!r} is not a DARTS search result (method "
                         f"{result.method!r}); read it with snnlab.search.SearchResult.load.")
    return result.to_legacy_dict()
