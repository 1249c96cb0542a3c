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
import os
import time
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from . import distributed
from .architect import ORDERS, Architect
from .darts import DARTS_NEURON, DARTS_SNN_OPS, SearchNetwork, cell_key, lif_view
from .genotypes import Genotype
from .monitor import SpikeMonitor
from .ops import check_op_names
from .profiles import Profile
from .search.config import check, check_fields, config_from_profile, settings_of
from .search.provenance import run_provenance
from .search.loop import (BilevelConfig, BilevelSearch, SearchLoaders, alternating_epoch,
                          jsonable, make_search_loaders, prepare_search, run_bilevel,
                          unshuffled)
from .search.result import SearchResult, differentiable_result, given, run_as_dict
from .train import read_checkpoint, resolve_device, save_checkpoint

__all__ = ["DartsConfig", "SearchLoaders", "make_search_loaders", "build_search_network",
           "measure_cells", "nos_per_cell", "darts_search", "load_search_checkpoint",
           "run_darts", "run_darts_search", "load_search_result"]

log = logging.getLogger(__name__)

_CHECKPOINT_FORMAT = "snnlab-darts-search-1"


@dataclass(frozen=True)
class DartsConfig(BilevelConfig):
    """Settings of one spiking DARTS search (``dataclasses.asdict`` goes into checkpoints).

    Supernet: ``layers`` cells of ``steps`` nodes over ``ops``, ``C`` node channels,
    ``T`` time steps, LIF ``tau``/``threshold``, BN ``affine`` (DARTS: off),
    ``attention``/``attention_placement`` (names of :mod:`snnlab.attention`, MA-DARTS).
    Data, weights, alphas, seed: the fields of
    :class:`~snnlab.search.loop.BilevelConfig`, with DARTS's defaults (SGD 0.025 to
    0.001, momentum 0.9, weight decay 3e-4, clip 5; Adam 3e-4, (0.5, 0.999), 1e-3;
    ``arch_warmup`` 0, PC-DARTS uses 15). ``order`` 1 or 2; ``xi`` the virtual step
    (None: the current weight lr, as DARTS).
    Remedies: ``max_skips`` (P-DARTS cap), ``early_stop_skips`` (DARTS+),
    ``aux_skip`` (DARTS- initial beta; 0 = off).
    Logging: ``eval_batches`` of the alpha half measured per epoch (None: all), in
    a fixed order (the first batches of the half in dataset order; see
    :func:`darts_search`).
    """

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
    order: int = 1
    xi: Optional[float] = None
    max_skips: Optional[int] = None
    early_stop_skips: Optional[int] = None
    aux_skip: float = 0.0
    eval_batches: Optional[int] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fields(self, positive=("layers", "C", "T", "steps"),
                     optional_at_least={"max_skips": 0, "early_stop_skips": 0,
                                        "max_images": 2, "eval_batches": 2})
        object.__setattr__(self, "ops", check_op_names(self.ops))
        check(self, self.order in ORDERS, "order", "1 (first order) or 2 (second order)")
        check(self, self.tau >= 1, "tau", ">= 1")
        check(self, self.xi is None or self.xi >= 0, "xi", "None (the weight lr) or >= 0")
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
    loss, n_correct, per_cell, images = _over_processes(loss_sum.item(), correct.item(),
                                                        per_cell, images)
    return {"loss": loss / images, "accuracy": n_correct / images,
            "images": images, "nos": sum(per_cell.values()), "nos_per_cell": per_cell}


def _over_processes(loss_sum: float, correct: int, per_cell: dict, images: int):
    """Under torchrun, the sums of every process's shard (spikes per image per cell
    weighted by its images); one process: its own numbers, unchanged."""
    if not distributed.is_distributed():
        return loss_sum, correct, per_cell, images
    keys = list(per_cell)      # the same order on every rank
    totals = distributed.sum_over_processes(
        [loss_sum, correct, images] + [per_cell[k] * images for k in keys])
    n = int(totals[2])
    return totals[0], totals[1], {k: v / n for k, v in zip(keys, totals[3:])}, n


