"""The candidate ops of spiking DARTS, registered in :data:`snnlab.ops.OPS`.

Every op maps ``[T, B, C, H, W]`` to a *current* ``[T, B, C, H', W']``
(``H' = ceil(H / stride)``) with no neuron inside: in :mod:`snnlab.darts` a node
sums the currents of its incoming ops into ONE LIF layer.

The default search space, :data:`DARTS_SNN_OPS` (the columns of ``alpha`` in this order):

=================  ==========================================================
``none``           zeros (kept only by the relaxation; never derived)
``skip_connect``   identity; in reduction cells a factorized reduce (two
                   1x1 stride-2 convs on offset pixels + BN), as DARTS
``max_pool_3x3``   max pool 3x3, no BN (the max of spikes is a spike)
``avg_pool_3x3``   average pool 3x3, no BN (the SNASNet candidate)
``conv_1x1``       conv 1x1 + BN  (SNASNet's two conv candidates, as
``conv_3x3``       conv 3x3 + BN   currents; SpikeDHS searches only 3x3)
``conv_5x5``       conv 5x5 + BN  (the widest receptive field of DARTS)
=================  ==========================================================

Why dense convs and not DARTS's separable/dilated ones: a node sums currents
into ONE neuron, so an op has no place for DARTS's inner ReLU; dense convs on
spikes are the SNN standard (SNASNet, SpikeDHS), and depthwise convs are slow
on CPUs (the tiny profile runs there). The receptive fields 1, 3, 5 plus two
parameter-free pools and skip give the search the same kinds of choices as
DARTS's eight ops.

Pools, like skip, carry no BN: their output is a non-negative current made of
spikes, and the op is the same in search and retraining (DARTS adds an
affine-free BN after pools in search only, ``model_search.py``). A likely bias
follows at a spiking node: skip and the pools feed it a positive-mean current
while every conv + BN feeds a zero-mean one, so in search the parameter-free
ops restore drive to the membrane and can gain weight for that alone (register
a pool + BN variant to ablate it). ``avg_pool_3x3`` counts the zero padding in
its average (SNASNet's op; DARTS uses ``count_include_pad=False``), so border
currents are lower, which matters more under a threshold than after a ReLU. For DARTS's
own cells (``DARTS_V2``) this module also registers ``sep_conv_3x3/5x5`` and
``dil_conv_3x3/5x5`` as ONE depthwise-pointwise-BN stack each (DARTS stacks its
separable conv twice with a ReLU between).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .genotypes import SKIP_OP
from .layers import TimeDistributed
from .ops import build_op, register_op

__all__ = ["DARTS_SNN_OPS", "ConvBN", "SepConvBN", "MaxPool", "FactorizedReduce",
           "build_darts_op"]

DARTS_SNN_OPS: Tuple[str, ...] = ("none", "skip_connect", "max_pool_3x3", "avg_pool_3x3",
                                  "conv_1x1", "conv_3x3", "conv_5x5")
"""The default search space: its order indexes the columns of ``alphas_normal/reduce``."""


def _check_sequence(x_seq: torch.Tensor, name: str) -> None:
    if not isinstance(x_seq, torch.Tensor) or x_seq.dim() != 5:
        shape = tuple(x_seq.shape) if isinstance(x_seq, torch.Tensor) else type(x_seq).__name__
        raise ValueError(f"{name} expects [T, B, C, H, W] (time first); got {shape}.")


class ConvBN(nn.Module):
    """Conv (no bias) -> BN on ``[T, B, C_in, H, W]`` -> current ``[T, B, C_out, H', W']``.

    Padding keeps ``H' = ceil(H / stride)`` (dilated kernels included).
    """

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int = 1,
                 dilation: int = 1):
        super().__init__()
        self.conv = TimeDistributed(nn.Conv2d(C_in, C_out, kernel_size, stride=stride,
                                              padding=dilation * (kernel_size // 2),
                                              dilation=dilation, bias=False))
        self.bn = TimeDistributed(nn.BatchNorm2d(C_out))

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        _check_sequence(x_seq, type(self).__name__)
        return self.bn(self.conv(x_seq))


class SepConvBN(nn.Module):
    """Depthwise kxk (optionally dilated) -> pointwise 1x1 -> BN, ``C -> C``.

    DARTS's ``DilConv`` is exactly this behind a ReLU; its ``SepConv`` stacks two
    (quark0 ``operations.py``). Here the node's LIF is the only nonlinearity, so
    one stack: the op outputs a current.
    """

    def __init__(self, C: int, kernel_size: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.depthwise = TimeDistributed(nn.Conv2d(C, C, kernel_size, stride=stride,
                                                   padding=dilation * (kernel_size // 2),
                                                   dilation=dilation, groups=C, bias=False))
        self.pointwise = TimeDistributed(nn.Conv2d(C, C, 1, bias=False))
        self.bn = TimeDistributed(nn.BatchNorm2d(C))

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        _check_sequence(x_seq, type(self).__name__)
        return self.bn(self.pointwise(self.depthwise(x_seq)))


class MaxPool(nn.Module):
    """Max pool 3x3, pad 1 (``H' = ceil(H / stride)``), no BN: spikes in, spikes out."""

    def __init__(self, stride: int = 1):
        super().__init__()
        self.pool = TimeDistributed(nn.MaxPool2d(3, stride=stride, padding=1))

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        _check_sequence(x_seq, type(self).__name__)
        return self.pool(x_seq)


class FactorizedReduce(nn.Module):
    """Halve the resolution with two 1x1 stride-2 convs: one reads the even-even pixels,
    the other (on the input shifted by one pixel) the odd-odd ones, so half of the pixels
    are read instead of a quarter; outputs concatenated, then BN (DARTS
    ``FactorizedReduce``, quark0 ``operations.py``, without its leading ReLU).

    ``[T, B, C_in, H, W]`` -> ``[T, B, C_out, ceil(H/2), ceil(W/2)]``; odd sizes work
    (the shifted copy is zero-padded at the far border).
    """

    def __init__(self, C_in: int, C_out: int):
        super().__init__()
        half = C_out // 2
        self.conv_a = nn.Conv2d(C_in, half, 1, stride=2, bias=False)
        self.conv_b = nn.Conv2d(C_in, C_out - half, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(C_out)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        _check_sequence(x_seq, type(self).__name__)
        T, B = x_seq.shape[:2]
        x = x_seq.reshape(T * B, *x_seq.shape[2:])                  # [T*B, C, H, W]
        shifted = F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))               # pixel (i+1, j+1) at (i, j)
        y = self.bn(torch.cat([self.conv_a(x), self.conv_b(shifted)], dim=1))
        return y.reshape(T, B, *y.shape[1:])                         # [T, B, C_out, H', W']


