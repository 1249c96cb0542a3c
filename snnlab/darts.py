"""Spiking DARTS: candidate ops, the supernet (search network) and the discrete network.

DARTS (Liu, Simonyan & Yang, ICLR 2019) relaxes the choice of an op on each
edge of a cell into a softmax-weighted sum of all candidates (eq. 2, the
*MixedOp*; eq. 1 is the node sum), learns the weights ``alpha`` by gradient descent, and keeps the
strongest ops at the end (:func:`snnlab.genotypes.derive_genotype`).

**The spiking node.** Here a candidate op outputs a *current* (conv + BN,
pooling, identity or zero; no neuron inside) and every intermediate node is
ONE LIF layer fed by the sum of its incoming mixed ops (the "mixed at the
membrane" form of SpikeDHS, Che et al. NeurIPS 2022)::

    x_i = LIF( sum_{j < i} sum_o softmax(alpha_{j,i})_o * o(x_j) )        [T, B, C, H, W]

Why this form: every node state is a binary spike tensor, so every convolution
inside the cells reads spikes (accumulates, not multiply-accumulates), except
the input preprocessing of the first cells, which reads the real-valued stem
currents (cell 0's two inputs and cell 1's ``s0``); each cell owns a fixed set
of neurons (2 input + 4 node LIFs), so the number of spikes (NoS) per cell is
unambiguous during search *and* after retraining; and the retrained network
uses the same node form as the supernet (one LIF fed by op currents; SpikeDHS's
search and retrain codes differ here). It is the same form, not the same
computation: a supernet node integrates every op of every incoming edge at
softmax weights below 1, a derived node two ops at weight 1 (and affine BN),
and under a fixed threshold that changes which neurons fire. For the same
reason the softmax weights, ``none``'s included, act as a gain on the membrane:
DARTS's argument that the ``none`` weight is free because a BN follows does not
hold at a spiking node. The two input nodes
are spikes too: a cell's inputs pass a 1x1 conv + BN + LIF (DARTS's
ReLU-Conv-BN preprocessing, with the LIF as the nonlinearity), or a
factorized reduce + LIF after a reduction cell.

**The candidates** are in :mod:`snnlab.darts_ops` (:data:`DARTS_SNN_OPS`: none,
skip, max and average pool, conv 1x1/3x3/5x5 + BN); any op registered with
:func:`snnlab.ops.register_op` can join a search space.

Batch norm in the supernet follows DARTS A.1.1: no affine parameters (so an op
cannot rescale itself instead of its alpha) and batch statistics always (also
in ``eval()``). The discrete network uses ordinary BN.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from .attention import check_placement, get_attention
from .encoding import direct
from .genotypes import NONE_OP, Genotype, derive_genotype, num_edges
from .layers import SpikingConvBlock, TimeDistributed
from .darts_ops import (DARTS_SNN_OPS, ConvBN, FactorizedReduce, MaxPool, SepConvBN,
                        build_darts_op)
from .neurons import LIF
from .ops import OPS, Identity, check_op_names

# the ops live in snnlab.darts_ops; their names are re-exported here for convenience
__all__ = ["DARTS_SNN_OPS", "DARTS_NEURON", "ConvBN", "SepConvBN", "MaxPool", "FactorizedReduce",
           "build_darts_op", "drop_path", "MixedOp", "SearchCell", "SearchNetwork",
           "DiscreteCell", "DiscreteNetwork", "AuxiliaryHead", "build_darts_network", "cell_key",
           "lif_view", "reduction_layers"]

DARTS_NEURON = {"tau": 2.0, "threshold": 1.0}
"""LIF settings of every node unless ``neuron=`` overrides (hard reset, ATan surrogate)."""

AttentionFactory = Callable[[int], nn.Module]


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int; got {value!r}.")
    return value


def drop_path(x_seq: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero a whole path for some samples: ``x * mask / keep``, one mask per sample.

    ``x_seq`` ``[T, B, ...]``; the mask ``[1, B, 1, ...]`` ~ Bernoulli(``1 - drop_prob``)
    is shared by all time steps and drawn from torch's global RNG on ``x_seq``'s
    device. Returns a new tensor: quark0's in-place ``x.div_(keep).mul_(mask)`` breaks
    autograd on recent PyTorch (quark0/darts#109).

    Dividing by ``keep`` preserves the *mean current*, not the firing: firing is
    not linear in the current under a threshold, so the expected spike count with
    drop-path differs from the count without it, and spike counts taken in
    training mode are biased relative to those of ``eval()`` (in either direction).
    """
    if not 0.0 <= drop_prob < 1.0:
        raise ValueError(f"drop_prob must be in [0, 1); got {drop_prob!r}.")
    if drop_prob == 0.0:
        return x_seq
    keep = 1.0 - drop_prob
    mask = torch.empty((1, x_seq.shape[1]) + (1,) * (x_seq.dim() - 2), device=x_seq.device,
                       dtype=x_seq.dtype).bernoulli_(keep)
    return x_seq * mask / keep


