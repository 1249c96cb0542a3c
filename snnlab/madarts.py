"""MA-DARTS (our reconstruction): spiking DARTS with multi-dimensional attention, NoS per cell.

**What the paper is.** Man, Xie, Qiao, Zhou & Shang, "Differentiable architecture
search with multi-dimensional attention for spiking neural networks" (arXiv
2411.00902, 2024). Its abstract says: a differentiable two-level search space,
searched "within micro architecture under a fixed layer"; a multi-dimensional
attention mechanism added to it; the number of spikes (NoS) of each cell
monitored "during the whole experiment", the whole model stabilising at about
110K spikes (validation) and 100K (training) per image.

**What the paper reports** (:data:`MADARTS_REPORTED`): 94.40 % on CIFAR-10 and
76.52 % on CIFAR-100 (abstract); 64 initial channels, ``T = 2`` time steps, and
an ablation in which ECA attention adds +0.51 / +0.82 points and CBAM attention
+0.61 / +1.52 points on CIFAR-10 / CIFAR-100 (a third-party summary of the
paper, not checked against its text).

**What is ours.** There is no public code, and the method section could not be
read, so everything below the abstract is a reconstruction, each unknown a
parameter with a default:

=====================  ======================================  ==========================
unknown                our default                             set it with
=====================  ======================================  ==========================
cell and node form     DARTS cell (2 inputs, 4 nodes, concat   ``DartsConfig.steps``
                       output); a node is ONE LIF fed by the
                       weighted sum of its ops' currents
                       (SpikeDHS style)
candidate ops          ``snnlab.darts.DARTS_SNN_OPS``          ``DartsConfig.ops``
macro ("fixed layer")  DARTS macro, reductions at 1/3 and 2/3  ``profile.darts.layers``
attention type         ``"eca"``                               ``attention=`` (a name of
                                                               ``ATTENTIONS``)
attention placement    ``"cell_output"`` (after the concat;    ``placement=``
                       real-valued output to the next cell)    (or ``"node_input"``)
neuron                 LIF, tau from the profile, threshold    ``DartsConfig.tau``,
                       1, hard reset, ATan surrogate           ``threshold``
time steps             ``T = 2`` (as reported)                 ``profile.darts.T``
architect              first order, DARTS's optimizers         ``order=``, ``DartsConfig``
NoS                    spikes per image, summed over the LIFs  ``key=`` of
                       of a cell and over T (AutoSNN), in      :func:`fit_with_nos`
                       train and in eval mode
=====================  ======================================  ==========================

MA-DARTS's search therefore *is* :func:`snnlab.darts_search.darts_search` with an
attention block in every cell: :func:`madarts_search` only chooses the block and
its placement, and its history holds NoS per cell on the weight half (train
mode, during the epoch's steps) and on the alpha half (eval mode) for every
epoch. :func:`fit_with_nos` records the same two curves while the found cell is
retrained; :func:`nos_curves` turns either history into per-cell series, the
paper's signature figure.

Example::

    profile, bundle = get_profile("tiny"), load_dataset("digits")
    result = madarts_search(profile, bundle, attention="eca")        # history: NoS per cell
    model = build_madarts_network(result["genotype"], profile, bundle, attention="eca")
    history = fit_with_nos(model, train_loader, val_loader, TrainConfig.from_profile(profile))
    curves = nos_curves(history)          # {"train": {"cells.0": [...], ...}, "val": {...}}
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, Iterable, List, Optional, Union

import torch
from torch import nn

from .attention import AttentionFactory, check_placement, get_attention
from .darts import DiscreteNetwork, SearchNetwork, build_darts_network, cell_key
from .darts_search import DartsConfig, build_search_network, nos_per_cell, run_darts_search
from .genotypes import Genotype
from .monitor import SpikeMonitor
from .profiles import Profile
from .train import TrainConfig, fit

__all__ = ["MADARTS_REPORTED", "NOS_KEYS", "madarts_config", "build_madarts_supernet",
           "madarts_search", "build_madarts_network", "nos_per_cell", "fit_with_nos",
           "nos_curves"]

MADARTS_REPORTED: Dict[str, Any] = {
    "cifar10_accuracy": 94.40,          # % (abstract, arXiv 2411.00902)
    "cifar100_accuracy": 76.52,         # % (abstract)
    "nos_val_per_image": 110_000,       # "approximately 110K in validation" (abstract)
    "nos_train_per_image": 100_000,     # "100k in training" (abstract)
    "T": 2,                             # time steps [third-party summary]
    "init_channels": 64,                # [third-party summary]
    "eca_gain": {"cifar10": 0.51, "cifar100": 0.82},    # points [third-party summary]
    "cbam_gain": {"cifar10": 0.61, "cifar100": 1.52},   # points [third-party summary]
    "source": "Man et al., arXiv 2411.00902 (abstract); the rest from a third-party "
              "summary (linnk.ai), not checked against the paper's text",
}
"""The numbers MA-DARTS reports; everything else in this module is our reconstruction."""

NOS_KEYS = ("train_nos_per_cell", "val_nos_per_cell", "train_nos", "val_nos")
"""The NoS keys of a history row, shared by the search and :func:`fit_with_nos`."""

AttentionArg = Union[str, AttentionFactory]


def _attention_name(attention: AttentionArg) -> str:
    """Check ``attention`` (a registered name) and return it; factories are refused here."""
    if not isinstance(attention, str):
        raise TypeError(f"attention must be a name of snnlab.attention.ATTENTIONS here (it is "
                        f"stored in the search config); got {type(attention).__name__}. "
                        "Register a custom block with @snnlab.attention.register_attention(name).")
    get_attention(attention)                                         # ValueError listing names
    return attention


def madarts_config(profile: Profile, attention: str = "eca", placement: str = "cell_output",
                   **overrides: Any) -> DartsConfig:
    """The search settings of ``profile`` with an attention block in every cell.

    Args:
        profile: its ``darts_*`` fields size the search (:meth:`DartsConfig.from_profile`).
        attention: a name of :data:`snnlab.attention.ATTENTIONS` (``"none"`` gives
            plain spiking DARTS, the ablation's baseline).
        placement: ``"cell_output"`` or ``"node_input"`` (:data:`~snnlab.attention.PLACEMENTS`).
        **overrides: any other :class:`~snnlab.darts_search.DartsConfig` field.
    Returns:
        a frozen :class:`~snnlab.darts_search.DartsConfig`.
    """
    for key in ("attention", "attention_placement"):
        if key in overrides:
            raise TypeError(f"pass {key} as attention=/placement=, not as an override.")
    return DartsConfig.from_profile(profile, attention=_attention_name(attention),
                                    attention_placement=check_placement(placement), **overrides)


def build_madarts_supernet(profile: Profile, bundle, attention: str = "eca",
                           placement: str = "cell_output", **overrides: Any) -> SearchNetwork:
    """The MA-DARTS supernet: :class:`~snnlab.darts.SearchNetwork` with attention blocks.

    ``"cell_output"`` puts one block of ``4 C`` channels on every cell's
    concatenated node spikes; ``"node_input"`` one block of ``C`` channels on the
    summed current of each of the 4 nodes, before its LIF. The blocks' weights
    are ordinary weights (in ``weight_parameters()``), trained with the convs;
    the alphas do not see them.

    Args: as :func:`madarts_config`; ``bundle`` a :class:`snnlab.data.DataBundle`.
    """
    return build_search_network(madarts_config(profile, attention, placement, **overrides),
                                bundle)


def madarts_search(profile: Profile, bundle, attention: str = "eca",
                   placement: str = "cell_output", order: int = 1, epochs: Optional[int] = None,
                   seed: Optional[int] = None, out: Union[str, os.PathLike, None] = None,
                   device: Union[str, torch.device, None] = None,
                   checkpoint: Union[str, os.PathLike, None] = None, resume: bool = False,
                   progress: Optional[bool] = None, **overrides: Any) -> dict:
    """Run the MA-DARTS search: spiking DARTS with attention, NoS per cell every epoch.

    This is :func:`snnlab.darts_search.run_darts_search` with an attention block
    chosen (default ECA on every cell's output): it seeds everything, splits
    ``bundle.train`` into the weight half and the alpha half, builds the supernet
    (:func:`build_madarts_supernet`) and runs ``darts_search`` on it.

    Args:
        profile, bundle, attention, placement, ``**overrides``: as :func:`madarts_config`.
        order: 1 (first order, our default: SpikeDHS implements only that) or 2.
        epochs, seed: override the profile's ``darts.epochs`` and ``seed``.
        out: write the result as JSON there (atomically).
        device, checkpoint, resume, progress: as ``darts_search``.
    Returns:
        the result dict of ``run_darts_search`` (``"method": "madarts"`` unless
        ``attention="none"``): ``result["genotype"]`` (a dict; ``Genotype.from_dict``)
        and ``result["history"]``, whose rows hold :data:`NOS_KEYS` (spikes per image
        per cell on the weight half in train mode, during the epoch's weight steps,
        and on the alpha half in eval mode), the softmax weights and the genotype.
    """
    for key in ("attention", "attention_placement"):
        if key in overrides:
            raise TypeError(f"pass {key} as attention=/placement=, not as an override.")
    return run_darts_search(profile, bundle, order=order, attention=_attention_name(attention),
                            attention_placement=check_placement(placement), epochs=epochs,
                            seed=seed, out=out, device=device, checkpoint=checkpoint,
                            resume=resume, progress=progress, **overrides)


def build_madarts_network(genotype: Union[Genotype, dict], profile: Profile, bundle,
                          attention: AttentionArg = "eca", placement: str = "cell_output",
                          neuron: Optional[dict] = None) -> DiscreteNetwork:
    """The network to retrain from a found genotype, with the same attention blocks.

    Sized by the profile's ``darts.eval_channels``/``darts.eval_layers``/``darts.T``
    (MA-DARTS: 64 initial channels, ``T = 2``; change them with
    ``dataclasses.replace(profile, darts=dataclasses.replace(profile.darts, ...))``).
    Use the attention and placement of the search, so the retrained cell computes
    what the supernet's kept edges did.

    Args:
        genotype: a :class:`~snnlab.genotypes.Genotype`, or its dict form
            (``result["genotype"]`` of :func:`madarts_search`).
        attention: a name or a factory ``(channels) -> nn.Module``; ``"none"`` for
            chapter 4's cell without attention.
        placement: ``"cell_output"`` or ``"node_input"``.
        neuron: LIF overrides.
    """
    if isinstance(genotype, dict):
        genotype = Genotype.from_dict(genotype)
    if isinstance(attention, str):
        get_attention(attention)                                     # clear error first
    return build_darts_network(genotype, profile, bundle, attention=attention,
                               attention_placement=check_placement(placement), neuron=neuron)


# ----------------------------------------------------------------------------- retraining


class _NoSRecorder:
    """Per-pass NoS per cell from one :class:`~snnlab.monitor.SpikeMonitor` on the model."""

    def __init__(self, model: nn.Module, key: Callable[[str], Optional[str]]):
        self.monitor = SpikeMonitor(model)
        self.key = key
        self.rows: Dict[str, List[Optional[dict]]] = {"train": [], "val": []}

    def start(self, phase: str) -> None:
        self.monitor.reset()

    def finish(self, phase: str) -> None:
        if self.monitor.images == 0:
            self.rows[phase].append(None)
            return
        per_cell = self.monitor.group_by(self.key)
        self.rows[phase].append({"per_cell": per_cell, "total": sum(per_cell.values())})


class _PassLoader:
    """Iterates ``loader`` unchanged and tells the recorder when a full pass starts and ends.

    :func:`snnlab.train.fit` reads ``len()``, ``generator`` and ``sampler`` from its
    loaders (for the progress bar and the checkpointed RNG state); those are
    passed through.
    """

    def __init__(self, loader: Iterable, recorder: _NoSRecorder, phase: str):
        self._loader, self._recorder, self._phase = loader, recorder, phase

    def __iter__(self):
        self._recorder.start(self._phase)
        yield from self._loader
        self._recorder.finish(self._phase)                # only after a complete pass

    def __len__(self) -> int:
        return len(self._loader)                          # type: ignore[arg-type]

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._loader, name)


def fit_with_nos(model: nn.Module, train_loader: Iterable, val_loader: Optional[Iterable] = None,
                 config: Optional[TrainConfig] = None,
                 device: Union[str, torch.device, None] = None,
                 checkpoint: Union[str, os.PathLike, None] = None, resume: bool = False,
                 progress: Optional[bool] = None,
                 key: Callable[[str], Optional[str]] = cell_key) -> List[dict]:
    """:func:`snnlab.train.fit`, plus spikes per image per cell in every epoch's row.

    How: a :class:`~snnlab.monitor.SpikeMonitor` watches the model for the whole
    run, and the two loaders are wrapped so that each full pass over one of them
    resets it before and reads it after. ``fit`` itself is called once, unchanged,
    so training is exactly ``fit``'s (same batches, RNG and result; tested). The
    monitor also counts SOPs on every synaptic layer, which costs time: on the
    tiny profile an epoch took about 20-35 % longer than plain ``fit`` (2 CPU cores).

    * ``train_nos_per_cell``: spikes counted *during* the epoch's training steps
      (train mode: BN batch statistics, drop-path on; the weights change as the
      epoch goes). This is what a training log measures, the analogue of MA-DARTS's
      "100K in training".
    * ``val_nos_per_cell``: spikes on ``val_loader`` in eval mode after the epoch
      (fit's own validation pass), the analogue of "110K in validation".

    Args:
        model, train_loader, val_loader, config, device, checkpoint, resume, progress:
            as :func:`snnlab.train.fit`.
        key: LIF module name -> group (None leaves it out); default
            :func:`snnlab.darts.cell_key` (``"cells.<i>"``, everything else ``"other"``).
    Returns:
        ``fit``'s history, each row with :data:`NOS_KEYS` added: ``*_nos_per_cell``
        ``{group: spikes per image}`` in model order, ``*_nos`` their sum (the model's
        NoS). Values are None where nothing was measured (no ``val_loader``; epochs
        that ran before a ``resume``, which ``fit`` restores without spikes).
    """
    if not callable(key):
        raise TypeError(f"key must be a function LIF name -> group; got {key!r}.")
    recorder = _NoSRecorder(model, key)
    train = _PassLoader(train_loader, recorder, "train")
    val = None if val_loader is None else _PassLoader(val_loader, recorder, "val")
    try:
        history = fit(model, train, val, config, device=device, checkpoint=checkpoint,
                      resume=resume, progress=progress)
    finally:
        recorder.monitor.close()
    new = len(recorder.rows["train"])                     # epochs run by this call
    if new > len(history):
        raise RuntimeError(f"recorded {new} training passes but fit returned {len(history)} "
                           "epochs; was train_loader iterated outside fit?")
    rows = []
    for i, row in enumerate(history):
        k = i - (len(history) - new)                      # index among this call's epochs
        row = dict(row)
        for phase in ("train", "val"):
            seen = recorder.rows[phase]
            rec = seen[k] if 0 <= k < len(seen) else None
            row[f"{phase}_nos_per_cell"] = None if rec is None else rec["per_cell"]
            row[f"{phase}_nos"] = None if rec is None else rec["total"]
        rows.append(row)
    return rows


def nos_curves(history: Iterable[dict]) -> Dict[str, Dict[str, List[Optional[float]]]]:
    """Per-cell NoS series of a search or retraining history, ready to plot.

    Args:
        history: rows with :data:`NOS_KEYS` (from :func:`madarts_search`,
            :func:`snnlab.darts_search.darts_search` or :func:`fit_with_nos`).
    Returns:
        ``{"train": {cell: [per epoch]}, "val": {cell: [per epoch]}}``, with an extra
        ``"total"`` series per phase; None where an epoch has no measurement.

    Example:
        >>> rows = [{"train_nos_per_cell": {"cells.0": 3.0}, "val_nos_per_cell": None}]
        >>> nos_curves(rows)["train"]
        {'cells.0': [3.0], 'total': [3.0]}
    """
    history = list(history)
    curves: Dict[str, Dict[str, List[Optional[float]]]] = {}
    for phase in ("train", "val"):
        column = f"{phase}_nos_per_cell"
        if any(column not in row for row in history):
            raise KeyError(f"a history row has no {column!r}; pass the history of "
                           "madarts_search, darts_search or fit_with_nos.")
        cells: List[str] = []
        for row in history:
            for cell in row[column] or {}:
                if cell not in cells:
                    cells.append(cell)
        series = {cell: [None if row[column] is None else row[column].get(cell)
                         for row in history] for cell in cells}
        series["total"] = [None if row[column] is None else sum(row[column].values())
                           for row in history]
        curves[phase] = series
    return curves
