"""SpikeDHS: a spiking cell searched together with the network's resolution path.

SpikeDHS (Che et al., "Differentiable hierarchical and surrogate gradient search
for spiking neural networks", NeurIPS 2022) searches at two levels at once:

* **Cell level.** A cell has two inputs (the outputs of the two previous layers),
  three intermediate nodes (9 edges) and outputs the concatenation of the three
  nodes. Each edge mixes candidate ops with softmax weights of ONE table ``alpha``
  ``[9, ops]`` shared by every cell of the network (Auto-DeepLab style). Ops output
  currents; a node is one LIF fed with the sum of its mixed edges ("mixed
  operation at the input of membrane potential", the paper's supplement, Fig. 1).
* **Layer level.** A trellis of ``L`` layers by ``J`` resolutions (level ``j`` has
  ``1/2^j`` of the input size and ``3 F 2^j`` channels), entered at level 0 by the
  stem. From each level a layer moves ``same`` or ``down`` with probabilities
  ``softmax(beta[l, j])`` (the coarsest level can only stay), so level ``j`` is
  reachable after layer ``l`` only if ``j <= l + 1`` (a growing triangle).

**How the trellis mixes (our formulation).** ``pi[l]`` is the probability of being
at each level before layer ``l`` (``pi[0]`` = level 0) and ``M[l]`` the ``[J, J]``
transition matrix, ``pi[l + 1] = pi[l] M[l]``. The cell at ``(l, j)`` reads its
input ``s1`` as the mixture of the states it can come from, weighted by the
posterior ``pi[l, i] M[l, i, j] / pi[l + 1, j]``, and its input ``s0`` (the state
two layers back) likewise over the two-step paths; the mixing happens at the
membrane of the input neuron, after a per-source 1x1 conv + BN. The head averages
the per-level logits with ``pi[L]``. These posterior-weighted inputs and the
``pi[L]``-weighted heads are snnlab's own formulation, not SpikeDHS's method: the
official supernet sums ``beta``-scaled cell outputs per level (below). With one-hot ``beta`` and ``alpha`` the
supernet is therefore *exactly* the single-path network (tested), so what is
searched is what is retrained. The official search (``models/snndarts_search/
build_model_2d.py``, ``AutoFeature``) instead sums ``beta``-scaled cell outputs per
level, runs two cells per level (same and down branches), reads ``s0`` from the
same level only, sets the coarsest level's weight to 0.5, and never trains its
head's Linear (only ``feature.weight_parameters()`` are optimised, issue #2);
its cells mix the candidates' *spike outputs* in search but currents in retraining
(``SNN.py`` ``SNN_2d`` returns ``BN(conv(x))`` only when ``param['mixed_at_mem']``,
which ``build_model.py`` sets False in search and ``new_model_2d.py`` True in
retraining; the search MixedOp's ``snn_output='mem'`` is read by no layer),
down-sample with stride-2 ops in search but nearest-neighbour
resizing in retraining, and drop ``s0`` in every cell whose level did not exist
two layers back (``prev_prev = -1``, ``build_model_2d.py`` l. 79-141), not only
in the first layer. Here search and
retraining share one cell and one resize rule (max pooling of spikes by default,
``"nearest"`` as the official retraining), every cell has two inputs (the stem
feeds both in layer 0, as in DARTS), and the whole network, head included, trains.

**Other differences from the official code.**

* Stem: the official search stem is a non-spiking ConvBR (``build_model_2d.py``
  l. 68); here it is conv + BN + LIF, as in retraining.
* BN: the official code calls each BN once per time step inside its T loop, so
  batch statistics are per step; here BN runs on the merged ``[T*B]`` batch
  (statistics pooled over time, the project's convention, :mod:`snnlab.layers`).
* Retraining head: official LIF on the global average pool, then Linear + BN1d,
  plus an auxiliary head (``LEAStereo.py`` l. 28-29, ``new_model_2d.py``
  l. 223-240); here a Linear on the mean spikes, logits averaged over time.
* Reset: :data:`SPIKEDHS_NEURON` back-propagates through the hard reset
  (``detach_reset=False``) as the Huawei ``SNN.py`` does
  (``mem * decay * (1 - spike)`` with ``spike`` from the surrogate, l. 156-158);
  the spikingjelly port and snnlab's :class:`~snnlab.neurons.LIF` default detach
  it. Only gradients change (spikes do not), so searches differ from those of
  snnlab versions that detached it.
* Per-channel time constants found at the search width are moved to a wider
  (or narrower) retraining width by quantile mapping (:func:`map_channel_tau`):
  the sorted searched values are resampled at the new width, since channel ``c``
  of a freshly trained wider network has no relation to channel ``c`` of the
  search network; only the distribution transfers.

**Decoding.** The cell keeps, per node, the two strongest incoming edges (DARTS
rule, :func:`snnlab.genotypes.derive_cell`, ranking by the largest non-``none``
weight; the official ``decoding_formulas.py`` ranks without its column 0, which is
``skip_connect`` there). The path is the most probable one under ``beta``, found by
Viterbi over the trellis (:func:`snnlab.trellis.viterbi_path`); the released code
never decodes it and hard-codes ``[0, 0, 1, 1, 1, 2, 2, 2]`` (README; its Viterbi
decoder expects 3 moves).

**Candidates.** The official ops ``snn_b3`` / ``snn_b5`` are one 3x3 conv whose
own neuron uses Dspike ``b = 3`` or ``5``; once ops output currents that choice
has no effect (the official retrained network makes every op conv 3x3 + BN). The
surrogate sharpness becomes a separate, per-layer axis (:mod:`snnlab.dgs`) and
:data:`SPIKEDHS_OPS` offers ``none`` (for the DARTS rule), ``skip_connect``,
``conv_3x3`` and ``conv_5x5`` (the ops of :mod:`snnlab.darts`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from .darts import AuxiliaryHead, MixedOp, build_darts_op
from .dgs import StagedNetwork
from .encoding import direct
from .genotypes import Genotype, derive_cell, num_edges
from .layers import SpikingConvBlock, TimeDistributed
from .neurons import LIF
from .ops import check_op_names
from .surrogates import Dspike
from .trellis import (MOVES, check_path, input_weights, path_probabilities, transition_matrices,
                      viterbi_path)

__all__ = ["SPIKEDHS_OPS", "SPIKEDHS_NEURON", "STEPS", "DOWNSAMPLE_MODES",
           "SpikeDHSGenotype", "CellInput",
           "SpikeDHSSearchCell", "SpikeDHSCell", "SpikeDHSSupernet", "SpikeDHSNetwork",
           "path_network_from_supernet", "spikedhs_cell_key", "map_channel_tau"]

SPIKEDHS_OPS: Tuple[str, ...] = ("none", "skip_connect", "conv_3x3", "conv_5x5")
"""Default candidates (columns of ``alpha``); see the module docstring."""

SPIKEDHS_NEURON = {"tau": 1.25, "threshold": 0.5, "reset": "hard", "surrogate": Dspike(3.0),
                   "detach_reset": False}
"""SpikeDHS's LIF (``SNN.py``): decay 0.2 (tau 1.25), threshold 0.5, hard reset with the
gradient flowing through the reset (not detached, as ``SNN.py``), Dspike b=3."""

STEPS = 3          # intermediate nodes per cell (official fea_step)
MULTIPLIER = 3     # nodes concatenated into the output (official block_multiplier)
DOWNSAMPLE_MODES = ("max", "nearest")


# ----------------------------------------------------------------------------- genotype

@dataclass(frozen=True)
class SpikeDHSGenotype:
    """What a SpikeDHS search hands to retraining: cell, path, surrogate and time constants.

    Attributes:
        cell: ``((op, source), ...)``, two per node (entries ``2k, 2k+1`` feed node
            ``k + 2``; sources 0, 1 are the inputs s0, s1).
        path: level after each layer, e.g. ``(0, 0, 1, 1, 1, 2, 2, 2)`` (official CIFAR).
        concat: nodes concatenated into the cell output (``(2, 3, 4)``: all three).
        b: Dspike sharpness per stage (stem, then each layer), or None for the neuron's.
        tau: time constant per stage (a float, or a list per channel), or None for the
            neuron's.

    ``repr`` pastes back; :meth:`to_dict` / :meth:`from_dict` go through JSON.
    """

    cell: Tuple[Tuple[str, int], ...]
    path: Tuple[int, ...]
    concat: Tuple[int, ...] = (2, 3, 4)
    b: Optional[Tuple[float, ...]] = None
    tau: Optional[Tuple[Union[float, Tuple[float, ...]], ...]] = None

    def __post_init__(self) -> None:
        # the DARTS Genotype validates edges and concat; a SpikeDHS cell is its "normal" cell
        g = Genotype(normal=self.cell, normal_concat=self.concat, reduce=self.cell,
                     reduce_concat=self.concat)
        object.__setattr__(self, "cell", g.normal)
        object.__setattr__(self, "concat", g.normal_concat)
        object.__setattr__(self, "path", check_path(self.path))
        stages = len(self.path) + 1
        if self.b is not None:
            b = tuple(float(v) for v in self.b)
            if len(b) != stages or not all(math.isfinite(v) and v > 0 for v in b):
                raise ValueError(f"b must hold {stages} values > 0 (stem + {len(self.path)} "
                                 f"layers); got {self.b!r}.")
            object.__setattr__(self, "b", b)
        if self.tau is not None:
            tau = tuple(float(v) if not isinstance(v, (list, tuple)) else tuple(map(float, v))
                        for v in self.tau)
            flat = [x for v in tau for x in (v if isinstance(v, tuple) else (v,))]
            if len(tau) != stages or not all(math.isfinite(x) and x >= 1 for x in flat):
                raise ValueError(f"tau must hold {stages} entries (stem + {len(self.path)} "
                                 f"layers), each >= 1 or a list of such; got {self.tau!r}.")
            object.__setattr__(self, "tau", tau)

    @property
    def cell_genotype(self) -> Genotype:
        """The cell as a DARTS :class:`~snnlab.genotypes.Genotype` (for ``draw_genotype``)."""
        return Genotype(self.cell, self.concat, self.cell, self.concat)

    def to_dict(self) -> dict:
        return {"cell": [[op, s] for op, s in self.cell], "path": list(self.path),
                "concat": list(self.concat), "b": None if self.b is None else list(self.b),
                "tau": None if self.tau is None else
                [list(v) if isinstance(v, tuple) else v for v in self.tau]}

    @classmethod
    def from_dict(cls, data: dict) -> "SpikeDHSGenotype":
        if not isinstance(data, dict):
            raise TypeError(f"SpikeDHSGenotype.from_dict needs a dict; got {type(data).__name__}.")
        keys = {"cell", "path", "concat", "b", "tau"}
        if not {"cell", "path"} <= set(data) or set(data) - keys:
            raise ValueError(f"a SpikeDHS genotype dict has keys {sorted(keys)} ('cell' and "
                             f"'path' required); got {sorted(data)}. A search result keeps it "
                             "under result['genotype'].")
        return cls(**data)

    def __str__(self) -> str:
        names = {0: "s0", 1: "s1"}
        lines = [f"path (level per layer): {list(self.path)}"]
        for k in range(len(self.cell) // 2):
            ins = ", ".join(f"{op}({names.get(s, s)})" for op, s in self.cell[2 * k:2 * k + 2])
            lines.append(f"node {k + 2} = LIF({ins})")
        if self.b is not None:
            lines.append("b per stage: " + ", ".join(f"{v:.2f}" for v in self.b))
        if self.tau is not None:
            lines.append("tau per stage: " + ", ".join(
                f"{v:.3f}" if isinstance(v, float) else f"[{len(v)} ch, mean "
                f"{sum(v) / len(v):.3f}]" for v in self.tau))
        return "\n".join(lines)


# ----------------------------------------------------------------------------- modules

class _Resize(nn.Module):
    """Parameter-free down-sampling by ``factor`` of ``[T, B, C, H, W]`` spikes
    (``"max"``: max pool, binary in -> binary out; ``"nearest"``: every factor-th pixel)."""

    def __init__(self, factor: int, mode: str):
        super().__init__()
        if mode not in DOWNSAMPLE_MODES:
            raise ValueError(f"downsample must be one of {DOWNSAMPLE_MODES}; got {mode!r}.")
        self.factor, self.mode = factor, mode
        self.pool = TimeDistributed(nn.MaxPool2d(factor, factor, ceil_mode=True))

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        if self.mode == "nearest":
            return x_seq[..., ::self.factor, ::self.factor]
        return self.pool(x_seq)

    def extra_repr(self) -> str:
        return f"factor={self.factor}, mode={self.mode!r}"


class CellInput(nn.Module):
    """A cell input node: ``LIF(sum_i w_i BN(conv1x1(resize(x_i))))`` over source levels.

    Args:
        sources: source level -> its channels; sources are at ``level`` or finer.
        level: the cell's level (sources at level ``i`` are down-sampled ``2^(level-i)``).
        C: node channels. neuron: LIF keyword arguments. downsample: ``"max"``/``"nearest"``.
    Forward: ``states`` {level: ``[T, B, C_i, H_i, W_i]``} and ``weights`` {level: scalar}
    (None: plain sum, for a single source) -> spikes ``[T, B, C, H, W]``.
    """

    def __init__(self, sources: Dict[int, int], level: int, C: int, neuron: dict,
                 downsample: str = "max"):
        super().__init__()
        self.branches = nn.ModuleDict()
        for i, channels in sorted(sources.items()):
            if not 0 <= i <= level:
                raise ValueError(f"source level {i} must be in 0..{level} (the cell's level).")
            parts = [_Resize(2 ** (level - i), downsample)] if i < level else []
            parts += [TimeDistributed(nn.Conv2d(channels, C, 1, bias=False)),
                      TimeDistributed(nn.BatchNorm2d(C))]
            self.branches[str(i)] = nn.Sequential(*parts)
        self.lif = LIF(**neuron)

    def forward(self, states: Dict[int, torch.Tensor],
                weights: Optional[Dict[int, torch.Tensor]] = None) -> torch.Tensor:
        current = None
        for key, branch in self.branches.items():
            y = branch(states[int(key)])                               # [T, B, C, H, W]
            if weights is not None:
                y = weights[int(key)] * y
            current = y if current is None else current + y
        return self.lif(current)


def _run_nodes(cell: nn.Module, states: List[torch.Tensor], edge_current) -> torch.Tensor:
    """Nodes 2..: ``LIF(sum of incoming edge currents)``; returns the concat
    ``[T, B, k C, H, W]``."""
    offset = 0
    for i, lif in enumerate(cell.nodes):
        current = None
        for j in range(len(states)):
            y = edge_current(offset + j, states[j])
            if y is not None:
                current = y if current is None else current + y
        states.append(lif(current))
        offset += len(states) - 1
    return torch.cat([states[n] for n in cell.concat], dim=2)


class SpikeDHSSearchCell(nn.Module):
    """A search cell at one trellis node: two mixing inputs, 9 mixed edges, 3 LIF nodes.

    Forward: ``s0``, ``s1`` ({level: state}), their mixing weights ``w0``, ``w1``
    ({level: scalar}) and ``weights`` ``[9, ops]`` (softmax of the shared ``alpha``)
    -> ``[T, B, 3 C, H, W]``. Edge ``offset(i) + j`` goes from state ``j`` (s0, s1,
    node 2, ...) to node ``i + 2``.
    """

    def __init__(self, level: int, C: int, sources0: Dict[int, int], sources1: Dict[int, int],
                 ops: Sequence[str], neuron: dict, downsample: str = "max"):
        super().__init__()
        self.level, self.concat = level, tuple(range(2, STEPS + 2))
        self.input0 = CellInput(sources0, level, C, neuron, downsample)
        self.input1 = CellInput(sources1, level, C, neuron, downsample)
        self.edges = nn.ModuleList(MixedOp(C, 1, ops, neuron) for _ in range(num_edges(STEPS)))
        self.nodes = nn.ModuleList(LIF(**neuron) for _ in range(STEPS))

    def forward(self, s0, w0, s1, w1, weights: torch.Tensor) -> torch.Tensor:
        states = [self.input0(s0, w0), self.input1(s1, w1)]
        return _run_nodes(self, states, lambda e, h: self.edges[e](h, weights[e]))


class SpikeDHSCell(nn.Module):
    """The retrained cell: the same inputs and nodes, two fixed ops per node.

    Args:
        level, C, neuron, downsample: as :class:`SpikeDHSSearchCell`.
        source0, source1: ``(level, channels)`` of the two inputs.
        cell, concat: from a :class:`SpikeDHSGenotype`.
    Forward: ``s0``, ``s1`` {level: state} -> ``[T, B, len(concat) C, H, W]``.
    """

    def __init__(self, level: int, C: int, source0: Tuple[int, int], source1: Tuple[int, int],
                 cell: Sequence[Tuple[str, int]], concat: Sequence[int], neuron: dict,
                 downsample: str = "max"):
        super().__init__()
        self.level, self.concat = level, tuple(concat)
        self.input0 = CellInput(dict([source0]), level, C, neuron, downsample)
        self.input1 = CellInput(dict([source1]), level, C, neuron, downsample)
        self.cell = tuple(cell)
        self.ops = nn.ModuleList(build_darts_op(op, C, 1, neuron) for op, _ in self.cell)
        self.nodes = nn.ModuleList(LIF(**neuron) for _ in range(len(self.cell) // 2))
        # supernet edge index of each kept edge: offset(node) + source
        offsets = [sum(2 + i for i in range(k)) for k in range(len(self.nodes))]
        self._edges_at: Dict[int, List[int]] = {}
        for n, (_, s) in enumerate(self.cell):
            self._edges_at.setdefault(offsets[n // 2] + s, []).append(n)

    def forward(self, s0, s1) -> torch.Tensor:
        states = [self.input0(s0), self.input1(s1)]

        def current(e, h):
            out = None
            for n in self._edges_at.get(e, ()):
                y = self.ops[n](h)
                out = y if out is None else out + y
            return out
        return _run_nodes(self, states, current)


class _Head(nn.Module):
    """Mean over time and space, then a trainable Linear: ``[T, B, C, H, W] -> [B, K]``."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return self.fc(x_seq.mean(dim=(0, 3, 4)))      # linear, so = mean over T of per-step logits


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int; got {value!r}.")
    return value