def reduction_layers(layers: int) -> Tuple[int, int]:
    """Indices of the reduction cells: ``layers // 3`` and ``2 * layers // 3`` (DARTS)."""
    return (layers // 3, 2 * layers // 3)


def cell_key(name: str) -> str:
    """Group key for NoS per cell: ``"cells.3.nodes.0"`` -> ``"cells.3"``, else ``"other"``.

    Use it with :meth:`snnlab.monitor.SpikeMonitor.group_by`.
    """
    parts = name.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 and parts[0] == "cells" else "other"


def lif_view(model: nn.Module) -> nn.Module:
    """A module that holds only ``model``'s LIFs, named ``cells.<i>.<k>`` / ``other.<k>``.

    ``SpikeMonitor(lif_view(model))`` counts spikes per cell (group with
    :func:`cell_key`, pass ``images=``) without hooking the hundreds of convs of a
    supernet, whose SOP counting would double the cost of a forward pass. The view
    is never called; the LIFs keep running inside ``model``.
    """
    groups: dict = {}
    for name, module in model.named_modules():
        if isinstance(module, LIF):
            groups.setdefault(cell_key(name), []).append(module)
    view = nn.Module()
    view.cells = nn.ModuleList()
    view.other = nn.ModuleList(groups.pop("other", []))
    for key in sorted(groups, key=lambda k: int(k.split(".")[1])):
        view.cells.append(nn.ModuleList(groups[key]))
    return view


def _stem(in_channels: int, channels: int, batch_stats: bool) -> nn.Sequential:
    """Conv 3x3 + BN, no LIF: the first LIFs are those of cell 0 (direct encoding)."""
    return nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(channels, track_running_stats=not batch_stats))