def nos_per_cell(model: nn.Module, loader: Iterable, device: Union[str, torch.device, None] = None,
                 max_batches: Optional[int] = None) -> dict:
    """Spikes per image per cell, ``{"cells.0": ..., ...}`` (see :func:`measure_cells`)."""
    return measure_cells(model, loader, device, max_batches)["nos_per_cell"]


# ----------------------------------------------------------------------------- checkpoints

def load_search_checkpoint(path: Union[str, os.PathLike],
                           config: Optional[DartsConfig] = None,
                           fingerprint: Optional[dict] = None) -> dict:
    """Read a checkpoint written by :func:`darts_search` onto the CPU.

    Args:
        path: the checkpoint file.
        config: when given, every field except ``checkpoint_every`` must equal the
            stored config (ValueError naming the differences).
        fingerprint: when given, the supernet and loader facts
            (:func:`snnlab.checkpoints.model_fingerprint`, ``loader_fingerprint``)
            must match the stored ones.
    Returns:
        the state: ``model`` (weights and alphas), ``weight_optimizer``,
        ``arch_optimizer``, ``scheduler``, ``epoch``, ``history``, ``stopped``,
        ``config``, ``rng``, ``val_rng``, ``snnlab_version``, ``torch_version``.
    """
    return read_checkpoint(path, _CHECKPOINT_FORMAT, "a spiking DARTS search checkpoint",
                           None if config is None else dataclasses.asdict(config), "DartsConfig",
                           kind="search ", fresh="search", fingerprint=fingerprint)


# ----------------------------------------------------------------------------- the loop

def _search_epoch(model, architect, weight_optimizer, config, train_loader, val_loader,
                  device, epoch, bar) -> dict:
    """One epoch of Algorithm 1: for each train batch, an alpha step then a weight step;
    spikes per cell counted during the weight steps' forwards (train NoS)."""
    view = lif_view(model)             # the LIFs only: cheap spike counting
    nos: dict = {}
    images = 0

    def forward(x):
        nonlocal images
        with SpikeMonitor(view) as monitor:
            logits = model(x)                                          # [B, classes]
        for key, value in _group_nos(monitor, x.shape[0]).items():
            nos[key] = nos.get(key, 0.0) + value * x.shape[0]
        images += x.shape[0]
        return logits

    def arch_step(batch, val_batch, b):
        architect.step(batch, val_batch, weight_optimizer)

    row = alternating_epoch(model, weight_optimizer, train_loader, val_loader, device, epoch, bar,
                            grad_clip=config.grad_clip, arch_warmup=config.arch_warmup,
                            arch_step=arch_step, arch_first=True, forward=forward)
    if distributed.is_distributed():             # torchrun: spikes of every shard
        keys = list(nos)
        *sums, images = distributed.sum_over_processes([nos[k] for k in keys] + [images])
        nos = dict(zip(keys, sums))
    per_cell = {k: v / images for k, v in nos.items()}
    return {**row, "train_nos": sum(per_cell.values()), "train_nos_per_cell": per_cell}


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