class _SpikeDHSBase(StagedNetwork):
    """Shared by the supernet and the retrained network: input checks, stem, encoding."""

    def _setup(self, in_channels, num_classes, T, filters, neuron, tau_channels, downsample):
        for name, value in (("in_channels", in_channels), ("num_classes", num_classes),
                            ("T", T), ("filters", filters)):
            _positive_int(name, value)
        if downsample not in DOWNSAMPLE_MODES:
            raise ValueError(f"downsample must be one of {DOWNSAMPLE_MODES}; got {downsample!r}.")
        self.in_channels, self.num_classes = in_channels, num_classes
        self.T, self.filters = T, filters
        self.neuron = {**SPIKEDHS_NEURON, **(neuron or {})}
        self.tau_channels, self.downsample = bool(tau_channels), downsample
        self.stem = SpikingConvBlock(in_channels, MULTIPLIER * filters, 3,
                                     **self._neuron(MULTIPLIER * filters))

    def _neuron(self, channels: int) -> dict:
        return {**self.neuron, "channels": channels} if self.tau_channels else self.neuron

    def channels(self, level: int) -> int:
        """Channels of a state at ``level``: ``3 F 2^level`` (the stem is level 0)."""
        return MULTIPLIER * self.filters * 2 ** level

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``[B, C, H, W]`` -> ``[T, B, C, H, W]`` (direct encoding); sequences pass."""
        if not isinstance(x, torch.Tensor) or x.dim() not in (4, 5):
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{type(self).__name__} expects images [B, C, H, W] or a sequence "
                             f"[T, B, C, H, W]; got {shape}.")
        if x.shape[-3] != self.in_channels:
            raise ValueError(f"{type(self).__name__} was built for {self.in_channels} input "
                             f"channels; got {x.shape[-3]} (shape {tuple(x.shape)}).")
        return direct(x, self.T) if x.dim() == 4 else x


class SpikeDHSSupernet(_SpikeDHSBase):
    """The SpikeDHS supernet: spiking stem, a trellis of search cells, per-level heads.

    Args:
        in_channels, num_classes: the task.
        T: time steps (direct encoding).
        layers, levels: trellis size ``L x J`` (official 8 x 4).
        filters: ``F``; a cell at level ``j`` has nodes of ``F 2^j`` channels (official 8).
        ops: candidate names (default :data:`SPIKEDHS_OPS`).
        neuron: LIF overrides on top of :data:`SPIKEDHS_NEURON`.
        tau_channels: build every LIF with one time constant per channel.
        downsample: how sources are resized to a coarser cell (``"max"``/``"nearest"``).

    Forward: images ``[B, C, H, W]`` -> logits ``[B, classes]``. Stages (for
    :mod:`snnlab.dgs`): 0 = stem, ``l + 1`` = layer ``l`` (all its cells);
    ``history[l + 2]`` holds layer ``l``'s states, one per reachable level.

    Example:
        >>> net = SpikeDHSSupernet(in_channels=1, num_classes=10, T=2, layers=3, levels=3,
        ...                        filters=2)
        >>> [len(cells) for cells in net.layers]            # cells per layer: a triangle
        [2, 3, 3]
        >>> net(torch.rand(4, 1, 8, 8)).shape
        torch.Size([4, 10])
    """

    def __init__(self, in_channels: int, num_classes: int, T: int = 4, layers: int = 8,
                 levels: int = 4, filters: int = 8, ops: Sequence[str] = SPIKEDHS_OPS,
                 neuron: Optional[dict] = None, tau_channels: bool = False,
                 downsample: str = "max"):
        super().__init__()
        self._setup(in_channels, num_classes, T, filters, neuron, tau_channels, downsample)
        self.layers_n = _positive_int("layers", layers)
        self.levels = _positive_int("levels", levels)
        self.ops = check_op_names(ops)
        self.layers = nn.ModuleList()
        for l in range(layers):
            n1, n0 = min(l, levels - 1) + 1, min(max(l - 1, 0), levels - 1) + 1
            cells = nn.ModuleList()
            for j in range(min(l + 1, levels - 1) + 1):
                src1 = {i: self.channels(i) for i in (j - 1, j) if 0 <= i < n1}
                src0 = {k: self.channels(k) for k in (j - 2, j - 1, j) if 0 <= k < n0}
                C = filters * 2 ** j
                cells.append(SpikeDHSSearchCell(j, C, src0, src1, self.ops, self._neuron(C),
                                                downsample))
            self.layers.append(cells)
        self.heads = nn.ModuleList(_Head(self.channels(j), num_classes) for j in range(levels))
        # official init 1e-3 * randn for both tables (build_model_2d.py, _initialize_alphas_betas)
        self.alphas = nn.Parameter(1e-3 * torch.randn(num_edges(STEPS), len(self.ops)))
        self.betas = nn.Parameter(1e-3 * torch.randn(layers, levels, len(MOVES)))
        self.time_constants = nn.ParameterDict()     # filled by tie_time_constants (temporal)

    # ---- parameters ------------------------------------------------------------
    def arch_parameters(self) -> List[nn.Parameter]:
        """``[alphas, betas]`` plus the shared time constants when they are searched."""
        return [self.alphas, self.betas] + list(self.time_constants.values())

    def weight_parameters(self) -> List[nn.Parameter]:
        """Every other parameter (stem, cells, heads): disjoint from :meth:`arch_parameters`."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def transitions(self) -> torch.Tensor:
        """``M`` ``[L, J, J]`` of the current ``betas``."""
        return transition_matrices(self.betas)

    def time_constant_groups(self) -> Dict[str, List[LIF]]:
        """LIFs sharing one time constant: per stage, or per (stage, level) with
        ``tau_channels``."""
        groups = {"stage0": [m for m in self.stem.modules() if isinstance(m, LIF)]}
        for l, cells in enumerate(self.layers):
            for j, cell in enumerate(cells):
                key = f"stage{l + 1}_level{j}" if self.tau_channels else f"stage{l + 1}"
                groups.setdefault(key, []).extend(m for m in cell.modules() if isinstance(m, LIF))
        return groups

    # ---- stages ----------------------------------------------------------------
    def stage_modules(self) -> List[nn.Module]:
        return [self.stem, *self.layers]

    def run_stage(self, k: int, history) -> Tuple[torch.Tensor, ...]:
        if k == 0:
            return (self.stem(history[0][0]),)
        l = k - 1
        M = self.transitions()
        pi = path_probabilities(M)
        weights = F.softmax(self.alphas, dim=-1)                       # [9, ops]
        s1 = dict(enumerate(history[k]))
        s0 = dict(enumerate(history[max(k - 1, 1)]))
        out = []
        for j, cell in enumerate(self.layers[l]):
            w0, w1 = input_weights(M, pi, l, j, len(s1), len(s0))
            out.append(cell(s0, w0, s1, w1, weights))
        return tuple(out)

    def run_head(self, history) -> torch.Tensor:
        pi = path_probabilities(self.transitions())[-1]                # [J]
        logits = None
        for j, state in enumerate(history[-1]):
            y = pi[j] * self.heads[j](state)
            logits = y if logits is None else logits + y
        return logits

    # ---- decoding --------------------------------------------------------------
    def genotype(self, b: Optional[Sequence[float]] = None, tau=None,
                 path: Optional[Sequence[int]] = None) -> SpikeDHSGenotype:
        """Decode the cell (DARTS rule, 3 nodes) and the path (Viterbi) from the tables.

        Args:
            b: Dspike sharpness per stage to record (e.g. from DGS).
            tau: time constants per stage to record; default: read from the searched
                ones (:meth:`searched_tau`) if any.
            path: override the decoded path (e.g. the official constant).
        """
        rows = F.softmax(self.alphas.detach(), dim=-1).double().cpu().tolist()
        edges = derive_cell(rows, self.ops, STEPS)
        path = viterbi_path(self.transitions()) if path is None else check_path(path, self.levels)
        if tau is None and len(self.time_constants):
            tau = self.searched_tau(path)
        return SpikeDHSGenotype(cell=tuple((op, s) for op, s, _ in edges), path=path,
                                concat=tuple(range(2, STEPS + 2)),
                                b=None if b is None else tuple(b), tau=tau)

    def searched_tau(self, path: Sequence[int]) -> Tuple:
        """The searched time constant of each stage along ``path`` (float or per-channel list)."""
        from .temporal import read_time_constants
        values = read_time_constants(self.time_constants)
        out = [values["stage0"]]
        for l, j in enumerate(path):
            out.append(values[f"stage{l + 1}_level{j}" if self.tau_channels else f"stage{l + 1}"])
        return tuple(tuple(v) if isinstance(v, list) else v for v in out)


