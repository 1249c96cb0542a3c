"""SNASNet: the searched cell and the macro network around it.

Kim, Li, Park, Venkatesha & Panda, "Neural Architecture Search for Spiking
Neural Networks", ECCV 2022 (arXiv 2201.10355); official code
``Intelligent-Computing-Lab-Yale/Neural-Architecture-Search-for-Spiking-Neural-Networks``
(HEAD 4980409), cited below by file and line.

**The cell** has 4 nodes: node 0 is the input, nodes 1 and 2 are intermediate,
node 3 is the output (no concatenation). Entry ``[i][j]`` of a 4x4 op matrix is
the code of the op on the edge from node ``i`` to node ``j`` (0 = no edge):

* ``i < j`` (upper triangle): a **forward** edge, used within the time step,
  ``x_j = sum_{i<j} op_ij(x_i)``;
* ``i > j`` (lower triangle): a **backward** edge, temporal feedback: its output
  is added to node ``j`` at the *next* time step.

With feedback ``fb_i[t]`` arriving at node ``i`` (zero at ``t = 0``), one step is
(official ``searchcells/search_cell_snn.py`` L128-137)::

    z_0 = x_0[t] + fb_0[t]
    z_j = sum_{i<j} op_ij(z_i) + fb_j[t]          j = 1, 2, 3   (fb_3 = 0)
    y[t] = z_3
    fb_i[t+1] = sum_{j>i} op_ji(z_j)               i = 0, 1, 2

A cell without backward edges is a plain DAG and runs multi-step on ``[T, B, ...]``.

The genotype (:class:`CellGenotype`, the official 4x4 op matrix) and the Fw/Bw
search spaces (:class:`SNASNetSpace`) live in :mod:`snnlab.snasnet_space` and are
re-exported here.

**The macro network** (official ``model_snn.py`` L113-237): stem conv3x3+BN (no
LIF) -> cell(C) -> BN, LIF, conv3x3 C->2C, BN, avgpool 2 -> cell(2C, same
genotype) -> BN, LIF, avgpool -> Dropout, Linear, LIF, Linear -> voting ->
logits averaged over T.

Where we differ from the official code, and why:

* Batch norm outside feedback cells runs on the merged ``[T*B]`` batch (one
  call instead of T); the official code runs every layer one step at a time, so
  in train mode it normalises each step with that step's statistics. Cells with
  feedback edges run step by step and match it. In eval mode both use running
  statistics, so they agree only when those are equal; they are not after
  training, since the official code updates them T times per forward with
  per-step statistics and snnlab once with statistics pooled over ``T*B``
  (:mod:`snnlab.layers`). This applies to the forward cells, the down block,
  ``last_act`` and the training-free score.
* No state survives a forward: membranes, feedback and the dropout mask start
  afresh on every call. The official code resets the feedback per forward
  (``model_snn.py`` L240-246) but relies on ``reset_net`` for membranes and
  masks, which its search omits between the two scoring batches.
* ``none`` returns zeros without computing (the official ``ScaleLayer``
  multiplies by 0), and ``none`` edges build no module.

**Two switches** build the networks of SpikeNAS-Bench (``tju-sun-lab/SpikeNAS-Bench``),
whose defaults are snnlab's (stored results do not move):

* ``bn_stats="per_step"`` runs every BN of the cells, the down block and
  ``last_act`` on one time step at a time (train mode: each step's own batch
  statistics, as the official single-step code); the cells then run
  :meth:`SNASNetCell.forward_steps`. Default ``"pooled"``: BN over ``T*B``.
* ``down_spike=False`` drops the LIF of the down block (BN, conv, BN, avgpool).

SpikeNAS-Bench trained its cells with C = 128 and the defaults (multi-step
SpikingJelly, ``Train_all_networks/model_snn.py``: pooled BN, LIF in the down
block), but its training-free scorer (``NAS/model_snn_withoutcupy.py``, used by
``NAS/evaluator.py``) builds a single-step network without that LIF:
``SNASNet(g, C=128, bn_stats="per_step", down_spike=False)``. Both use C = 128,
``fc_hidden`` 1024, 10 votes per class and ``last_pool`` 2.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import List, Optional, Tuple

import torch
from torch import nn

from .encoding import direct
from .layers import TimeDistributed
from .neurons import LIF
from .ops import build_op, check_steppable, op_step
from .snasnet_space import NUM_NODES, SPACE_KINDS, CellGenotype, Edge, SNASNetSpace

__all__ = ["NUM_NODES", "SNASNET_NEURON", "SPACE_KINDS", "BN_STATS", "Edge", "CellGenotype",
           "SNASNetSpace", "SNASNetCell", "SequenceDropout", "SNASNet", "init_weights",
           "build_snasnet"]

# "pooled": time-distributed BN over T*B (snnlab); "per_step": one BN call per step (official)
BN_STATS = ("pooled", "per_step")

# SNASNet's neuron (official config.py L14-15 and spikingjelly's LIFNode defaults):
# tau 4/3 (keeps 25 % per step) with the input scaled by 1/tau, threshold 1, hard
# reset to 0 with the reset detached, ATan surrogate with alpha 2.
SNASNET_NEURON = MappingProxyType(dict(tau=4.0 / 3.0, threshold=1.0, reset="hard",
                                       surrogate="atan", detach_reset=True, decay_input=True))


# ---- the cell --------------------------------------------------------------------

def _plus(a: Optional[torch.Tensor], b: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """``a + b`` where ``None`` stands for zero (no edge, no feedback yet)."""
    return b if a is None else a if b is None else a + b


class SNASNetCell(nn.Module):
    """A 4-node SNASNet cell on ``[T, B, C, H, W]`` (equations: module docstring).

    Args:
        genotype: a connected :class:`CellGenotype` (built as given; prune it first
            with ``genotype.pruned()`` to drop dead nodes).
        C: channels of every node.
        neuron: LIF keyword arguments merged over :data:`SNASNET_NEURON`.
    Forward:
        ``x_seq`` ``[T, B, C, H, W]`` -> node 3, ``[T, B, C, H, W]``. Without backward
        edges the ops run once on the whole sequence; with them the cell loops over
        time itself (:meth:`forward_steps`). Feedback starts at zero on every call.

    ``none`` edges build no module. Ops are in ``cell.edges`` under keys like
    ``"0to1"`` and ``"2to0"``.
    """

    def __init__(self, genotype: CellGenotype, C: int, neuron: Optional[dict] = None):
        super().__init__()
        if not isinstance(genotype, CellGenotype):
            raise TypeError(f"genotype must be a CellGenotype; got {type(genotype).__name__}.")
        if not genotype.connected:
            raise ValueError(f"in {genotype!r} the input (node 0) never reaches the output "
                             "(node 3): such a cell ignores its input. Add a path 0 -> 3.")
        neuron = {**SNASNET_NEURON, **(neuron or {})}
        self.genotype, self.C = genotype, C
        self.edges = nn.ModuleDict()
        self._inputs: List[List[Tuple[int, str]]] = [[] for _ in range(NUM_NODES)]
        self._feedback: List[List[Tuple[int, str]]] = [[] for _ in range(NUM_NODES)]
        for edge in genotype.edges():
            key = f"{edge.src}to{edge.dst}"
            self.edges[key] = op = build_op(edge.op, C, 1, neuron)
            if genotype.is_backward:   # a feedback cell runs all its ops step by step
                check_steppable(op, f"op {edge.op!r} on edge {edge.src}->{edge.dst}")
            if edge.direction == "forward":
                self._inputs[edge.dst].append((edge.src, key))
            else:
                self._feedback[edge.dst].append((edge.src, key))

    def _check(self, x_seq: torch.Tensor) -> None:
        if not isinstance(x_seq, torch.Tensor) or x_seq.dim() != 5 or x_seq.shape[2] != self.C:
            shape = tuple(x_seq.shape) if isinstance(x_seq, torch.Tensor) else type(x_seq)
            raise ValueError(f"SNASNetCell expects [T, B, C={self.C}, H, W] (time first); "
                             f"got {shape}.")

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        self._check(x_seq)
        if self.genotype.is_backward:
            return self.forward_steps(x_seq)
        nodes = [x_seq]                                                # each [T, B, C, H, W]
        for j in range(1, NUM_NODES):
            total = None
            for i, key in self._inputs[j]:
                total = _plus(total, self.edges[key](nodes[i]))
            nodes.append(torch.zeros_like(x_seq) if total is None else total)
        return nodes[-1]

    def forward_steps(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Run the cell one time step at a time (official ``search_cell_snn.py`` L128-137).

        Every op runs through :func:`snnlab.ops.op_step`, with its own state dict
        for this call. The feedback is also computed at the last step, where it is
        unused, as in the official code (its spikes count in monitors and the score).
        For a cell without backward edges this equals :meth:`forward` when batch
        norm is in eval mode; in train mode the per-step BN uses each step's batch
        statistics instead of those of the merged ``[T*B]`` batch.
        """
        self._check(x_seq)
        states = {key: {} for key in self.edges}
        feedback: List[Optional[torch.Tensor]] = [None] * NUM_NODES     # fb_i, each [B, C, H, W]
        outputs = []
        for t in range(x_seq.shape[0]):
            z = [_plus(x_seq[t], feedback[0])]                 # node + feedback, [B, C, H, W]
            for j in range(1, NUM_NODES):
                total = None
                for i, key in self._inputs[j]:
                    total = _plus(total, op_step(self.edges[key], z[i], states[key]))
                total = _plus(total, feedback[j])                        # x_j + fb_j
                z.append(torch.zeros_like(x_seq[t]) if total is None else total)
            outputs.append(z[-1])
            feedback = [None] * NUM_NODES
            for i in range(NUM_NODES):
                for j, key in self._feedback[i]:
                    feedback[i] = _plus(feedback[i], op_step(self.edges[key], z[j], states[key]))
        return torch.stack(outputs)                                     # [T, B, C, H, W]