def _encode(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Images ``[B, C, H, W]`` -> stem currents repeated over time ``[T, B, C', H, W]``.

    The stem has no neuron, so it runs once and its output is repeated (the same
    as running it on the repeated image); an encoded ``[T, B, C, H, W]`` input runs
    the stem on every step.
    """
    if not isinstance(x, torch.Tensor) or x.dim() not in (4, 5):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{type(model).__name__} expects images [B, C, H, W] or a sequence "
                         f"[T, B, C, H, W]; got {shape}.")
    expected = (model.in_channels, model.image_size, model.image_size)
    if tuple(x.shape[-3:]) != expected:
        raise ValueError(f"{type(model).__name__} was built for inputs of shape {expected} "
                         f"(C, H, W); got {tuple(x.shape[-3:])}. Rebuild it with "
                         "in_channels/image_size of your data.")
    if x.dim() == 4:
        return direct(model.stem(x), model.T)                         # [T, B, C', H, W]
    T, B = x.shape[:2]
    y = model.stem(x.reshape(T * B, *x.shape[2:]))                    # [T*B, C', H, W]
    return y.reshape(T, B, *y.shape[1:])


def _head(model: nn.Module, s1: torch.Tensor) -> torch.Tensor:
    """Global average pool, linear readout, mean over time: ``[T, B, C, h, w]`` -> ``[B, K]``."""
    return model.classifier(s1.mean(dim=(3, 4))).mean(0)


def _preprocess(C_in: int, C: int, reduce: bool, neuron: dict) -> nn.Module:
    """A cell input node: 1x1 conv + BN + LIF, or factorized reduce + LIF (spikes out)."""
    if reduce:
        return nn.Sequential(FactorizedReduce(C_in, C), LIF(**neuron))
    return SpikingConvBlock(C_in, C, kernel_size=1, **neuron)


def _attention_blocks(cell: nn.Module, attention: Optional[AttentionFactory], placement: str,
                      C: int, steps: int, multiplier: int) -> None:
    """Give ``cell`` its attention blocks: ``attention`` (cell output) or ``node_attention``."""
    cell.placement = check_placement(placement)
    cell.attention, cell.node_attention = None, None
    if attention is None:
        return
    if not callable(attention):
        raise TypeError(f"attention must be a factory (channels) -> nn.Module, or None; got "
                        f"{type(attention).__name__}. Look names up with "
                        "snnlab.attention.get_attention('eca').")
    if placement == "cell_output":
        cell.attention = attention(multiplier * C)
    else:
        cell.node_attention = nn.ModuleList(attention(C) for _ in range(steps))


def _node(cell: nn.Module, i: int, current: torch.Tensor) -> torch.Tensor:
    """Node ``i``: optional attention on its summed current, then its LIF -> spikes."""
    if cell.node_attention is not None:
        current = cell.node_attention[i](current)
    return cell.nodes[i](current)


def _output(cell: nn.Module, nodes: Sequence[torch.Tensor]) -> torch.Tensor:
    out = torch.cat(list(nodes), dim=2)                               # [T, B, k*C, H, W]
    return cell.attention(out) if cell.attention is not None else out


# ----------------------------------------------------------------------------- search

class MixedOp(nn.Module):
    """``sum_o w_o * o(x)`` over the candidate ops of one edge (DARTS eq. 2).

    ``none`` is not evaluated: ``w * 0`` adds nothing to the value and nothing to
    any gradient (its alpha still moves through the softmax). quark0's MixedOp
    runs ``x.mul(0.)`` on every call.

    With ``auxiliary_skip=True`` the edge also owns DARTS-'s auxiliary skip
    (Chu et al., ICLR 2021), added as ``beta * aux(x)`` on **every** edge, as in the
    official ``MixedOp`` (Meituan-AutoML/DARTS- ``src/search/model_search.py``):
    ``aux`` is the identity on a stride-1 edge and an affine-free
    :class:`FactorizedReduce` (its BN has no scale/shift and uses batch statistics,
    like every search BN) on a stride-2 edge. Its convs are ordinary weights,
    trained with the others; with ``beta = 0`` the edge is the plain MixedOp. Off
    by default, so a supernet without DARTS- has no extra parameters.

    Args:
        C: channels in and out; stride: 1, or 2 on the reduction cell's input edges.
        ops: candidate op names (the columns of ``weights``).
        neuron: LIF keyword arguments passed to the op factories.
        auxiliary_skip: build the DARTS- auxiliary path ``aux``.

    Forward: ``x_seq`` ``[T, B, C, H, W]``, ``weights`` ``[len(ops)]`` and ``beta``
    (float, the DARTS- weight; 0 = off) -> current ``[T, B, C, H', W']``.
    """

    def __init__(self, C: int, stride: int, ops: Sequence[str], neuron: Optional[dict] = None,
                 auxiliary_skip: bool = False):
        super().__init__()
        self.op_names = check_op_names(ops)
        self.ops = nn.ModuleList(build_darts_op(name, C, stride, neuron) for name in ops)
        self._active = [i for i, name in enumerate(self.op_names) if name != NONE_OP]
        if not self._active:
            raise ValueError(f"ops {self.op_names} has no op besides {NONE_OP!r}.")
        self.aux: Optional[nn.Module] = None
        if auxiliary_skip:
            if stride == 1:
                self.aux = Identity()
            else:
                self.aux = FactorizedReduce(C, C)
                # affine-free, as DARTS- FactorizedReduce(C, C, affine=False); batch statistics
                self.aux.bn = nn.BatchNorm2d(C, affine=False, track_running_stats=False)

    def forward(self, x_seq: torch.Tensor, weights: torch.Tensor,
                beta: float = 0.0) -> torch.Tensor:
        if weights.shape != (len(self.ops),):
            raise ValueError(f"weights must have shape [{len(self.ops)}] (one per op "
                             f"{self.op_names}); got {tuple(weights.shape)}.")
        out = None
        for i in self._active:
            y = weights[i] * self.ops[i](x_seq)
            out = y if out is None else out + y
        if beta:
            if self.aux is None:
                raise ValueError("beta > 0 needs the DARTS- auxiliary path: build the op with "
                                 "MixedOp(..., auxiliary_skip=True).")
            out = out + beta * self.aux(x_seq)                        # DARTS- auxiliary skip
        return out


class SearchCell(nn.Module):
    """A DARTS search cell of spiking nodes (module docstring): 2 inputs, ``steps`` nodes.

    Args:
        C_prev_prev, C_prev: channels of the two input cells' outputs.
        C: channels of every node; the output has ``multiplier * C``.
        reduction: halve the resolution (stride 2 on the edges leaving the inputs).
        reduction_prev: the previous cell reduced, so input 0 is reduced here too.
        ops: candidate op names (columns of the weights).
        neuron: LIF keyword arguments of every LIF in the cell.
        steps, multiplier: intermediate nodes, and how many of the last are concatenated.
        attention: optional factory ``(channels) -> nn.Module`` on ``[T, B, C, H, W]``.
        attention_placement: ``"cell_output"`` (one block on the concatenation) or
            ``"node_input"`` (one block per node on its summed current, before the LIF).
        auxiliary_skip: give every edge the DARTS- auxiliary path (:class:`MixedOp`).

    Forward: ``s0`` ``[T, B, C_prev_prev, H0, W0]``, ``s1`` ``[T, B, C_prev, H, W]``,
    ``weights`` ``[num_edges(steps), len(ops)]`` (softmax rows) and ``aux_skip`` (the
    DARTS- auxiliary skip weight beta, added on every edge: ``beta * x_j`` on stride-1
    edges, ``beta * FactorizedReduce(x_j)`` on stride-2 ones) ->
    ``[T, B, multiplier * C, H', W']``. Edge ``offset(i) + j`` goes from state ``j`` to
    node ``i`` (quark0 ``model_search.py`` order).
    """

    def __init__(self, C_prev_prev: int, C_prev: int, C: int, reduction: bool,
                 reduction_prev: bool, ops: Sequence[str] = DARTS_SNN_OPS,
                 neuron: Optional[dict] = None, steps: int = 4, multiplier: int = 4,
                 attention: Optional[AttentionFactory] = None,
                 attention_placement: str = "cell_output", auxiliary_skip: bool = False):
        super().__init__()
        neuron = {**DARTS_NEURON, **(neuron or {})}
        if not 1 <= multiplier <= steps:
            raise ValueError(f"multiplier must be in 1..steps={steps}; got {multiplier}.")
        self.reduction, self.steps, self.multiplier = reduction, steps, multiplier
        self.preprocess0 = _preprocess(C_prev_prev, C, reduction_prev, neuron)
        self.preprocess1 = _preprocess(C_prev, C, False, neuron)
        self.edges = nn.ModuleList()
        self.strides = []
        for i in range(steps):
            for j in range(2 + i):
                stride = 2 if reduction and j < 2 else 1
                self.edges.append(MixedOp(C, stride, ops, neuron, auxiliary_skip))
                self.strides.append(stride)
        self.nodes = nn.ModuleList(LIF(**neuron) for _ in range(steps))
        _attention_blocks(self, attention, attention_placement, C, steps, multiplier)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor,
                aux_skip: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]         # spikes [T, B, C, H, W]
        offset = 0
        for i in range(self.steps):
            current = None
            for j, h in enumerate(states):
                e = offset + j
                y = self.edges[e](h, weights[e], aux_skip)            # + DARTS- aux skip
                current = y if current is None else current + y
            states.append(_node(self, i, current))
            offset += len(states) - 1
        return _output(self, states[-self.multiplier:])


def _search_batchnorm(module: nn.Module, affine: bool) -> None:
    """Replace every ``BatchNorm2d`` under ``module`` by one without running statistics
    (batch statistics always, DARTS A.1.1) and with ``affine`` parameters or not."""
    for name, child in list(module.named_children()):
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, nn.BatchNorm2d(child.num_features, affine=affine,
                                                 track_running_stats=False))
        else:
            _search_batchnorm(child, affine)


class SearchNetwork(nn.Module):
    """The spiking DARTS supernet: stem, ``layers`` search cells, global pool, linear head.

    Args:
        C: node channels of the first cells (doubled at each reduction).
        num_classes, in_channels, image_size: the task (images ``[B, in, S, S]``).
        layers: cells; reductions at ``layers // 3`` and ``2 * layers // 3``.
        T: time steps (direct encoding: the image is repeated T times).
        ops: candidate op names (default :data:`DARTS_SNN_OPS`); order = alpha columns.
        neuron: LIF overrides on top of :data:`DARTS_NEURON`.
        steps, multiplier, stem_multiplier: 4, 4, 3 as DARTS.
        attention, attention_placement: see :class:`SearchCell` (MA-DARTS).
        affine: learnable BN scale/shift in the cells (DARTS search: False).
        auxiliary_skip: give every edge the DARTS- auxiliary path (always affine-free),
            needed by :meth:`set_aux_skip` with ``beta > 0``.

    Forward: ``x`` ``[B, in, S, S]`` (or ``[T, B, in, S, S]``) -> logits ``[B, classes]``,
    the time average of the readout.

    The architecture weights are registered ``nn.Parameter`` s ``alphas_normal`` and
    ``alphas_reduce`` ``[num_edges(steps), len(ops)]``, initialised ``1e-3 * randn``
    (quark0 ``model_search.py`` keeps them as unregistered Variables, so they are
    missing from ``state_dict``; here checkpoints hold them). Use
    :meth:`arch_parameters` and :meth:`weight_parameters` (disjoint) for the two
    optimizers.
    """

    def __init__(self, C: int = 16, num_classes: int = 10, layers: int = 8, T: int = 2,
                 in_channels: int = 3, image_size: int = 32,
                 ops: Sequence[str] = DARTS_SNN_OPS, neuron: Optional[dict] = None,
                 steps: int = 4, multiplier: int = 4, stem_multiplier: int = 3,
                 attention: Optional[AttentionFactory] = None,
                 attention_placement: str = "cell_output", affine: bool = False,
                 auxiliary_skip: bool = False):
        super().__init__()
        for name, value in (("C", C), ("num_classes", num_classes), ("layers", layers), ("T", T),
                            ("in_channels", in_channels), ("image_size", image_size),
                            ("steps", steps), ("multiplier", multiplier),
                            ("stem_multiplier", stem_multiplier)):
            _positive_int(name, value)
        self.ops = check_op_names(ops)
        self.C, self.num_classes, self.layers, self.T = C, num_classes, layers, T
        self.in_channels, self.image_size = in_channels, image_size
        self.steps, self.multiplier = steps, multiplier
        self.neuron = {**DARTS_NEURON, **(neuron or {})}
        C_curr = stem_multiplier * C
        self.stem = _stem(in_channels, C_curr, batch_stats=True)
        C_pp, C_p, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in reduction_layers(layers)
            if reduction:
                C_curr *= 2
            cell = SearchCell(C_pp, C_p, C_curr, reduction, reduction_prev, self.ops,
                              self.neuron, steps, multiplier, attention, attention_placement,
                              auxiliary_skip)
            # the candidate ops only: the DARTS- aux path stays affine-free (MixedOp)
            for part in (cell.preprocess0, cell.preprocess1, *(e.ops for e in cell.edges)):
                _search_batchnorm(part, affine)
            self.cells.append(cell)
            reduction_prev = reduction
            C_pp, C_p = C_p, multiplier * C_curr
        self.classifier = TimeDistributed(nn.Linear(C_p, num_classes))
        k, n = num_edges(steps), len(self.ops)
        self.alphas_normal = nn.Parameter(1e-3 * torch.randn(k, n))
        self.alphas_reduce = nn.Parameter(1e-3 * torch.randn(k, n))
        # DARTS- beta: a plain float (no host sync in forward), set by the search loop each epoch
        self.auxiliary_skip = auxiliary_skip
        self.aux_skip = 0.0

    # ---- parameters -----------------------------------------------------------
    def arch_parameters(self) -> list:
        """``[alphas_normal, alphas_reduce]``: what the architect's optimizer updates."""
        return [self.alphas_normal, self.alphas_reduce]

    def named_weight_parameters(self) -> list:
        """``(name, parameter)`` of every parameter that is not an alpha."""
        arch = {id(p) for p in self.arch_parameters()}
        return [(n, p) for n, p in self.named_parameters() if id(p) not in arch]

    def weight_parameters(self) -> list:
        """All ordinary weights (convs, BN, head, attention): disjoint from the alphas."""
        return [p for _, p in self.named_weight_parameters()]

    def arch_weights(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """Softmax of each alpha row, detached: ``(normal, reduce)``, ``[edges, ops]`` each."""
        return (F.softmax(self.alphas_normal.detach(), dim=-1),
                F.softmax(self.alphas_reduce.detach(), dim=-1))

    def genotype(self, max_skips: Optional[int] = None) -> Genotype:
        """The discrete cell of the current alphas (:func:`~snnlab.genotypes.derive_genotype`)."""
        normal, reduce = self.arch_weights()
        return derive_genotype(normal, reduce, self.ops, self.steps, max_skips,
                               concat=tuple(range(2 + self.steps - self.multiplier,
                                                  self.steps + 2)))

    def set_aux_skip(self, beta: float) -> None:
        """Set the DARTS- auxiliary skip weight beta on every edge (0 turns it off)."""
        if not beta >= 0:
            raise ValueError(f"the auxiliary skip weight must be >= 0; got {beta!r}.")
        if beta > 0 and not self.auxiliary_skip:
            raise ValueError("this supernet has no DARTS- auxiliary path; build it with "
                             "SearchNetwork(..., auxiliary_skip=True) (run_darts_search and "
                             "build_search_network do so when config.aux_skip > 0).")
        self.aux_skip = float(beta)

    # ---- forward -------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = _encode(self, x)                                    # [T, B, 3C, S, S]
        w_normal = F.softmax(self.alphas_normal, dim=-1)              # [edges, ops]
        w_reduce = F.softmax(self.alphas_reduce, dim=-1)
        for cell in self.cells:
            weights = w_reduce if cell.reduction else w_normal
            s0, s1 = s1, cell(s0, s1, weights, self.aux_skip)
        return _head(self, s1)                                        # [B, classes]


# ----------------------------------------------------------------------------- discrete

class DiscreteCell(nn.Module):
    """A cell built from a genotype: the same spiking nodes, two fixed ops per node.

    Args: as :class:`SearchCell`, with ``genotype`` and ``kind`` ("normal"/"reduce")
    in place of ``ops``/``steps``/``multiplier``.

    Forward: ``s0``, ``s1`` (as :class:`SearchCell`) and ``drop_prob`` (drop-path on
    every non-identity op, training only) -> ``[T, B, len(concat) * C, H', W']``.
    """

    def __init__(self, genotype: Genotype, kind: str, C_prev_prev: int, C_prev: int, C: int,
                 reduction: bool, reduction_prev: bool, neuron: Optional[dict] = None,
                 attention: Optional[AttentionFactory] = None,
                 attention_placement: str = "cell_output"):
        super().__init__()
        neuron = {**DARTS_NEURON, **(neuron or {})}
        self.reduction = reduction
        self.edges = genotype.edges_of(kind)
        self.concat = genotype.concat_of(kind)
        self.steps = genotype.steps_of(kind)
        self.preprocess0 = _preprocess(C_prev_prev, C, reduction_prev, neuron)
        self.preprocess1 = _preprocess(C_prev, C, False, neuron)
        self.ops = nn.ModuleList(
            build_darts_op(e.op, C, 2 if reduction and e.source < 2 else 1, neuron)
            for e in self.edges)
        self.nodes = nn.ModuleList(LIF(**neuron) for _ in range(self.steps))
        _attention_blocks(self, attention, attention_placement, C, self.steps, len(self.concat))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(self.steps):
            current = None
            for e in (2 * i, 2 * i + 1):
                op = self.ops[e]
                y = op(states[self.edges[e].source])
                if self.training and drop_prob > 0 and not isinstance(op, Identity):
                    y = drop_path(y, drop_prob)                       # quark0 model.py Cell
                current = y if current is None else current + y
            states.append(_node(self, i, current))
        return _output(self, [states[n] for n in self.concat])


class AuxiliaryHead(nn.Module):
    """DARTS's auxiliary classifier (``AuxiliaryHeadCIFAR``) with LIFs for its ReLUs.

    avgpool 5 stride 3 -> conv 1x1 (128) + BN + LIF -> conv 2x2 (768) + BN + LIF ->
    mean over space -> linear, averaged over time. It reads a cell's output spikes, so
    quark0's first ReLU (on a real-valued cell output) has no counterpart here.

    The pool follows the input's side: on CIFAR's 8x8 at 2/3 depth the 5/3 pool gives
    2x2 and the 2x2 conv 1x1, exactly as DARTS; maps smaller than 8x8 (2x2 for the 8x8
    digits) are pooled adaptively to 2x2 instead so that the shapes work, and larger
    ones leave more than 1x1 after the conv, averaged by the mean.

    Args:
        C_in: channels of the cell output it reads.
        num_classes: number of logits.
        neuron: LIF keyword arguments.

    Forward: spikes ``[T, B, C_in, H, W]`` -> logits ``[B, num_classes]``.

    Reference: quark0/darts ``cnn/model.py`` ``AuxiliaryHeadCIFAR``; SpikeDHS retrains
    with a spiking version of the same head (``new_model_2d.py``).
    """

    def __init__(self, C_in: int, num_classes: int, neuron: dict):
        super().__init__()
        self.conv1 = SpikingConvBlock(C_in, 128, kernel_size=1, **neuron)
        self.conv2 = SpikingConvBlock(128, 768, kernel_size=2, padding=0, **neuron)
        self.classifier = TimeDistributed(nn.Linear(768, num_classes))

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        T, B = x_seq.shape[:2]
        x = x_seq.reshape(T * B, *x_seq.shape[2:])                    # [T*B, C_in, H, W]
        x = (F.avg_pool2d(x, 5, stride=3, count_include_pad=False) if min(x.shape[-2:]) >= 8
             else F.adaptive_avg_pool2d(x, 2))                         # [T*B, C_in, h, w]
        x_seq = x.reshape(T, B, *x.shape[1:])                         # [T, B, C_in, h, w]
        y = self.conv2(self.conv1(x_seq))                             # [T, B, 768, h', w']
        return self.classifier(y.mean(dim=(3, 4))).mean(0)           # [B, classes]


class DiscreteNetwork(nn.Module):
    """A network of :class:`DiscreteCell` s for retraining a found genotype.

    Like quark0's ``NetworkCIFAR``: stem (conv + BN,
    ``stem_multiplier * C`` channels), ``layers`` cells (reductions at ``layers // 3``
    and ``2 * layers // 3``, channels doubled there), global average pool, linear
    head, logits averaged over time. It maps images ``[B, in, S, S]`` to logits
    ``[B, classes]``, so it plugs into :func:`snnlab.train.fit` and ``evaluate``.
    With ``auxiliary=True`` and in training mode it returns ``(logits, aux_logits)``
    (train with ``TrainConfig(aux_weight=0.4)``); in ``eval()`` always logits alone.

    Args:
        genotype: a :class:`~snnlab.genotypes.Genotype` whose op names are registered.
        drop_path_prob: probability of dropping each non-identity op output per
            sample during training (DARTS evaluation: 0.2, ramped up linearly over
            epochs in quark0 ``train.py``; set ``model.drop_path_prob`` between epochs
            to do the same). Never active in ``eval()``.
        auxiliary: add an :class:`AuxiliaryHead` on the output of cell ``2 * layers // 3``
            (the second reduction cell, as quark0), run in training mode only. Its
            parameters are trained but never used for predictions.
        Others: as :class:`SearchNetwork`.
    """

    def __init__(self, genotype: Genotype, C: int = 36, num_classes: int = 10, layers: int = 20,
                 T: int = 2, in_channels: int = 3, image_size: int = 32,
                 neuron: Optional[dict] = None, drop_path_prob: float = 0.0,
                 attention: Optional[AttentionFactory] = None,
                 attention_placement: str = "cell_output", stem_multiplier: int = 3,
                 auxiliary: bool = False):
        super().__init__()
        if not isinstance(genotype, Genotype):
            raise TypeError(f"genotype must be a snnlab.genotypes.Genotype; got "
                            f"{type(genotype).__name__}. Parse JSON with Genotype.from_dict.")
        unknown = [op for op in genotype.ops_used() if op not in OPS]
        if unknown:
            raise ValueError(f"genotype uses unregistered op(s) {unknown}; registered ops are "
                             f"{sorted(OPS)}. Register yours with @snnlab.ops.register_op(name) "
                             "before building the network.")
        for name, value in (("C", C), ("num_classes", num_classes), ("layers", layers), ("T", T),
                            ("in_channels", in_channels), ("image_size", image_size),
                            ("stem_multiplier", stem_multiplier)):
            _positive_int(name, value)
        if not 0.0 <= drop_path_prob < 1.0:
            raise ValueError(f"drop_path_prob must be in [0, 1); got {drop_path_prob!r}.")
        self.genotype, self.T, self.layers = genotype, T, layers
        self.in_channels, self.image_size = in_channels, image_size
        self.drop_path_prob = drop_path_prob
        self.aux_index = 2 * layers // 3                              # quark0 NetworkCIFAR
        self.auxiliary_head = None
        C_curr = stem_multiplier * C
        self.stem = _stem(in_channels, C_curr, batch_stats=False)
        C_pp, C_p, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in reduction_layers(layers)
            if reduction:
                C_curr *= 2
            kind = "reduce" if reduction else "normal"
            self.cells.append(DiscreteCell(genotype, kind, C_pp, C_p, C_curr, reduction,
                                           reduction_prev, neuron, attention,
                                           attention_placement))
            reduction_prev = reduction
            C_pp, C_p = C_p, len(genotype.concat_of(kind)) * C_curr
            if auxiliary and i == self.aux_index:
                self.auxiliary_head = AuxiliaryHead(C_p, num_classes,
                                                    {**DARTS_NEURON, **(neuron or {})})
        self.classifier = TimeDistributed(nn.Linear(C_p, num_classes))

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        s0 = s1 = _encode(self, x)                                    # [T, B, 3C, S, S]
        aux_logits = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_index and self.auxiliary_head is not None and self.training:
                aux_logits = self.auxiliary_head(s1)                  # [B, classes]
        logits = _head(self, s1)                                      # [B, classes]
        return logits if aux_logits is None else (logits, aux_logits)


def build_darts_network(genotype: Genotype, profile, bundle,
                        attention: Union[str, AttentionFactory, None] = None,
                        attention_placement: str = "cell_output",
                        neuron: Optional[dict] = None, auxiliary: bool = False) -> DiscreteNetwork:
    """A :class:`DiscreteNetwork` sized by a profile's ``darts.eval_*`` settings for a bundle.

    Args:
        genotype: the found cells.
        profile: a :class:`snnlab.profiles.Profile` (``darts.eval_channels``,
            ``darts.eval_layers``, ``darts.T``, ``darts.drop_path``, ``tau``).
        bundle: a :class:`snnlab.data.DataBundle` (classes, channels, image size).
        attention: a name of :data:`snnlab.attention.ATTENTIONS` or a factory;
            None or ``"none"``: no attention blocks.
        neuron: LIF overrides (default ``tau`` from the profile, threshold 1).
        auxiliary: add the auxiliary head (train with ``aux_weight > 0``).
    """
    if isinstance(attention, str):
        attention = None if attention == "none" else get_attention(attention)
    neuron = {"tau": profile.tau, **(neuron or {})}
    darts = profile.darts
    return DiscreteNetwork(genotype, C=darts.eval_channels,
                           num_classes=bundle.num_classes, layers=darts.eval_layers,
                           T=darts.T, in_channels=bundle.in_channels,
                           image_size=bundle.image_size, neuron=neuron,
                           drop_path_prob=darts.drop_path, attention=attention,
                           attention_placement=attention_placement, auxiliary=auxiliary)
