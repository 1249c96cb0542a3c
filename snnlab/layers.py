"""Layers for time-first spiking tensors ``[T, B, ...]``.

Stateless layers (convolution, batch norm, pooling, linear) do not care about
time, so :class:`TimeDistributed` runs them once on the merged ``[T*B, ...]``
batch: one large call instead of T small ones (SpikingJelly's ``SeqToANN``
idea). Batch norm therefore pools its statistics over all ``T*B`` samples: in
train mode every step is normalised with the mean and variance of the whole
sequence, and the running statistics are updated once per forward with these
pooled values. The official SNASNet and SpikeDHS codes instead call the same BN
once per time step (parameters shared over time, statistics not): in train mode
each step is normalised with its own statistics, and the running statistics are
updated T times per forward with per-step values. The two agree in train mode
only when the input statistics do not drift over time, and in eval mode only
for equal running statistics, which training the two ways does not give.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .neurons import LIF

__all__ = ["TimeDistributed", "SpikingConvBlock"]


class TimeDistributed(nn.Module):
    """Apply a stateless ``module`` to every time step of ``[T, B, ...]`` at once.

    Example:
        >>> conv = TimeDistributed(nn.Conv2d(1, 4, 3, padding=1))
        >>> conv(torch.zeros(5, 2, 1, 8, 8)).shape
        torch.Size([5, 2, 4, 8, 8])
    """

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        if x_seq.dim() < 3:
            raise ValueError(f"{type(self.module).__name__} expects [T, B, ...] (time first); "
                             f"got shape {tuple(x_seq.shape)}. Encode a static batch first, "
                             "e.g. snnlab.encoding.direct(x, T).")
        T, B = x_seq.shape[:2]
        y = self.module(x_seq.reshape(T * B, *x_seq.shape[2:]))      # [T*B, ...]
        return y.reshape(T, B, *y.shape[1:])                          # [T, B, ...]


class SpikingConvBlock(nn.Module):
    """Convolution -> batch norm -> LIF on ``[T, B, C, H, W]``.

    Args:
        in_channels, out_channels, kernel_size, stride: as ``nn.Conv2d``
            (padding defaults to ``kernel_size // 2``, no bias: BN follows).
        **lif_kwargs: passed to :class:`~snnlab.neurons.LIF` (tau, threshold, ...).
    Returns (forward):
        spikes ``[T, B, out_channels, H', W']``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, padding: Optional[int] = None, **lif_kwargs):
        super().__init__()
        padding = kernel_size // 2 if padding is None else padding
        self.conv = TimeDistributed(nn.Conv2d(in_channels, out_channels, kernel_size,
                                              stride=stride, padding=padding, bias=False))
        self.bn = TimeDistributed(nn.BatchNorm2d(out_channels))
        self.lif = LIF(**lif_kwargs)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return self.lif(self.bn(self.conv(x_seq)))
