"""The SpikeDHS search loop: cell + path (+ DGS surrogate, + time constants), logged per epoch.

First-order alternating optimisation as the official ``search.py`` (Che et al.,
NeurIPS 2022): the training set is split 50/50; for every batch of the weight
half, one SGD step on the weights (gradient norm clipped to 5), then one Adam
step on the architecture (``alpha``, ``beta``, and the time constants when the
temporal search is on, :mod:`snnlab.temporal`) on a batch of the other half.
The official loop has no second-order architect and no warm-up for
classification; ``arch_warmup`` adds one if wanted. With ``dgs=True`` every
``dgs_every`` epochs a DGS round (:mod:`snnlab.dgs`) probes ``dgs_batches``
batch pairs and moves each stage's Dspike ``b`` (the official code runs DGS
while retraining, on the stem only; here it runs during the search, on every
stage, and the found ``b`` go into the genotype).

Per epoch the history records: losses and accuracies of both halves, the
softmax of ``alpha`` and ``beta``, the Viterbi path and the greedy one, the
genotype, ``b`` per stage (and the DGS round), the time constants, and the
spikes per image (NoS) of every cell of the trellis and of the stem, measured
on the architecture half. Checkpoints are atomic and resuming gives the same
result as an uninterrupted search (bit for bit on CPU; tested).

Fixed from the official ``search.py`` (brief §5.3): the head's Linear is
trained; the reported training accuracy uses the training logits; the validation
iterator persists through an epoch; classes come from the data.
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
from .dgs import DEFAULT_B_RANGE, DEFAULT_DELTAS, DGSState
from .monitor import SpikeMonitor
from .ops import check_op_names
from .profiles import Profile
from .search.config import check, check_fields, config_from_profile, settings_of
from .search.provenance import run_provenance
from .search.loop import (BilevelConfig, BilevelSearch, alternating_epoch, finite_loss,
                          jsonable, prepare_search, run_bilevel)
from .search.result import SearchResult, differentiable_result, given, run_as_dict
from .spikedhs import (DOWNSAMPLE_MODES, SPIKEDHS_NEURON, SPIKEDHS_OPS, SpikeDHSGenotype,
                       SpikeDHSNetwork, SpikeDHSSupernet, spikedhs_cell_key)
from .surrogates import Dspike
from .temporal import (TAU_RANGE, check_tau_range, clamp_time_constants, read_time_constants,
                       tie_time_constants)
from .trellis import greedy_path, path_log_probability
from .train import read_checkpoint

__all__ = ["SpikeDHSConfig", "build_spikedhs_supernet", "measure_supernet", "spikedhs_search",
           "load_spikedhs_checkpoint", "run_spikedhs", "run_spikedhs_search", "build_spikedhs_network",
           "load_spikedhs_result"]

log = logging.getLogger(__name__)

_CHECKPOINT_FORMAT = "snnlab-spikedhs-search-1"


@dataclass(frozen=True)
class SpikeDHSConfig(BilevelConfig):
    """Settings of one SpikeDHS search (defaults: the official CIFAR-10 recipe, ``search.sh``).

    Space: ``layers`` x ``levels`` trellis, ``filters`` F, ``T`` steps, candidate ``ops``,
    LIF ``tau``/``threshold`` and Dspike ``b`` (official 1.25 / 0.5 / 3), ``downsample``.
    Data, weights, architecture optimizer, seed: the fields of
    :class:`~snnlab.search.loop.BilevelConfig`, with the official defaults (batch 100,
    SGD 0.4 to 1e-3, Adam 1e-3 with betas (0.9, 0.999)).
    DGS: ``dgs`` on/off, candidate ``dgs_deltas``, clamp ``dgs_b_range``, a round every
    ``dgs_every`` epochs on ``dgs_batches`` batch pairs, probe step ``dgs_lr`` (None: the
    weight lr).
    Temporal: ``temporal`` on/off, ``tau_channels`` (one tau per channel), ``tau_range``,
    ``tau_lr`` (None: ``arch_lr``; no weight decay on taus).
    Logging: ``nos_batches`` of the architecture half measured per epoch (None: all).
    """

    layers: int = 8
    levels: int = 4
    filters: int = 8
    T: int = 6
    ops: Tuple[str, ...] = SPIKEDHS_OPS
    tau: float = SPIKEDHS_NEURON["tau"]
    threshold: float = SPIKEDHS_NEURON["threshold"]
    b: float = 3.0
    downsample: str = "max"
    batch_size: int = 100
    lr: float = 0.4                       # search.sh (search.py's default is 0.1)
    lr_min: float = 1e-3
    arch_lr: float = 1e-3
    arch_betas: Tuple[float, float] = (0.9, 0.999)
    dgs: bool = False
    dgs_deltas: Tuple[float, ...] = DEFAULT_DELTAS
    dgs_b_range: Tuple[float, float] = DEFAULT_B_RANGE
    dgs_every: int = 5                    # train.py: epochs e > 0 with e % 5 == 0
    dgs_batches: int = 200                # train.py: about 200 probe batches
    dgs_lr: Optional[float] = None
    temporal: bool = False
    tau_channels: bool = False
    tau_range: Tuple[float, float] = TAU_RANGE
    tau_lr: Optional[float] = None
    nos_batches: Optional[int] = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fields(self, positive=("layers", "levels", "filters", "T", "dgs_every",
                                     "dgs_batches"),
                     optional_at_least={"nos_batches": 1},
                     choices={"downsample": DOWNSAMPLE_MODES})
        object.__setattr__(self, "ops", check_op_names(self.ops))
        for name in ("dgs_deltas", "dgs_b_range", "tau_range"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        check(self, self.tau >= 1 and (not self.temporal or self.tau > 1), "tau",
              ">= 1 (> 1 when the temporal search learns it)")
        check(self, self.threshold > 0, "threshold", "> 0")
        lo, hi = self.dgs_b_range
        check(self, 0 < lo <= self.b <= hi, "b", f"in dgs_b_range {self.dgs_b_range}")
        check(self, 0.0 in self.dgs_deltas and all(lo + d > 0 for d in self.dgs_deltas),
              "dgs_deltas", "offsets containing 0 with b + delta > 0 over the whole b range")
        check(self, self.dgs_lr is None or self.dgs_lr > 0, "dgs_lr",
              "None (the weight lr) or > 0")
        check(self, self.tau_lr is None or self.tau_lr > 0, "tau_lr", "None (arch_lr) or > 0")
        check_tau_range(self.tau_range)
        if self.temporal:
            t_lo, t_hi = self.tau_range
            check(self, t_lo <= self.tau <= t_hi, "tau", f"in tau_range {self.tau_range}")

    @classmethod
    def from_profile(cls, profile: Profile, **overrides: Any) -> "SpikeDHSConfig":
        """The search settings of a profile's ``spikedhs_*`` fields (plus ``seed`` and
        ``num_workers``), then ``overrides``.

        Example:
            >>> from snnlab.profiles import get_profile
            >>> SpikeDHSConfig.from_profile(get_profile("tiny"), dgs=True).dgs
            True
        """
        h = settings_of(profile, "spikedhs")
        base = dict(epochs=h.epochs, layers=h.layers, levels=h.levels, filters=h.filters,
                    T=h.T, batch_size=h.batch_size, lr=h.lr, lr_min=h.lr_min,
                    arch_lr=h.arch_lr, max_images=h.max_images, dgs_every=h.dgs_every,
                    dgs_batches=h.dgs_batches, tau_lr=h.tau_lr, seed=profile.seed,
                    num_workers=profile.num_workers)
        return config_from_profile(cls, profile, base, overrides)

    def neuron(self) -> dict:
        """LIF keyword arguments of every neuron of the supernet."""
        return {"tau": self.tau, "threshold": self.threshold, "reset": "hard",
                "surrogate": Dspike(self.b), "learn_tau": self.temporal}


def build_spikedhs_supernet(config: SpikeDHSConfig, bundle) -> SpikeDHSSupernet:
    """The supernet a config describes for a data bundle; with ``config.temporal`` its time
    constants are tied per stage (or per stage and level with ``tau_channels``)."""
    model = SpikeDHSSupernet(bundle.in_channels, bundle.num_classes, T=config.T,
                             layers=config.layers, levels=config.levels, filters=config.filters,
                             ops=config.ops, neuron=config.neuron(),
                             tau_channels=config.tau_channels and config.temporal,
                             downsample=config.downsample)
    if config.temporal:
        model.time_constants = tie_time_constants(model.time_constant_groups(), config.tau)
    return model


# ----------------------------------------------------------------------------- measuring

@torch.no_grad()
def measure_supernet(model: nn.Module, loader: Iterable, device: torch.device,
                     max_batches: Optional[int] = None) -> dict:
    """Spikes per image per cell (``"layer3.level1"``, ``"stem"``, ...) in eval mode."""
    was_training = model.training
    model.eval()
    images = 0
    try:
        with SpikeMonitor(model) as monitor:
            for b, (x, _) in enumerate(loader):
                if max_batches is not None and b >= max_batches:
                    break
                model(x.to(device))
                images += x.shape[0]
        if images == 0:
            raise ValueError("loader yielded no batches; measure_supernet needs at least one.")
        per_cell = monitor.group_by(spikedhs_cell_key, images=images)
    finally:
        model.train(was_training)
    if distributed.is_distributed():           # torchrun: spikes of every process's shard
        keys = list(per_cell)                  # the same order on every rank
        *sums, total = distributed.sum_over_processes(
            [per_cell[k] * images for k in keys] + [images])
        per_cell = {k: v / total for k, v in zip(keys, sums)}
    return {"nos": sum(per_cell.values()), "nos_per_cell": per_cell}


# ----------------------------------------------------------------------------- checkpoints

def load_spikedhs_checkpoint(path: Union[str, os.PathLike],
                             config: Optional[SpikeDHSConfig] = None,
                             fingerprint: Optional[dict] = None) -> dict:
    """Read a checkpoint of :func:`spikedhs_search` onto the CPU; with ``config``, every field
    except ``checkpoint_every`` must match (ValueError naming the differences); with
    ``fingerprint``, the supernet and loader facts must match too."""
    return read_checkpoint(path, _CHECKPOINT_FORMAT, "a SpikeDHS search checkpoint",
                           None if config is None else jsonable(dataclasses.asdict(config)), "SpikeDHSConfig",
                           kind="search ", fresh="search", fingerprint=fingerprint)


# ----------------------------------------------------------------------------- the loop

def _arch_optimizer(model: SpikeDHSSupernet, config: SpikeDHSConfig) -> torch.optim.Adam:
    groups = [{"params": [model.alphas, model.betas]}]
    taus = list(model.time_constants.values())
    if taus:   # no weight decay: it would pull log(tau - 1) towards 0, i.e. tau towards 2
        groups.append({"params": taus, "weight_decay": 0.0,
                       "lr": config.tau_lr if config.tau_lr is not None else config.arch_lr})
    return torch.optim.Adam(groups, lr=config.arch_lr, betas=config.arch_betas,
                            weight_decay=config.arch_weight_decay)


def _epoch(model, config, weight_opt, arch_opt, train_loader, val_loader, device, epoch, bar):
    """One epoch: per train batch, an SGD step on the weights, then an Adam step on the
    architecture on a batch of the other half (official search.py order)."""
    arch = model.arch_parameters()

    def arch_step(batch, val_batch, b):
        xv, yv = val_batch
        logits = model(xv)
        loss = F.cross_entropy(logits, yv)
        value = finite_loss(loss, "architecture", epoch, b)
        arch_opt.zero_grad(set_to_none=True)
        torch.autograd.backward(loss, inputs=arch)
        distributed.average_gradients(arch)     # torchrun: alpha, beta, tau of the global batch
        arch_opt.step()
        if config.temporal:
            clamp_time_constants(model.time_constants, config.tau_range)
        return logits, yv, value

    return alternating_epoch(model, weight_opt, train_loader, val_loader, device, epoch, bar,
                             grad_clip=config.grad_clip, arch_warmup=config.arch_warmup,
                             arch_step=arch_step, arch_first=False, record_arch=True)


def _dgs_round(model, dgs: DGSState, train_loader, val_loader, device, batches: int,
               lr: float, epoch: int) -> dict:
    """Probe ``batches`` (train, val) batch pairs and move every stage's ``b``."""
    t0 = time.perf_counter()
    for i, ((x, y), (xv, yv)) in enumerate(zip(train_loader, val_loader)):
        if i >= batches:
            break
        dgs.probe(model, (x.to(device), y.to(device)), (xv.to(device), yv.to(device)), lr)
    if dgs._sums is not None:       # torchrun: every rank ranks the candidates alike
        distributed.average_tensors([dgs._sums])
    row = dgs.finish(model, epoch)
    return {**row, "seconds": time.perf_counter() - t0}


