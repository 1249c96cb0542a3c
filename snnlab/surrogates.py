"""Surrogate gradients for the spike non-linearity.

A spiking neuron fires with the Heaviside step ``s = H(x)``, where
``x = v - threshold``. Its derivative is zero almost everywhere, so training
replaces it in the backward pass by the derivative of a smooth "primitive"
(Neftci, Mostafa & Zenke, IEEE SPM 2019). Each surrogate here is a small frozen
dataclass: data you can print, compare and swap, with

* ``primitive(x)``: the smooth step the backward pass pretends we used,
* ``derivative(x)``: its derivative, the surrogate gradient ``dS/dx``.

Family (``x = v - threshold``):

================  ========================================================  ======================
name              derivative ``dS/dx``                                      source
================  ========================================================  ======================
``atan``          ``(alpha/2) / (1 + (pi/2 * alpha * x)^2)``                SpikingJelly, snnTorch
``sigmoid``       ``slope * sig(slope*x) * (1 - sig(slope*x))``             snnTorch, SpikingJelly
``triangle``      ``max(0, 1 - |x|/width) / width``                         Esser et al. 2016
``fast_sigmoid``  ``1 / (1 + slope*|x|)^2``                                 SuperSpike, snnTorch
``dspike``        ``b (1 - tanh^2(b x)) / (2 tanh(b/2))`` for ``|x|<1/2``   Dspike, Li et al. 2021
================  ========================================================  ======================

The forward pass is always the exact step with strict ``x > 0`` (as snnTorch),
so the choice of surrogate changes gradients only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

import torch

__all__ = [
    "Surrogate", "ATan", "Sigmoid", "Triangle", "FastSigmoid", "Dspike",
    "SURROGATES", "get_surrogate", "spike",
]


class Surrogate:
    """Base class: a smooth stand-in for the Heaviside step used in backward.

    Subclasses write ``primitive`` and ``derivative_``, the derivative computed
    in place, overwriting its argument: the fused LIF backward uses it to avoid
    large temporaries, which on a CPU cost more than the arithmetic.
    ``derivative`` is the ordinary, side-effect-free version.
    """

    name = "surrogate"

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def derivative_(self, x: torch.Tensor) -> torch.Tensor:
        """``dS/dx`` written into ``x`` (which is returned)."""
        raise NotImplementedError

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        """``dS/dx`` as a new tensor; ``x`` is left unchanged."""
        return self.derivative_(x.clone())


def _check_positive(surrogate: "Surrogate", field: str, meaning: str) -> None:
    """Raise ValueError unless ``surrogate.<field>`` is a finite number > 0."""
    value = getattr(surrogate, field)
    try:                                  # numpy and 0-d torch numbers are fine too
        number = float(value)
    except (TypeError, ValueError, RuntimeError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
        raise ValueError(f"{type(surrogate).__name__}({field}={value!r}): {field} must be > 0 and "
                         f"finite ({meaning}); a value <= 0 flips or zeroes the gradient. "
                         f"Default: {type(surrogate)()!r}.")


@dataclass(frozen=True)
class ATan(Surrogate):
    """Arctangent surrogate; ``alpha`` sets the sharpness (SNASNet uses 2)."""

    alpha: float = 2.0
    name = "atan"

    def __post_init__(self):
        _check_positive(self, "alpha", "the sharpness")

    def primitive(self, x):
        return torch.atan(math.pi / 2 * self.alpha * x) / math.pi + 0.5

    def derivative_(self, x):
        x.mul_(math.pi / 2 * self.alpha)
        return x.square_().add_(1).reciprocal_().mul_(self.alpha / 2)


@dataclass(frozen=True)
class Sigmoid(Surrogate):
    """Logistic surrogate ``sig(slope * x)``; snnTorch's default slope is 25."""

    slope: float = 4.0
    name = "sigmoid"

    def __post_init__(self):
        _check_positive(self, "slope", "the sharpness")

    def primitive(self, x):
        return torch.sigmoid(self.slope * x)

    def derivative_(self, x):
        sig = x.mul_(self.slope).sigmoid_()
        sig.addcmul_(sig, sig, value=-1)              # sig - sig^2 = sig (1 - sig)
        return sig.mul_(self.slope)


