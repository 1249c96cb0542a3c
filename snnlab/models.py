"""The hand-designed spiking CNN: the "ANN-inherited" baseline of chapter 2.

A VGG-style stack (conv -> BN -> LIF, max pooling between stages) copied
from how ANNs are built, run for ``T`` steps with direct encoding, logits
averaged over time. Later chapters ask whether a searched architecture beats it.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .encoding import direct
from .layers import SpikingConvBlock, TimeDistributed

__all__ = ["SpikingCNN"]


class SpikingCNN(nn.Module):
    """Spiking VGG-style classifier for images ``[B, C, H, W]``.

    Args:
        in_channels: image channels (1 for digits, 3 for CIFAR).
        num_classes: number of classes.
        widths: output channels of each conv stage; stages after the first halve
            the resolution with a 2x2 max pool (the max of spikes is a spike, so the
            next layer still receives binary events; an average pool would not).
        T: number of time steps (direct encoding repeats the image T times).
        image_size: input height = width, used to size the classifier.
        **lif_kwargs: neuron settings for every LIF (tau, threshold, surrogate, ...).
    Forward:
        ``x`` ``[B, C, H, W]`` (or an already encoded ``[T, B, C, H, W]``) ->
        logits ``[B, num_classes]``, the mean over time of the readout.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10,
                 widths: Sequence[int] = (16, 32, 64), T: int = 4, image_size: int = 8,
                 **lif_kwargs):
        super().__init__()
        if T < 1:
            raise ValueError(f"T (time steps) must be >= 1; got {T}.")
        self.T, self.in_channels, self.image_size = T, in_channels, image_size
        layers, channels, size = [], in_channels, image_size
        for i, width in enumerate(widths):
            if i > 0:
                layers.append(TimeDistributed(nn.MaxPool2d(2)))
                size //= 2
            layers.append(SpikingConvBlock(channels, width, **lif_kwargs))
            channels = width
        if size < 1:
            raise ValueError(f"{len(widths)} stages halve a {image_size}px image below 1px; "
                             "use fewer widths or a larger image_size.")
        self.features = nn.Sequential(*layers)
        self.classifier = TimeDistributed(nn.Linear(channels * size * size, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        x_seq = direct(x, self.T) if x.dim() == 4 else x             # [T, B, C, H, W]
        features = self.features(x_seq)                               # [T, B, C', H', W']
        flat = features.flatten(2)                                    # [T, B, C'*H'*W']
        return self.classifier(flat).mean(0)                          # [B, num_classes]

    def _check_input(self, x: torch.Tensor) -> None:
        """Name a wrong input shape here, instead of a matmul error deep in the classifier."""
        expected = (self.in_channels, self.image_size, self.image_size)
        if not isinstance(x, torch.Tensor) or x.dim() not in (4, 5):
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"SpikingCNN expects images [B, C, H, W] or an encoded sequence "
                             f"[T, B, C, H, W]; got {got}.")
        if tuple(x.shape[-3:]) != expected:
            raise ValueError(
                f"SpikingCNN was built for images of {self.in_channels} channel(s) of "
                f"{self.image_size}x{self.image_size} pixels ([B, {self.in_channels}, "
                f"{self.image_size}, {self.image_size}]); got {tuple(x.shape)}. Build it for "
                "this data: SpikingCNN(in_channels=bundle.in_channels, "
                "image_size=bundle.image_size, ...).")