class _SpikeDHSSearch(BilevelSearch):
    """SpikeDHS in :func:`snnlab.search.loop.run_bilevel`: Adam on alpha, beta (and taus)
    after each weight step, DGS rounds, and the per-epoch path, genotype, b, tau and NoS."""

    checkpoint_format = _CHECKPOINT_FORMAT
    label = "SpikeDHS"

    def __init__(self, model: SpikeDHSSupernet, config: SpikeDHSConfig):
        super().__init__(model, config)
        stages = len(model.stage_modules())
        self.dgs = DGSState([config.b] * stages, config.dgs_deltas, config.dgs_b_range)
        self.dgs.apply(model)

    def make_arch_optimizer(self) -> torch.optim.Optimizer:
        return _arch_optimizer(self.model, self.config)

    def run_epoch(self, weight_optimizer, train_loader, val_loader, device, epoch, bar) -> dict:
        return _epoch(self.model, self.config, weight_optimizer, self.arch_optimizer,
                      train_loader, val_loader, device, epoch, bar)

    def end_epoch(self, epoch, lr, train_loader, val_loader, device) -> dict:
        model, config, dgs = self.model, self.config, self.dgs
        row: dict = {"dgs": None}
        if config.dgs and epoch % config.dgs_every == 0:
            probe_lr = config.dgs_lr if config.dgs_lr is not None else lr
            row["dgs"] = _dgs_round(model, dgs, train_loader, val_loader, device,
                                    config.dgs_batches, probe_lr, epoch)
        row.update(measure_supernet(model, val_loader, device, config.nos_batches))
        M = model.transitions().detach()
        genotype = model.genotype(b=dgs.b)
        log_prob = path_log_probability(M, genotype.path)
        row.update(alphas=F.softmax(model.alphas.detach(), -1).cpu().tolist(),
                   betas=F.softmax(model.betas.detach(), -1).cpu().tolist(),
                   path=list(genotype.path), greedy_path=list(greedy_path(M)),
                   path_log_prob=log_prob,
                   # how much more probable than the untrained decode (all level 0)
                   path_margin=log_prob - path_log_probability(M, (0,) * len(genotype.path)),
                   genotype=genotype.to_dict(), b=list(dgs.b),
                   tau=read_time_constants(model.time_constants) if config.temporal else None)
        return row

    def extra_state(self) -> dict:
        return {"dgs": self.dgs.to_dict()}

    def load_extra_state(self, state: dict) -> None:
        self.dgs = DGSState.from_dict(state["dgs"])
        self.dgs.apply(self.model)

    def load(self, path) -> dict:
        return load_spikedhs_checkpoint(path, self.config, self.fingerprint)

    def describe(self, row: dict) -> str:
        return (f"SpikeDHS epoch {row['epoch']}/{self.config.epochs}: train acc "
                f"{row['train_acc']:.4f}, val acc {row['val_acc']}, path {row['path']}, "
                f"NoS {row['nos']:.0f}, {row['seconds']:.1f}s")