class SpikeDHSNetwork(_SpikeDHSBase):
    """The retrained SpikeDHS network: stem, one cell per layer along the decoded path, head.

    Args:
        genotype: a :class:`SpikeDHSGenotype` (cell, path, optional ``b`` and ``tau`` per stage).
        in_channels, num_classes, T, filters, neuron, downsample: as :class:`SpikeDHSSupernet`
            (official retraining: F = 48, so 144/288/576 channels on the CIFAR path).
        auxiliary: an :class:`~snnlab.darts.AuxiliaryHead` on the output of cell
            ``2 * len(path) // 3`` (official: cell 5 of 8), run in training mode only.
    Forward: images ``[B, C, H, W]`` -> logits ``[B, classes]``, or ``(logits,
    aux_logits)`` in training mode with ``auxiliary`` (train with ``aux_weight=0.4``).
    Each stage's LIFs use the genotype's ``b`` (surrogate) and ``tau`` (fixed); a
    per-channel ``tau`` list of another length than a stage's width is quantile-mapped
    to it (:func:`map_channel_tau`).
    """

    def __init__(self, genotype: SpikeDHSGenotype, in_channels: int, num_classes: int,
                 T: int = 4, filters: int = 8, neuron: Optional[dict] = None,
                 downsample: str = "max", auxiliary: bool = False):
        super().__init__()
        if not isinstance(genotype, SpikeDHSGenotype):
            raise TypeError(f"genotype must be a SpikeDHSGenotype; got {type(genotype).__name__}. "
                            "Parse JSON with SpikeDHSGenotype.from_dict(result['genotype']).")
        per_channel = genotype.tau is not None and any(isinstance(v, tuple) for v in genotype.tau)
        self._setup(in_channels, num_classes, T, filters, neuron, per_channel, downsample)
        self.genotype = genotype
        self.cells = nn.ModuleList()
        levels = (0,) + genotype.path                                   # level of history[m + 1]
        for l, j in enumerate(genotype.path):
            src1 = levels[l]
            src0 = levels[max(l - 1, 0)]
            C = filters * 2 ** j
            self.cells.append(SpikeDHSCell(j, C, (src0, self.channels(src0)),
                                           (src1, self.channels(src1)), genotype.cell,
                                           genotype.concat, self._neuron(C), downsample))
        self.head = _Head(len(genotype.concat) * filters * 2 ** genotype.path[-1], num_classes)
        self._levels = levels
        self.aux_index = 2 * len(genotype.path) // 3                  # train.py's cell 5 of 8
        self.auxiliary_head = None if not auxiliary else AuxiliaryHead(
            len(genotype.concat) * filters * 2 ** genotype.path[self.aux_index], num_classes,
            self.neuron)
        self._apply_genotype_neurons()

    def _apply_genotype_neurons(self) -> None:
        from .dgs import set_stage_b, stage_lifs
        from .temporal import set_time_constant
        g = self.genotype
        for k in range(len(self.stage_modules())):
            if g.b is not None:
                set_stage_b(self, k, g.b[k])
            if g.tau is not None:
                for lif in stage_lifs(self, k):
                    tau = g.tau[k]
                    if isinstance(tau, tuple):
                        tau = map_channel_tau(tau, lif.channels)
                    set_time_constant(lif, tau)

    def stage_modules(self) -> List[nn.Module]:
        return [self.stem, *self.cells]

    def run_stage(self, k: int, history) -> Tuple[torch.Tensor, ...]:
        if k == 0:
            return (self.stem(history[0][0]),)
        l = k - 1
        m1, m0 = k, max(k - 1, 1)                                      # history indices of s1, s0
        s1 = {self._levels[m1 - 1]: history[m1][0]}
        s0 = {self._levels[m0 - 1]: history[m0][0]}
        return (self.cells[l](s0, s1),)

    def run_head(self, history) -> torch.Tensor:
        return self.head(history[-1][0])

    def forward(self, x: torch.Tensor):
        logits, history = self.run(self.encode(x))
        if self.auxiliary_head is None or not self.training:
            return logits
        return logits, self.auxiliary_head(history[self.aux_index + 2][0])   # cell k: [k + 2]


