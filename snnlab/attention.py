"""Attention blocks for spiking feature maps ``[T, B, C, H, W]`` (MA-DARTS, chapter 5).

Every block multiplies its input by a gate in ``(0, 1)`` computed from the input
itself, and returns a tensor of the input's shape:

=================  =================  ========================  ===============================
block              re-weights         gate shape                source
=================  =================  ========================  ===============================
ECA                channels           ``[T, B, C, 1, 1]``       Wang et al., CVPR 2020
CBAM               channels, then     ``[T, B, C, 1, 1]``,      Woo et al., ECCV 2018
                   positions          then ``[T, B, 1, H, W]``
TemporalAttention  time steps         ``[T, B, 1, 1, 1]``       after TA-SNN, Yao et al.,
                                                                ICCV 2021 (our conv variant)
MultiDimAttention  time, channels,    the three above           after MA-SNN, Yao et al.,
                   positions                                    TPAMI 2023 (our composition)
=================  =================  ========================  ===============================

ECA and CBAM are image (ANN) blocks: here they run on every time step
separately (``T`` and ``B`` merged), so a channel may get a different weight at
each step. No block keeps state between calls, and all run on any device.

**Spikes in, real values out.** A gate times a spike is a real number. Where the
block sits decides whether that matters (the ``attention_placement`` argument of
the DARTS cells in :mod:`snnlab.darts`):

* ``"cell_output"`` (MA-DARTS default, our reconstruction): the block rescales
  the concatenated spikes of a cell, so the next cell receives *real-valued*
  input. This breaks the pure-spike semantics (the next convolution does
  multiply-accumulates, not accumulates; :class:`snnlab.monitor.SpikeMonitor`
  counts them as MACs) but does not change any spike of the cell itself.
* ``"node_input"`` (membrane attention, as MA-SNN): the block rescales the summed
  current entering a node's LIF, before the threshold. Node outputs stay binary,
  and the firing (the NoS) changes.

The registry :data:`ATTENTIONS` maps the names ``"none"``, ``"eca"``, ``"cbam"``,
``"temporal"`` and ``"multi"`` to factories ``(channels) -> nn.Module``;
:func:`get_attention` looks one up, :func:`register_attention` adds yours.

Example:
    >>> att = get_attention("eca")(16)
    >>> att(torch.rand(2, 3, 16, 4, 4)).shape
    torch.Size([2, 3, 16, 4, 4])
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Optional, Union

import torch
from torch import nn

__all__ = ["ATTENTIONS", "AttentionFactory", "PLACEMENTS", "CHANNEL_MODES",
           "eca_kernel_size", "get_attention", "register_attention", "check_placement",
           "NoAttention", "ECA", "CBAMChannel", "CBAMSpatial", "CBAM",
           "TemporalAttention", "MultiDimAttention"]

AttentionFactory = Callable[[int], nn.Module]
"""``factory(channels) -> nn.Module`` mapping ``[T, B, C, H, W]`` to the same shape."""

PLACEMENTS = ("cell_output", "node_input")
"""Where a DARTS cell applies its attention block (see the module docstring)."""

CHANNEL_MODES = ("eca", "cbam", "none")
"""Channel stage of :class:`MultiDimAttention`."""


def _check_sequence(x_seq: torch.Tensor, channels: int, name: str) -> None:
    """Raise a clear error unless ``x_seq`` is a floating ``[T, B, channels, H, W]`` tensor."""
    if not isinstance(x_seq, torch.Tensor):
        raise TypeError(f"{name} expects a torch.Tensor [T, B, C, H, W]; "
                        f"got {type(x_seq).__name__}.")
    if x_seq.dim() != 5:
        raise ValueError(f"{name} expects [T, B, C, H, W] (time first); got shape "
                         f"{tuple(x_seq.shape)}. For a static batch [B, C, H, W] pass "
                         "x.unsqueeze(0).")
    if x_seq.shape[2] != channels:
        raise ValueError(f"{name} was built for {channels} channels but got C = "
                         f"{x_seq.shape[2]} (shape {tuple(x_seq.shape)}); build it with "
                         f"channels={x_seq.shape[2]}.")
    if not x_seq.is_floating_point():
        raise TypeError(f"{name} expects a floating tensor; got {x_seq.dtype}. "
                        "Convert with x_seq.float().")


def _check_channels(channels: int, name: str) -> int:
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"{name}: channels must be a positive int; got {channels!r}.")
    return channels


class NoAttention(nn.Module):
    """The ``"none"`` entry: returns its input unchanged (``attention_maps`` is empty)."""

    def __init__(self, channels: int = 1):
        super().__init__()
        self.channels = _check_channels(channels, "NoAttention")

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return x_seq

    def attention_maps(self, x_seq: torch.Tensor) -> Dict[str, torch.Tensor]:
        return {}


# ----------------------------------------------------------------------------- ECA

def eca_kernel_size(channels: int, gamma: float = 2.0, b: float = 1.0) -> int:
    """ECA's adaptive kernel size ``k = psi(C) = | log2(C) / gamma + b / gamma |_odd``.

    ``|t|_odd`` is the odd number nearest to ``t`` (ECA-Net, Wang et al., CVPR 2020,
    Eq. 12, with ``gamma = 2`` and ``b = 1``). Odd numbers are 2 apart, so an even
    ``t`` lies halfway between two of them; we take the larger one, which is what
    the official code (BangguWu/ECANet, ``t = int(|...|)``, then ``t + 1`` when even)
    computes for every ``C``. In closed form ``k = 2 floor(t / 2) + 1``.

    Args:
        channels: ``C >= 1``.
        gamma, b: the mapping's constants (``gamma > 0``).
    Returns:
        odd int ``k >= 1``.

    Example:
        >>> [eca_kernel_size(c) for c in (16, 64, 128, 256, 512)]
        [3, 3, 5, 5, 5]
    """
    _check_channels(channels, "eca_kernel_size")
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0; got {gamma!r}.")
    t = abs(math.log2(channels) / gamma + b / gamma)
    return 2 * math.floor(t / 2) + 1


class ECA(nn.Module):
    """Efficient Channel Attention on every time step of ``[T, B, C, H, W]``.

    For each step and sample, with ``x`` the feature map ``[C, H, W]``:

    .. math::

        z_c = \\frac{1}{HW} \\sum_{h,w} x_{c,h,w}, \\qquad
        a = \\sigma(\\mathrm{Conv1D}_k(z)), \\qquad y_{c,h,w} = a_c \\, x_{c,h,w}

    a 1-D convolution *across channels* (one shared kernel of ``k`` weights, zero
    padding ``k // 2``, no bias, as the official code), ``k`` from
    :func:`eca_kernel_size` unless given.

    Args:
        channels: ``C``.
        kernel_size: odd ``k``; None for the adaptive rule.
        gamma, b: constants of the adaptive rule.
    Forward:
        ``x_seq`` ``[T, B, C, H, W]`` -> same shape and dtype.

    Reference: Wang et al., "ECA-Net: Efficient Channel Attention for Deep
    Convolutional Neural Networks", CVPR 2020, Eq. 9 and 12.
    """

    def __init__(self, channels: int, kernel_size: Optional[int] = None,
                 gamma: float = 2.0, b: float = 1.0):
        super().__init__()
        self.channels = _check_channels(channels, "ECA")
        k = eca_kernel_size(channels, gamma, b) if kernel_size is None else kernel_size
        if isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0:
            raise ValueError(f"ECA kernel_size must be an odd positive int (or None for the "
                             f"adaptive rule); got {kernel_size!r}.")
        self.kernel_size = k
        self.conv = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)

    def attention_maps(self, x_seq: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``{"channel": a}`` with ``a`` ``[T, B, C, 1, 1]`` in ``(0, 1)``."""
        _check_sequence(x_seq, self.channels, "ECA")
        T, B, C = x_seq.shape[:3]
        z = x_seq.mean(dim=(3, 4)).reshape(T * B, 1, C)               # [T*B, 1, C]
        a = torch.sigmoid(self.conv(z))                               # [T*B, 1, C]
        return {"channel": a.reshape(T, B, C, 1, 1)}

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return x_seq * self.attention_maps(x_seq)["channel"]

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_size={self.kernel_size}"


# ----------------------------------------------------------------------------- CBAM

class CBAMChannel(nn.Module):
    """CBAM's channel attention on every time step (Woo et al., ECCV 2018, Eq. 2).

    .. math::

        M_c(F) = \\sigma\\big(W_1 \\,\\mathrm{ReLU}(W_0 F^c_{avg}) +
                 W_1 \\,\\mathrm{ReLU}(W_0 F^c_{max})\\big), \\qquad F' = M_c(F) \\otimes F

    ``F^c_avg, F^c_max`` ``[C]``: average and max over ``H, W``; a shared MLP with
    ``W_0`` ``[C/r, C]`` and ``W_1`` ``[C, C/r]``, hidden width ``max(C // r, 1)``.
    No biases, as the equation (the official code's ``nn.Linear`` layers add them).

    Args:
        channels: ``C``.
        reduction: ``r`` (16 in the paper).
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.channels = _check_channels(channels, "CBAMChannel")
        if isinstance(reduction, bool) or not isinstance(reduction, int) or reduction < 1:
            raise ValueError(f"CBAM reduction r must be a positive int; got {reduction!r}.")
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden, bias=False), nn.ReLU(),
                                 nn.Linear(hidden, channels, bias=False))

    def attention_maps(self, x_seq: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``{"channel": M_c}`` with ``M_c`` ``[T, B, C, 1, 1]``."""
        _check_sequence(x_seq, self.channels, "CBAMChannel")
        avg = self.mlp(x_seq.mean(dim=(3, 4)))                        # [T, B, C]
        mx = self.mlp(x_seq.amax(dim=(3, 4)))                         # [T, B, C]
        return {"channel": torch.sigmoid(avg + mx)[..., None, None]}  # [T, B, C, 1, 1]

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return x_seq * self.attention_maps(x_seq)["channel"]


class CBAMSpatial(nn.Module):
    """CBAM's spatial attention on every time step (Woo et al., ECCV 2018, Eq. 3).

    .. math::

        M_s(F) = \\sigma\\big(f^{k \\times k}([F^s_{avg}; F^s_{max}])\\big), \\qquad
        F'' = M_s(F) \\otimes F

    ``F^s_avg, F^s_max`` ``[1, H, W]``: mean and max over channels, stacked into two
    maps, then one ``k x k`` convolution (``k = 7``, padding ``k // 2``, no bias) to
    one map. The official code adds a batch norm after this convolution; the
    equation does not, nor do we.

    Args:
        channels: ``C`` (only checked: the block has no per-channel weights).
        kernel_size: odd ``k`` (7 in the paper).
    """

    def __init__(self, channels: int, kernel_size: int = 7):
        super().__init__()
        self.channels = _check_channels(channels, "CBAMSpatial")
        if (isinstance(kernel_size, bool) or not isinstance(kernel_size, int)
                or kernel_size < 1 or kernel_size % 2 == 0):
            raise ValueError(f"CBAM spatial kernel_size must be an odd positive int; "
                             f"got {kernel_size!r}.")
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def attention_maps(self, x_seq: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``{"spatial": M_s}`` with ``M_s`` ``[T, B, 1, H, W]``."""
        _check_sequence(x_seq, self.channels, "CBAMSpatial")
        T, B, _, H, W = x_seq.shape
        maps = torch.stack([x_seq.mean(dim=2), x_seq.amax(dim=2)], dim=2)   # [T, B, 2, H, W]
        m = torch.sigmoid(self.conv(maps.reshape(T * B, 2, H, W)))          # [T*B, 1, H, W]
        return {"spatial": m.reshape(T, B, 1, H, W)}

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return x_seq * self.attention_maps(x_seq)["spatial"]


class CBAM(nn.Module):
    """Convolutional Block Attention Module: channel attention, THEN spatial attention.

    ``F' = M_c(F) * F`` (:class:`CBAMChannel`), then ``F'' = M_s(F') * F'``
    (:class:`CBAMSpatial`, computed on ``F'``), on every time step of
    ``[T, B, C, H, W]``. Woo et al. found this sequential, channel-first order
    better than the parallel or spatial-first ones (ECCV 2018, Sec. 3 and Table 3).

    Args:
        channels: ``C``.
        reduction: ``r`` of the channel MLP (16).
        kernel_size: of the spatial convolution (7).
    Forward:
        ``x_seq`` ``[T, B, C, H, W]`` -> same shape.

    Reference: Woo, Park, Lee, Kweon, "CBAM: Convolutional Block Attention
    Module", ECCV 2018, Eq. 1-3.
    """

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7):
        super().__init__()
        self.channels = _check_channels(channels, "CBAM")
        self.channel = CBAMChannel(channels, reduction)
        self.spatial = CBAMSpatial(channels, kernel_size)

    def attention_maps(self, x_seq: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``{"channel": [T, B, C, 1, 1], "spatial": [T, B, 1, H, W]}`` (spatial from ``F'``)."""
        channel = self.channel.attention_maps(x_seq)["channel"]
        spatial = self.spatial.attention_maps(x_seq * channel)["spatial"]
        return {"channel": channel, "spatial": spatial}

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        refined = self.channel(x_seq)                                  # F' = M_c(F) * F
        return self.spatial(refined)                                   # F'' = M_s(F') * F'


# ----------------------------------------------------------------------------- temporal

class TemporalAttention(nn.Module):
    """Attention over time steps: one weight per step and sample, ``[T, B, 1, 1, 1]``.

    .. math::

        d^{avg}_t = \\mathrm{mean}_{c,h,w}\\, x_t, \\quad d^{max}_t = \\max_{c,h,w} x_t,
        \\qquad w = \\sigma\\big(g(d^{avg}) + g(d^{max})\\big), \\qquad y_t = w_t \\, x_t

    TA-SNN (Yao et al., ICCV 2021) squeezes each step the same way and feeds the
    ``T`` descriptors through a shared two-layer MLP ``T -> T/r -> T`` with a
    sigmoid. An MLP is tied to one ``T``; ours replaces its two fully connected
    layers with two 1-D convolutions *along time* (zero padding, kernel ``k``):
    ``g = Conv1D_{hidden -> 1} ∘ ReLU ∘ Conv1D_{1 -> hidden}``. The same weights
    therefore work for any ``T`` given at run time; each step sees its
    neighbours up to ``k - 1`` steps away (with ``k = 3`` and ``T = 2``, the
    MA-DARTS setting, every step sees the whole sequence). This is our design, not
    TA-SNN's exact block. At ``T = 2`` the block learns only two weights per
    sample: the research brief calls temporal attention nearly degenerate there.

    Args:
        channels: ``C`` (checked only; the weights do not depend on it).
        kernel_size: odd ``k`` of both temporal convolutions (3).
        hidden: width of the hidden layer (4).
        use_max: add the max descriptor (TA-SNN uses average and max); False
            uses the average only.
    Forward:
        ``x_seq`` ``[T, B, C, H, W]`` -> same shape.
    """

    def __init__(self, channels: int, kernel_size: int = 3, hidden: int = 4,
                 use_max: bool = True):
        super().__init__()
        self.channels = _check_channels(channels, "TemporalAttention")
        if (isinstance(kernel_size, bool) or not isinstance(kernel_size, int)
                or kernel_size < 1 or kernel_size % 2 == 0):
            raise ValueError(f"TemporalAttention kernel_size must be an odd positive int; "
                             f"got {kernel_size!r}.")
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"TemporalAttention hidden must be a positive int; got {hidden!r}.")
        self.use_max = bool(use_max)
        pad = kernel_size // 2
        self.net = nn.Sequential(nn.Conv1d(1, hidden, kernel_size, padding=pad), nn.ReLU(),
                                 nn.Conv1d(hidden, 1, kernel_size, padding=pad))

    def attention_maps(self, x_seq: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``{"temporal": w}`` with ``w`` ``[T, B, 1, 1, 1]`` in ``(0, 1)``."""
        _check_sequence(x_seq, self.channels, "TemporalAttention")
        T, B = x_seq.shape[:2]
        flat = x_seq.reshape(T, B, -1).transpose(0, 1)                # [B, T, C*H*W]
        logits = self.net(flat.mean(dim=2).unsqueeze(1))              # [B, 1, T]
        if self.use_max:
            logits = logits + self.net(flat.amax(dim=2).unsqueeze(1))
        w = torch.sigmoid(logits)[:, 0].transpose(0, 1)               # [T, B]
        return {"temporal": w.reshape(T, B, 1, 1, 1)}

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return x_seq * self.attention_maps(x_seq)["temporal"]


# ----------------------------------------------------------------------------- multi-dimensional

class MultiDimAttention(nn.Module):
    """Temporal, then channel, then spatial attention: the "multi-dimensional" block.

    ``y = S(C(Tm(x)))``: :class:`TemporalAttention` rescales the steps, then a
    channel stage (:class:`ECA` or :class:`CBAMChannel`) the channels, then
    :class:`CBAMSpatial` the positions, each computed on the previous stage's
    output. MA-SNN (Yao et al., "Attention Spiking Neural Networks", TPAMI 2023)
    infers temporal, channel and spatial attention "separately or
    simultaneously"; MA-DARTS names multi-dimensional attention but its
    composition is not public. This sequential T -> C -> S order (CBAM's
    channel-before-spatial rule, with time first) is our reconstruction.

    Args:
        channels: ``C``.
        temporal: include the temporal stage.
        channel: ``"eca"``, ``"cbam"`` (CBAM's channel MLP) or ``"none"``.
        spatial: include CBAM's spatial stage.
        reduction, spatial_kernel: CBAM's ``r`` and ``k``; ``temporal_kernel``
            is the temporal convolutions' ``k``.
    Forward:
        ``x_seq`` ``[T, B, C, H, W]`` -> same shape.
    """

    def __init__(self, channels: int, temporal: bool = True, channel: str = "eca",
                 spatial: bool = True, reduction: int = 16, spatial_kernel: int = 7,
                 temporal_kernel: int = 3):
        super().__init__()
        self.channels = _check_channels(channels, "MultiDimAttention")
        if channel not in CHANNEL_MODES:
            raise ValueError(f"MultiDimAttention channel must be one of {CHANNEL_MODES}; "
                             f"got {channel!r}.")
        stages: Dict[str, nn.Module] = {}
        if temporal:
            stages["temporal"] = TemporalAttention(channels, kernel_size=temporal_kernel)
        if channel == "eca":
            stages["channel"] = ECA(channels)
        elif channel == "cbam":
            stages["channel"] = CBAMChannel(channels, reduction)
        if spatial:
            stages["spatial"] = CBAMSpatial(channels, spatial_kernel)
        if not stages:
            raise ValueError("MultiDimAttention needs at least one stage; got temporal=False, "
                             "channel='none', spatial=False (use get_attention('none') for "
                             "no attention).")
        self.stages = nn.ModuleDict(stages)

    def attention_maps(self, x_seq: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The gate of each stage, keyed ``"temporal"``, ``"channel"``, ``"spatial"``."""
        _check_sequence(x_seq, self.channels, "MultiDimAttention")
        maps: Dict[str, torch.Tensor] = {}
        for name, stage in self.stages.items():
            gate = stage.attention_maps(x_seq)[name]
            maps[name] = gate
            x_seq = x_seq * gate
        return maps

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        _check_sequence(x_seq, self.channels, "MultiDimAttention")
        for stage in self.stages.values():
            x_seq = stage(x_seq)
        return x_seq


# ----------------------------------------------------------------------------- registry

ATTENTIONS: Dict[str, AttentionFactory] = {}
"""Attention name -> factory ``(channels) -> nn.Module``; read by :func:`get_attention`."""


def register_attention(name: str, *, replace: bool = False):
    """Decorator: add ``factory(channels) -> nn.Module`` to :data:`ATTENTIONS` as ``name``.

    Args:
        name: the name used by :func:`get_attention` and ``--attention``.
        replace: allow overwriting an existing entry (re-running a notebook cell).

    Example::

        @register_attention("eca_k5")
        def _(channels):
            return ECA(channels, kernel_size=5)
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"attention name must be a non-empty str; got {name!r}.")
    if name in ATTENTIONS and not replace:
        raise ValueError(f"attention {name!r} is already registered; pass replace=True or "
                         f"choose another name. Registered: {sorted(ATTENTIONS)}.")

    def add(factory: AttentionFactory) -> AttentionFactory:
        if not callable(factory):
            raise TypeError(f"register_attention({name!r}) decorates a factory "
                            f"(channels) -> nn.Module; got {type(factory).__name__}.")
        ATTENTIONS[name] = factory
        return factory

    return add


register_attention("none")(NoAttention)
register_attention("eca")(ECA)
register_attention("cbam")(CBAM)
register_attention("temporal")(TemporalAttention)
register_attention("multi")(MultiDimAttention)


def get_attention(name: Union[str, AttentionFactory]) -> AttentionFactory:
    """The factory ``(channels) -> nn.Module`` registered as ``name``.

    Args:
        name: a key of :data:`ATTENTIONS` (``"none"``, ``"eca"``, ``"cbam"``,
            ``"temporal"``, ``"multi"``, or one you registered), or a factory,
            returned unchanged.
    Raises:
        ValueError: unknown name, listing the valid ones.

    Example:
        >>> get_attention("cbam")(32).channel.mlp[0].out_features    # 32 // 16
        2
    """
    if callable(name) and not isinstance(name, str):
        return name
    if not isinstance(name, str):
        raise TypeError(f"attention must be a name (str) or a factory (channels) -> nn.Module; "
                        f"got {type(name).__name__} {name!r}.")
    key = name.strip()
    if key not in ATTENTIONS:
        raise ValueError(f"unknown attention {name!r}; valid names are {sorted(ATTENTIONS)}. "
                         "Add your own with @snnlab.attention.register_attention(name).")
    return ATTENTIONS[key]


def check_placement(placement: str) -> str:
    """Return ``placement`` if it is one of :data:`PLACEMENTS`, else raise ValueError."""
    if placement not in PLACEMENTS:
        raise ValueError(f"unknown attention placement {placement!r}; valid: {PLACEMENTS} "
                         "('cell_output' rescales each cell's concatenated spikes, "
                         "'node_input' each node's current before its LIF).")
    return placement