def spikedhs_search(model: SpikeDHSSupernet, train_loader: Iterable, val_loader: Iterable,
                    config: Optional[SpikeDHSConfig] = None,
                    device: Union[str, torch.device, None] = None,
                    checkpoint: Union[str, os.PathLike, None] = None, resume: bool = False,
                    progress: Optional[bool] = None) -> Tuple[list, DGSState]:
    """Search cell, path (and ``b``, ``tau``) of a SpikeDHS supernet.

    The epochs run in :func:`snnlab.search.loop.run_bilevel` (checkpoints, resume,
    RNG, progress bar).

    Args:
        model: from :func:`build_spikedhs_supernet` (the same ``config``); moved to ``device``.
        train_loader, val_loader: weight half and architecture half
            (:func:`snnlab.search.loop.make_search_loaders`); generators are checkpointed.
        config: a :class:`SpikeDHSConfig` (None: the official recipe).
        device: None picks CUDA when available.
        checkpoint: written atomically every ``checkpoint_every`` epochs and after the last.
        resume: continue from ``checkpoint`` (same config); the result equals an
            uninterrupted search. A finished search returns its history.
        progress: ``tqdm.auto`` bar; None follows :mod:`snnlab.train`'s rule.
    Returns:
        ``(history, dgs_state)``: one dict per epoch (module docstring; keys ``epoch``,
        ``lr``, ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, ``images``,
        ``alphas``, ``betas``, ``path``, ``greedy_path``, ``path_log_prob``,
        ``path_margin`` (its log-probability minus that of the untrained decode
        ``(0, ..., 0)``), ``genotype``, ``b``, ``dgs``, ``tau``, ``nos``,
        ``nos_per_cell``, ``seconds``) and the :class:`~snnlab.dgs.DGSState` (``b``
        per stage, ``trajectory``).
    """
    config = SpikeDHSConfig() if config is None else config
    if not isinstance(config, SpikeDHSConfig):
        raise TypeError(f"config must be a SpikeDHSConfig; got {type(config).__name__}.")
    if not isinstance(model, SpikeDHSSupernet):
        raise TypeError(f"model must be a SpikeDHSSupernet (build_spikedhs_supernet(config, "
                        f"bundle)); got {type(model).__name__}.")
    if config.temporal and not len(model.time_constants):
        raise ValueError("config.temporal is on but the supernet has no tied time constants; "
                         "build it with build_spikedhs_supernet(config, bundle).")
    search = _SpikeDHSSearch(model, config)
    history = run_bilevel(search, train_loader, val_loader, device, checkpoint, resume, progress)
    return history, search.dgs