# ---- the macro network ---------------------------------------------------------

class _PerStepBN(nn.Module):
    """Batch norm called once per time step of ``[T, B, C, H, W]`` (parameters shared).

    In train mode each step is normalised with its own batch statistics and the
    running statistics are updated T times, as the official single-step code. The
    wrapped BN is ``.module``, as in :class:`TimeDistributed`, so both variants
    have the same state-dict keys.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.module = nn.BatchNorm2d(channels)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.module(x_t) for x_t in x_seq])       # [T, B, C, H, W]


class SequenceDropout(nn.Module):
    """Dropout with one mask per sequence, shared by all T steps of ``[T, B, ...]``.

    SpikingJelly's ``layer.Dropout`` used by the official classifier
    (``model_snn.py`` L197) draws its mask once and reuses it at every step. The
    identity in eval mode; kept values are scaled by ``1 / (1 - p)``.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability p must be in [0, 1); got {p}.")
        self.p = p

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x_seq
        keep = torch.empty_like(x_seq[:1]).bernoulli_(1 - self.p)      # [1, B, ...]
        return x_seq * keep / (1 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def init_weights(model: nn.Module) -> nn.Module:
    """The official initialisation (``model_snn.py`` L205-217), applied to every submodule:
    Conv2d ``kaiming_uniform_(a=2)``, BatchNorm2d weight 1, Linear ``N(0, 0.01^2)``, biases 0."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_uniform_(m.weight, a=2)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
        else:
            continue
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    return model


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int; got {value!r}.")
    return value


class SNASNet(nn.Module):
    """SNASNet's macro network around one searched cell genotype (used by both cells).

    Args:
        genotype: the cell (:class:`CellGenotype`); a Bw genotype gives feedback cells.
        in_channels, num_classes, image_size: the task (image ``[B, in_channels, S, S]``).
        C: channels of the first cell (the second has ``2C``); official CIFAR-10 256.
        T: time steps for a static image (direct encoding); official 5.
        fc_hidden: hidden width of the classifier; official 1024.
        votes_per_class: readout neurons per class, averaged by the voting layer; official 10.
        neuron: LIF keyword arguments merged over :data:`SNASNET_NEURON`.
        last_pool: average pool before the classifier (official ``--second_avgpooling``,
            default 2; the released CIFAR-10 model used 4).
        dropout: classifier dropout (one mask per sequence, :class:`SequenceDropout`).
        bn_stats: ``"pooled"`` (default; BN over ``T*B``) or ``"per_step"`` (every BN
            after the stem sees one step; the cells run step by step). See the
            module docstring.
        down_spike: keep the LIF of the down block (default, official SNASNet and
            SpikeNAS-Bench's training network); False drops it, as SpikeNAS-Bench's
            scoring network.

    Forward:
        ``x`` ``[B, in_channels, S, S]``: the stem (conv3x3 + BN, no LIF) runs once and
        its output is repeated T times (official ``model_snn.py`` L224-227); or an
        already encoded ``[T', B, in_channels, S, S]``: the stem runs on every step and
        T' steps are used. Returns logits ``[B, num_classes]``: the voted readout
        averaged over time. Stages: stem -> cell(C) -> BN, LIF, conv3x3 C->2C, BN,
        avgpool 2 -> cell(2C) -> BN, LIF, avgpool ``last_pool`` -> Dropout, Linear (no
        bias), LIF, Linear -> mean of each class's ``votes_per_class`` outputs.

    Weights are initialised as the official code (:func:`init_weights`), user ops included.
    """

    def __init__(self, genotype: CellGenotype, in_channels: int = 3, num_classes: int = 10,
                 C: int = 256, T: int = 5, image_size: int = 32, fc_hidden: int = 1024,
                 votes_per_class: int = 10, neuron: Optional[dict] = None,
                 last_pool: int = 2, dropout: float = 0.5, bn_stats: str = "pooled",
                 down_spike: bool = True):
        super().__init__()
        if bn_stats not in BN_STATS:
            raise ValueError(f"bn_stats must be one of {BN_STATS}; got {bn_stats!r}.")
        if not isinstance(down_spike, bool):
            raise TypeError(f"down_spike must be a bool; got {down_spike!r}.")
        for name, value in (("in_channels", in_channels), ("num_classes", num_classes), ("C", C),
                            ("T", T), ("image_size", image_size), ("fc_hidden", fc_hidden),
                            ("votes_per_class", votes_per_class), ("last_pool", last_pool)):
            _positive_int(name, value)
        side = image_size // 2 // last_pool
        if side < 1:
            raise ValueError(f"image_size={image_size} is too small: it is halved, then pooled by "
                             f"last_pool={last_pool}, leaving {side} pixels. Lower last_pool.")
        neuron = {**SNASNET_NEURON, **(neuron or {})}
        self.genotype, self.T = genotype, T
        self.bn_stats, self.down_spike = bn_stats, down_spike
        bn = _PerStepBN if bn_stats == "per_step" else (lambda c: TimeDistributed(nn.BatchNorm2d(c)))
        self.in_channels, self.image_size = in_channels, image_size
        self.num_classes, self.votes_per_class = num_classes, votes_per_class
        # model_snn.py L155-158: stem conv3x3 (no bias) + BN, no neuron
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(C))
        self.cell1 = SNASNetCell(genotype, C, neuron)
        # L168-178: BN -> LIF -> conv3x3 C->2C -> BN, then 2x2 average pool
        # (SpikeNAS-Bench's scorer, model_snn_withoutcupy.py L149-158: no LIF)
        spike = [LIF(**neuron)] if down_spike else []
        self.down = nn.Sequential(
            bn(C), *spike, TimeDistributed(nn.Conv2d(C, 2 * C, 3, padding=1, bias=False)),
            bn(2 * C), TimeDistributed(nn.AvgPool2d(2)))
        self.cell2 = SNASNetCell(genotype, 2 * C, neuron)
        if bn_stats == "per_step":                  # the cells' ops must have a step()
            for key, op in list(self.cell1.edges.items()):
                check_steppable(op, f"op on edge {key}")
        # L188-194: BN -> LIF, then average pool: the classifier sees spike averages
        self.last_act = nn.Sequential(bn(2 * C), LIF(**neuron),
                                      TimeDistributed(nn.AvgPool2d(last_pool)))
        # L196-203: Dropout -> Linear (no bias) -> LIF -> Linear -> voting
        self.classifier = nn.Sequential(
            SequenceDropout(dropout),
            TimeDistributed(nn.Linear(2 * C * side * side, fc_hidden, bias=False)), LIF(**neuron),
            TimeDistributed(nn.Linear(fc_hidden, num_classes * votes_per_class)))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() not in (4, 5):
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"SNASNet expects images [B, C, H, W] or a sequence [T, B, C, H, W]; "
                             f"got {shape}.")
        expected = (self.in_channels, self.image_size, self.image_size)
        if tuple(x.shape[-3:]) != expected:
            raise ValueError(f"SNASNet was built for images of shape {expected} (C, H, W); got "
                             f"{tuple(x.shape[-3:])}. Rebuild it with in_channels/image_size.")
        if x.dim() == 4:
            x_seq = direct(self.stem(x), self.T)                      # [T, B, C, H, W]
        else:
            T, B = x.shape[:2]
            static = self.stem(x.reshape(T * B, *x.shape[2:]))       # [T*B, C, H, W]
            x_seq = static.reshape(T, B, *static.shape[1:])           # [T, B, C, H, W]
        if self.bn_stats == "per_step":          # each op's BN sees one step
            x_seq = self.cell2.forward_steps(self.down(self.cell1.forward_steps(x_seq)))
        else:
            x_seq = self.cell2(self.down(self.cell1(x_seq)))           # [T, B, 2C, s', s']
        x_seq = self.last_act(x_seq)                                  # [T, B, 2C, s, s]
        out = self.classifier(x_seq.flatten(2))                       # [T, B, classes * votes]
        votes = out.reshape(*out.shape[:2], self.num_classes, self.votes_per_class)
        return votes.mean(3).mean(0)                                  # [B, num_classes]


def build_snasnet(genotype: CellGenotype, profile, bundle, neuron: Optional[dict] = None
                  ) -> SNASNet:
    """An :class:`SNASNet` sized by a profile (``snasnet`` settings, ``T``) for a data bundle.

    Args:
        genotype: the cell.
        profile: a :class:`snnlab.profiles.Profile`.
        bundle: a :class:`snnlab.data.DataBundle` (in_channels, num_classes, image_size).
        neuron: optional LIF overrides (default SNASNet's neuron).
    """
    if not isinstance(genotype, CellGenotype):
        raise TypeError(f"genotype must be a CellGenotype; got {type(genotype).__name__}. Parse "
                        "text with CellGenotype.from_string or JSON with CellGenotype.from_dict.")
    return SNASNet(genotype, in_channels=bundle.in_channels, num_classes=bundle.num_classes,
                   C=profile.snasnet.channels, T=profile.T, image_size=bundle.image_size,
                   fc_hidden=profile.snasnet.fc, votes_per_class=profile.snasnet.votes,
                   neuron=neuron, last_pool=profile.snasnet.last_pool)