def _register(name: str, factory) -> None:
    # replace=True: re-importing this module (autoreload) re-registers the same ops
    register_op(name, replace=True)(factory)


_register("max_pool_3x3", lambda C, stride, neuron: MaxPool(stride))
_register("conv_1x1", lambda C, stride, neuron: ConvBN(C, C, 1, stride))
_register("conv_3x3", lambda C, stride, neuron: ConvBN(C, C, 3, stride))
_register("conv_5x5", lambda C, stride, neuron: ConvBN(C, C, 5, stride))
_register("dil_conv_3x3", lambda C, stride, neuron: SepConvBN(C, 3, stride, dilation=2))
_register("dil_conv_5x5", lambda C, stride, neuron: SepConvBN(C, 5, stride, dilation=2))
_register("sep_conv_3x3", lambda C, stride, neuron: SepConvBN(C, 3, stride))
_register("sep_conv_5x5", lambda C, stride, neuron: SepConvBN(C, 5, stride))


def build_darts_op(name: str, C: int, stride: int = 1, neuron: Optional[dict] = None) -> nn.Module:
    """Build op ``name`` from :data:`snnlab.ops.OPS` for a DARTS cell edge.

    The one DARTS-specific rule: ``skip_connect`` on a stride-2 edge is a
    :class:`FactorizedReduce` (quark0 ``operations.py`` ``OPS['skip_connect']``);
    snnlab's registered ``skip_connect`` is the identity only, since SNASNet
    cells never reduce.
    """
    if name == SKIP_OP and stride == 2:
        return FactorizedReduce(C, C)
    return build_op(name, C, stride, neuron)