# ----------------------------------------------------------------------------- one call

def run_spikedhs(config: SpikeDHSConfig, bundle, device: Union[str, torch.device, None] = None,
                 checkpoint: Union[str, os.PathLike, None] = None, resume: bool = False,
                 progress: Optional[bool] = None) -> SearchResult:
    """Split the data, build the supernet, search: the registry's ``spikedhs`` search.

    Args:
        config: a :class:`SpikeDHSConfig` (``dgs``/``temporal`` switch the variants on).
        bundle: a :class:`~snnlab.data.DataBundle` (its ``train`` set is split 50/50).
        device, checkpoint, resume, progress: as :func:`spikedhs_search`.
    Returns:
        a :class:`~snnlab.search.SearchResult`: ``genotype`` the last epoch's
        :class:`~snnlab.spikedhs.SpikeDHSGenotype` (cell, path, ``b`` per stage when
        DGS searched it, else None, ``tau`` per stage when searched), ``history`` the
        epochs, ``extras["dgs_trajectory"]`` the DGS rounds.
    """
    device, loaders, model = prepare_search(config, bundle, build_spikedhs_supernet, device)
    t0 = time.perf_counter()
    history, dgs_state = spikedhs_search(model, loaders.train, loaders.val, config, device,
                                         checkpoint, resume, progress)
    genotype = history[-1]["genotype"]
    if not config.dgs:
        genotype = {**genotype, "b": None}        # b was never searched: retrain with the default
    return differentiable_result(
        "spikedhs", SpikeDHSGenotype.from_dict(genotype), history, time.perf_counter() - t0,
        jsonable(dataclasses.asdict(config)), run_provenance(bundle, device),
        extras={"dgs_trajectory": dgs_state.trajectory})