class _DartsSearch(BilevelSearch):
    """DARTS in :func:`snnlab.search.loop.run_bilevel`: the architect's alpha step before
    each weight step, DARTS- decay, per-epoch alphas, genotype, NoS, and the DARTS+ stop."""

    checkpoint_format = _CHECKPOINT_FORMAT
    label = "search"

    def make_arch_optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        self.architect = Architect(self.model, lr=c.arch_lr, betas=c.arch_betas,
                                   weight_decay=c.arch_weight_decay, order=c.order, xi=c.xi)
        return self.architect.optimizer

    def begin_epoch(self, epoch: int) -> dict:
        c = self.config
        beta = c.aux_skip * (1 - (epoch - 1) / c.epochs)               # DARTS-: linear decay
        if c.aux_skip > 0:
            self.model.set_aux_skip(beta)
        return {"aux_skip": beta if c.aux_skip > 0 else 0.0}

    def run_epoch(self, weight_optimizer, train_loader, val_loader, device, epoch, bar) -> dict:
        return _search_epoch(self.model, self.architect, weight_optimizer, self.config,
                             train_loader, val_loader, device, epoch, bar)

    def end_epoch(self, epoch, lr, train_loader, val_loader, device) -> dict:
        model, c = self.model, self.config
        val = measure_cells(model, unshuffled(val_loader), device, c.eval_batches)
        normal, reduce = model.arch_weights()
        raw = model.genotype()
        final = raw if c.max_skips is None else model.genotype(c.max_skips)
        return dict(val_loss=val["loss"], val_acc=val["accuracy"], val_nos=val["nos"],
                    val_nos_per_cell=val["nos_per_cell"], alphas_normal=normal.cpu().tolist(),
                    alphas_reduce=reduce.cpu().tolist(), genotype=final.to_dict(),
                    skip_count=raw.skip_count("normal"))

    def stop(self, row: dict) -> bool:
        limit = self.config.early_stop_skips
        row["stopped_early"] = limit is not None and row["skip_count"] >= limit
        if row["stopped_early"]:
            log.info("early stop (DARTS+): the normal cell has %d skip connections >= %d",
                     row["skip_count"], limit)
        return row["stopped_early"]

    def config_state(self) -> dict:
        return dataclasses.asdict(self.config)      # as earlier releases stored it (tuples)

    def save(self, path, state: dict) -> None:
        save_checkpoint(path, state, fingerprint=self.fingerprint)   # this module's name:
                                                                     # tests wrap it

    def load(self, path) -> dict:
        return load_search_checkpoint(path, self.config, self.fingerprint)

    def describe(self, row: dict) -> str:
        return (f"search epoch {row['epoch']}/{self.config.epochs}: train acc "
                f"{row['train_acc']:.4f}, val acc {row['val_acc']:.4f}, NoS train "
                f"{row['train_nos']:.0f} val {row['val_nos']:.0f}, normal-cell skips "
                f"{row['skip_count']}, {row['seconds']:.1f}s")


def darts_search(model: nn.Module, train_loader: Iterable, val_loader: Iterable,
                 config: Optional[DartsConfig] = None,
                 device: Union[str, torch.device, None] = None,
                 checkpoint: Union[str, os.PathLike, None] = None, resume: bool = False,
                 progress: Optional[bool] = None) -> list[dict]:
    """Search a cell with spiking DARTS; returns one dict per epoch.

    The epochs run in :func:`snnlab.search.loop.run_bilevel` (checkpoints, resume,
    RNG, progress bar), each one Algorithm 1's alternation (alpha step, then weight
    step).

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
        *uncapped* normal cell, the collapse indicator), ``stopped_early``, ``images``
        (fed to weight and alpha steps), ``seconds``.

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
    _check_model(model, config)
    return run_bilevel(_DartsSearch(model, config), train_loader, val_loader, device,
                       checkpoint, resume, progress)


# ----------------------------------------------------------------------------- one call

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
    device, loaders, model = prepare_search(config, bundle, build_search_network, device)
    t0 = time.perf_counter()
    history = darts_search(model, loaders.train, loaders.val, config, device, checkpoint, resume,
                           progress)
    return differentiable_result(
        "darts" if config.attention == "none" else "madarts",
        Genotype.from_dict(history[-1]["genotype"]), history, time.perf_counter() - t0,
        jsonable(dataclasses.asdict(config)), run_provenance(bundle, device))


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
    config = DartsConfig.from_profile(profile, **{
        **dict(order=order, attention=attention, attention_placement=attention_placement),
        **given(epochs=epochs, seed=seed), **overrides})
    return run_as_dict(run_darts, config, profile, bundle, out, device=device,
                       checkpoint=checkpoint, resume=resume, progress=progress)


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