def map_channel_tau(tau: Sequence[float], channels: int) -> List[float]:
    """Per-channel time constants found at one width, moved to ``channels`` channels.

    At the same width the values are returned unchanged (channel ``c`` is the same
    neuron, e.g. in :func:`path_network_from_supernet`). At another width there is no
    channel correspondence, so only the distribution is transferred, by quantile
    mapping: channel ``c`` gets the empirical quantile ``(c + 1/2) / channels`` of the
    searched values, i.e. ``sorted(tau)[floor((c + 1/2) * n / channels)]`` with ``n =
    len(tau)``. For a width ``k`` times larger every searched value appears exactly ``k``
    times; a narrower width takes evenly spaced order statistics (cyclic tiling kept
    only the first ones); other ratios keep the quantiles up to one rank. Values come
    out in ascending channel order (any order is as good for a network trained anew).

    Args:
        tau: ``n`` time constants (``>= 1``), one per searched channel.
        channels: the new width.
    Returns:
        ``channels`` floats.

    >>> map_channel_tau([3.0, 1.0, 2.0], 6)
    [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    >>> map_channel_tau([1.0, 2.0, 3.0, 4.0], 2)
    [2.0, 4.0]
    """
    values = [float(v) for v in tau]
    if not values:
        raise ValueError("tau must hold at least one value per searched channel; got [].")
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels must be a positive int; got {channels!r}.")
    n = len(values)
    if n == channels:
        return values
    ranked = sorted(values)
    return [ranked[(2 * c + 1) * n // (2 * channels)] for c in range(channels)]


def path_network_from_supernet(supernet: SpikeDHSSupernet, genotype: SpikeDHSGenotype
                               ) -> SpikeDHSNetwork:
    """The retrained network of ``genotype`` at the supernet's width, holding the supernet's
    weights on the path (stem, input branches, kept ops, head); neurons follow the genotype.

    With one-hot ``alphas``/``betas`` equal to the genotype, both compute the same function.
    """
    net = SpikeDHSNetwork(genotype, supernet.in_channels, supernet.num_classes, supernet.T,
                          supernet.filters, {k: v for k, v in supernet.neuron.items()
                                             if k not in ("learn_tau", "channels")},
                          supernet.downsample)
    net.stem.conv.load_state_dict(supernet.stem.conv.state_dict())
    net.stem.bn.load_state_dict(supernet.stem.bn.state_dict())
    offsets = [sum(2 + i for i in range(k)) for k in range(STEPS)]
    for l, j in enumerate(genotype.path):
        src, dst = supernet.layers[l][j], net.cells[l]
        for name in ("input0", "input1"):
            for key, branch in getattr(dst, name).branches.items():
                branch.load_state_dict(getattr(src, name).branches[key].state_dict())
        for n, (op, s) in enumerate(genotype.cell):
            mixed = src.edges[offsets[n // 2] + s]
            dst.ops[n].load_state_dict(mixed.ops[mixed.op_names.index(op)].state_dict())
    net.head.load_state_dict(supernet.heads[genotype.path[-1]].state_dict())
    return net


def spikedhs_cell_key(name: str) -> str:
    """NoS group of a LIF name: ``"layers.3.1.nodes.0"`` -> ``"layer3.level1"``,
    ``"cells.2.input0.lif"`` -> ``"cell2"``, the stem -> ``"stem"``, else ``"other"``."""
    parts = name.split(".")
    if parts[0] == "layers" and len(parts) >= 3:
        return f"layer{parts[1]}.level{parts[2]}"
    if parts[0] == "cells" and len(parts) >= 2:
        return f"cell{parts[1]}"
    return "stem" if parts[0] == "stem" else "other"