def run_spikedhs_search(profile: Profile, bundle, dgs: bool = False, temporal: bool = False,
                        epochs: Optional[int] = None, seed: Optional[int] = None,
                        out: Union[str, os.PathLike, None] = None,
                        device: Union[str, torch.device, None] = None,
                        checkpoint: Union[str, os.PathLike, None] = None, resume: bool = False,
                        progress: Optional[bool] = None, **overrides: Any) -> dict:
    """:func:`run_spikedhs` with the config built from a profile; returns the result as a dict.

    Args:
        profile, bundle: the run's profile and data bundle (its ``train`` set is split 50/50).
        dgs, temporal, epochs, seed: the usual switches; other :class:`SpikeDHSConfig`
            fields go in ``overrides`` (e.g. ``tau_channels=True``).
        out: also write the :class:`~snnlab.search.SearchResult` there (JSON, atomically).
        device, checkpoint, resume, progress: as :func:`spikedhs_search`.
    Returns:
        ``SearchResult.to_legacy_dict()``: ``{"method": "spikedhs", "profile", "dataset",
        "config", "genotype", "history", "dgs_trajectory", "seconds", "device",
        "snnlab_version", "torch_version"}``; ``genotype`` = cell, path, ``b`` per stage
        and ``tau`` per stage (None unless searched), ready for :func:`build_spikedhs_network`.
    """
    config = SpikeDHSConfig.from_profile(profile, **{
        **dict(dgs=bool(dgs), temporal=bool(temporal)), **given(epochs=epochs, seed=seed),
        **overrides})
    return run_as_dict(run_spikedhs, config, profile, bundle, out, device=device,
                       checkpoint=checkpoint, resume=resume, progress=progress)