@dataclass(frozen=True)
class Triangle(Surrogate):
    """Triangle (piecewise-linear) surrogate of half-width ``width``; integrates to 1."""

    width: float = 1.0
    name = "triangle"

    def __post_init__(self):
        _check_positive(self, "width", "the half-width")

    def primitive(self, x):
        u = (x / self.width).clamp(-1.0, 1.0)
        # integral of (1 - |u|) from -1 to u, a piecewise quadratic from 0 to 1
        return torch.where(u < 0, 0.5 * (1 + u) ** 2, 1 - 0.5 * (1 - u) ** 2)

    def derivative_(self, x):
        x.abs_().mul_(-1 / self.width).add_(1)        # 1 - |x| / width
        return x.clamp_(min=0.0).mul_(1 / self.width)


@dataclass(frozen=True)
class FastSigmoid(Surrogate):
    """SuperSpike's fast sigmoid, as in snnTorch (its derivative integrates to 2/slope)."""

    slope: float = 25.0
    name = "fast_sigmoid"

    def __post_init__(self):
        _check_positive(self, "slope", "the sharpness")

    def primitive(self, x):
        return 0.5 + x / (1 + self.slope * x.abs())

    def derivative_(self, x):
        return x.abs_().mul_(self.slope).add_(1).square_().reciprocal_()


@dataclass(frozen=True)
class Dspike(Surrogate):
    """Dspike surrogate with temperature ``b`` (Li et al., NeurIPS 2021; SpikeDHS/DGS).

    On the window ``|x| < 1/2`` (``0 < u < 1`` with ``u = x + 1/2``) the primitive is
    ``tanh(b x) / (2 tanh(b/2)) + 1/2``, rising from 0 to 1; outside it is flat, so
    the gradient is zero. Small ``b`` tends to the straight-through box (gradient 1
    on the window); large ``b`` to a sharp spike at the threshold.
    """

    b: float = 3.0
    name = "dspike"

    def __post_init__(self):
        _check_positive(self, "b", "the temperature")

    def _scale(self) -> float:
        # b / (2 tanh(b/2)) -> 1 as b -> 0: use the limit to avoid 0/0
        return 1.0 if self.b < 1e-4 else self.b / (2 * math.tanh(self.b / 2))

    def primitive(self, x):
        inside = torch.tanh(self.b * x.clamp(-0.5, 0.5)) * (self._scale() / self.b) + 0.5
        return inside

    def derivative_(self, x):
        outside = x.abs() >= 0.5                      # the window |x| < 1/2
        sech2 = x.mul_(self.b).tanh_().square_().neg_().add_(1)   # 1 - tanh^2(b x)
        return sech2.mul_(self._scale()).masked_fill_(outside, 0.0)


SURROGATES = {cls.name: cls for cls in (ATan, Sigmoid, Triangle, FastSigmoid, Dspike)}


def get_surrogate(surrogate: Union[str, Surrogate]) -> Surrogate:
    """Return a surrogate object from its name (default parameters) or pass one through.

    >>> get_surrogate("atan")
    ATan(alpha=2.0)
    """
    if isinstance(surrogate, Surrogate):
        return surrogate
    if isinstance(surrogate, str) and surrogate in SURROGATES:
        return SURROGATES[surrogate]()
    raise ValueError(
        f"unknown surrogate {surrogate!r}; expected one of {sorted(SURROGATES)} "
        "or a Surrogate object such as snnlab.surrogates.ATan(alpha=2.0).")


class _Spike(torch.autograd.Function):
    """Heaviside forward, surrogate derivative backward."""

    @staticmethod
    def forward(ctx, x, surrogate):
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_spikes):
        (x,) = ctx.saved_tensors
        return grad_spikes * ctx.surrogate.derivative(x), None


def spike(x: torch.Tensor, surrogate: Union[str, Surrogate] = "atan") -> torch.Tensor:
    """Spike function ``s = H(x)`` (strict ``x > 0``) with a surrogate gradient.

    Args:
        x: any shape, usually ``v - threshold``.
        surrogate: name or :class:`Surrogate` used in the backward pass.
    Returns:
        spikes of ``x``'s shape and dtype, values in {0, 1}.
    """
    return _Spike.apply(x, get_surrogate(surrogate))