def load_spikedhs_result(path: Union[str, os.PathLike]) -> dict:
    """Read a SpikeDHS result file (this release's or an earlier one) as the dict
    :func:`run_spikedhs_search` returns; ``SearchResult.load(path)`` gives the object."""
    try:
        result = SearchResult.load(path)
    except ValueError as err:
        raise ValueError(f"{str(path)!r} is not a SpikeDHS search result ({err}).") from err
    if result.method != "spikedhs":
        raise ValueError(f"{str(path)!r} is not a SpikeDHS search result (method "
                         f"{result.method!r} != 'spikedhs').")
    return result.to_legacy_dict()


def build_spikedhs_network(result_or_genotype: Union[SearchResult, dict, SpikeDHSGenotype],
                           profile: Profile,
                           bundle, neuron: Optional[dict] = None,
                           auxiliary: bool = False) -> SpikeDHSNetwork:
    """The retrained network of a search result (or genotype), sized by the profile.

    Width ``F`` = the profile's SpikeDHS ``retrain_filters`` and its ``T``; the LIF
    threshold, base tau and resize rule come from the result's config (defaults for a bare
    genotype); ``b`` and ``tau`` per stage from the genotype. ``auxiliary`` adds the
    auxiliary head (train with ``aux_weight > 0``; the paper profile's retraining recipe).
    """
    config: dict = {}
    if isinstance(result_or_genotype, SearchResult):
        config, genotype = result_or_genotype.config, result_or_genotype.genotype
    elif isinstance(result_or_genotype, SpikeDHSGenotype):
        genotype = result_or_genotype
    elif isinstance(result_or_genotype, dict):
        data = result_or_genotype
        if "genotype" in data:
            config = data.get("config") or {}
            data = data["genotype"]
        genotype = SpikeDHSGenotype.from_dict(data)
    else:
        raise TypeError(f"result_or_genotype must be a SearchResult, a result dict, a "
                        f"genotype dict or a SpikeDHSGenotype; got {type(result_or_genotype).__name__}.")
    base = {"tau": config.get("tau", SPIKEDHS_NEURON["tau"]),
            "threshold": config.get("threshold", SPIKEDHS_NEURON["threshold"]),
            "surrogate": Dspike(config.get("b", 3.0))}
    h = settings_of(profile, "spikedhs")
    return SpikeDHSNetwork(genotype, bundle.in_channels, bundle.num_classes,
                           T=h.T, filters=h.retrain_filters,
                           neuron={**base, **(neuron or {})},
                           downsample=config.get("downsample", "max"), auxiliary=auxiliary)
